"""What a checkpoint is: its patch merge and its identity, read from config fields pulse writes.

Light on purpose (no torch/transformers import) so config validation can use it.
``pulse convert`` and the trainer's export record ``pulse_patch_merge`` and ``pulse_identity``
in ``config.json``; hub checkpoints pulse knows by id are listed in ``KNOWN_CHECKPOINTS``.
"""

from __future__ import annotations

import json
import posixpath
from pathlib import Path
from typing import Any

PATCH_MERGE_FIELD = "pulse_patch_merge"
PATCH_MERGES = ("spatial_unpad", "flat")
IDENTITY_FIELD = "pulse_identity"
FLAT_ARCHITECTURE = "PulseFlatLlavaNextForConditionalGeneration"

# Hub ids -> the model they are (the name a benchmark table must show for them).
KNOWN_CHECKPOINTS: dict[str, str] = {
    "PULSE-ECG/PULSE-7B": "pulse-7b",
    "liuhaotian/llava-v1.6-vicuna-7b": "llava-v1.6-vicuna-7b",
    "llava-hf/llava-v1.6-vicuna-7b-hf": "llava-v1.6-vicuna-7b",
    "liuhaotian/llava-v1.6-vicuna-13b": "llava-v1.6-vicuna-13b",
    "llava-hf/llava-v1.6-vicuna-13b-hf": "llava-v1.6-vicuna-13b",
    "liuhaotian/llava-v1.6-mistral-7b": "llava-v1.6-mistral-7b",
    "llava-hf/llava-v1.6-mistral-7b-hf": "llava-v1.6-mistral-7b",
}


class PatchMergeMismatch(ValueError):
    """A model, processor or run setting disagrees with the checkpoint's patch merge."""


class NameMismatch(ValueError):
    """A served or benchmarked name says the model is something its checkpoint is not."""


def patch_merge_of(config: Any) -> str:
    """The patch merge a (HF or dict) config records; ``spatial_unpad`` when it records none."""
    if isinstance(config, dict):
        merge = config.get(PATCH_MERGE_FIELD)
    else:
        merge = getattr(config, PATCH_MERGE_FIELD, None)
    merge = merge or "spatial_unpad"
    if merge not in PATCH_MERGES:
        raise PatchMergeMismatch(f"{PATCH_MERGE_FIELD}={merge!r} is not one of {list(PATCH_MERGES)}")
    return merge


def local_config(checkpoint: str) -> dict | None:
    """``config.json`` of a local checkpoint folder, or None (hub id, S3, missing)."""
    path = Path(checkpoint, "config.json")
    if "://" in checkpoint or not path.is_file():
        return None
    return json.loads(path.read_text())


def checkpoint_identity(checkpoint: str) -> str | None:
    """The model a checkpoint is: recorded by convert/export, else known by hub id, else None."""
    config = local_config(checkpoint)
    if config and isinstance(config.get(IDENTITY_FIELD), dict):
        return config[IDENTITY_FIELD].get("name")
    return KNOWN_CHECKPOINTS.get(checkpoint)


def check_served_name(name: str, checkpoint: str) -> None:
    """Raise ``NameMismatch`` when ``name`` claims a known model the checkpoint is not.

    A name claims a known identity when it starts with it (``pulse-7b``, ``pulse-7b-bf16``);
    generic names (``llava-next-7b``, ``pulse-tiny``) claim none. A claim must be backed by the
    checkpoint: its known hub id, a folder whose recorded identity the name starts with (so a
    finetune recorded as ``pulse-7b-continue`` may be served as that, never as ``pulse-7b``), or (for a path pulse cannot
    read here, e.g. a volume) a last path component that starts with it.
    """
    claimed = sorted((known for known in set(KNOWN_CHECKPOINTS.values()) if name.startswith(known)), key=len)
    if not claimed:
        return
    claim = claimed[-1]
    identity = checkpoint_identity(checkpoint)
    if identity is not None:
        if not name.startswith(identity):  # "pulse-7b-bf16" for pulse-7b; never "pulse-7b" for a finetune
            raise NameMismatch(
                f"model name {name!r} claims {claim!r} but checkpoint {checkpoint!r} is {identity!r}"
            )
        return
    last = posixpath.basename(checkpoint.rstrip("/")).lower()
    if not last.startswith(claim):
        raise NameMismatch(
            f"model name {name!r} claims {claim!r} but checkpoint {checkpoint!r} records no identity "
            "and is not named after it"
        )
