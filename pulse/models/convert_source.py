"""Reading an original-LLaVA checkpoint for ``pulse convert``: fetch it (local, ``s3://``, hub), find
its weight shards, load the weights, its vision tower (inside the weights or a separate CLIP
folder) and its tokenizer (with ``<image>`` added)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from pulse import io
from pulse.models.original_llava import KNOWN_VISION_TOWERS, TOWER_PREFIX, ConvertError, vision_config_from

WEIGHT_PATTERNS = ["*.json", "*.safetensors", "*.bin", "tokenizer.model", "*.txt"]


def is_hub_id(source: str) -> bool:
    return "://" not in source and not os.path.exists(source) and source.count("/") == 1


def fetch_source(source: str, workdir: str, revision: str | None = None, storage=None) -> Path:
    """A local folder holding ``source``: itself, a copy of an ``s3://`` prefix, or a hub snapshot."""
    if io.is_remote(source):
        import pyarrow.fs as pafs

        fs, inner = io.filesystem(source, storage)
        if not io.is_dir(source, storage):
            raise ConvertError(f"{source}: no such S3 prefix")
        dest = Path(workdir, "source")
        dest.mkdir(parents=True)
        pafs.copy_files(inner, str(dest), source_filesystem=fs, destination_filesystem=pafs.LocalFileSystem())
        return dest
    if os.path.isdir(source):
        return Path(source)
    if is_hub_id(source):
        from huggingface_hub import snapshot_download

        try:
            return Path(snapshot_download(repo_id=source, revision=revision, allow_patterns=WEIGHT_PATTERNS))
        except Exception as exc:  # offline, gated, missing repo: say which and why, in one line
            raise ConvertError(f"cannot download {source!r} from the Hugging Face hub: {exc}") from exc
    raise ConvertError(f"{source}: not a folder, s3:// prefix or hub id")


def weight_files(folder: Path) -> list[Path]:
    """The checkpoint's weight shards; every shard its index names must exist."""
    for index_name in ("model.safetensors.index.json", "pytorch_model.bin.index.json"):
        index = folder / index_name
        if index.exists():
            shards = sorted(set(json.loads(index.read_text())["weight_map"].values()))
            missing = [s for s in shards if not (folder / s).exists()]
            if missing:
                raise ConvertError(f"{folder}: missing shards {missing} listed in {index_name}")
            return [folder / s for s in shards]
    for single in ("model.safetensors", "pytorch_model.bin"):
        if (folder / single).exists():
            return [folder / single]
    raise ConvertError(
        f"{folder}: no weights (model.safetensors[.index.json] or pytorch_model.bin[.index.json])"
    )


def read_weights(files: list[Path]) -> dict[str, Any]:
    """All tensors of ``files`` (safetensors memory-mapped; ``.bin`` loaded with ``weights_only``)."""
    import torch
    from safetensors.torch import load_file

    tensors: dict[str, Any] = {}
    for file in files:
        if file.suffix == ".safetensors":
            tensors.update(load_file(str(file)))
        else:
            tensors.update(torch.load(file, map_location="cpu", weights_only=True, mmap=True))
    return tensors


def resolve_vision_tower(
    original: dict[str, Any], weights: dict[str, Any], given: str | None, workdir: str
) -> tuple[dict[str, Any], dict[str, Any]]:
    """(CLIP vision config dict, tower weights from a separate folder or {} when inside the checkpoint)."""
    name = given or original.get("mm_vision_tower") or original.get("vision_tower")
    inside = any(k.startswith(TOWER_PREFIX) for k in weights)
    folder: Path | None = None
    if name and os.path.isdir(name):
        folder = Path(name)
    elif name and given and not inside:
        folder = fetch_source(name, workdir)
    if not inside and folder is None:
        raise ConvertError(
            f"the vision tower is neither inside the weights (no {TOWER_PREFIX}* keys) nor given: "
            f"mm_vision_tower={name!r} is not a local folder; pass --vision-tower FOLDER_OR_HUB_ID"
        )
    if folder is not None and (folder / "config.json").exists():
        vision = vision_config_from(json.loads((folder / "config.json").read_text()))
    elif name in KNOWN_VISION_TOWERS:
        vision = dict(KNOWN_VISION_TOWERS[name])
    else:
        raise ConvertError(
            f"no config for vision tower {name!r}: pass --vision-tower FOLDER with its config.json"
        )
    tower_weights = {} if inside else read_weights(weight_files(folder))
    return vision, tower_weights


def load_tokenizer(folder: Path):
    from transformers import AddedToken, AutoTokenizer

    try:
        tokenizer = AutoTokenizer.from_pretrained(str(folder))
    except (ImportError, ValueError, OSError) as exc:
        hint = (
            " (tokenizer.model needs `pip install sentencepiece`)"
            if (folder / "tokenizer.model").exists()
            else ""
        )
        raise ConvertError(f"cannot load the tokenizer in {folder}{hint}: {exc}") from exc
    if "<image>" in tokenizer.get_vocab():
        raise ConvertError(
            "the tokenizer already has an <image> token; this is not an original-LLaVA checkpoint"
        )
    tokenizer.add_tokens([AddedToken("<image>", special=True, normalized=False)], special_tokens=True)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.unk_token  # LLaVA v1 trained with pad = unk
    return tokenizer
