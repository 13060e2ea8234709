"""Export a training checkpoint as a Hugging Face folder (safetensors + processor + chat template).

Works on any checkpoint this trainer writes: DDP (``model.pt``) or DeepSpeed ZeRO-2/3 (shards
consolidated offline with DeepSpeed's ``zero_to_fp32``, so no GPUs or process group are needed).
The folder loads with ``AutoModelForImageTextToText`` / ``AutoProcessor`` and vLLM. When the
checkpoint carries the trainer's greedy probe, the exported model must reproduce it token for
token; ``ExportResult.probe_match`` says whether it did. The export records what it is in
``config.json``'s ``pulse_identity`` (the run's name, the model it was trained from, the step), so
``pulse serve --checkpoint`` names it after the run and a finetune of PULSE-7B is never served or
benchmarked as the published ``pulse-7b``.
"""

from __future__ import annotations

import json
import tempfile
from dataclasses import dataclass
from pathlib import Path

import torch

from pulse import io
from pulse.train_ray.checkpoint import STATE_FILE
from pulse.train_ray.strategy import DS_TAG

PROBE_FILE = "probe.pt"
PROBE_NEW_TOKENS = 8


@dataclass
class ExportResult:
    export_dir: str
    step: int
    probe_match: bool | None  # None: the checkpoint had no probe


def checkpoint_state_dict(folder: str | Path) -> dict[str, torch.Tensor]:
    """The full (unsharded) model state dict stored in a checkpoint folder."""
    folder = Path(folder)
    if (folder / "model.pt").exists():
        return torch.load(folder / "model.pt", map_location="cpu")
    from deepspeed.utils.zero_to_fp32 import get_fp32_state_dict_from_zero_checkpoint

    return get_fp32_state_dict_from_zero_checkpoint(str(folder), tag=DS_TAG)


def model_from_checkpoint(folder: str | Path, dtype: torch.dtype | None = None):
    """(model, processor, train_state) rebuilt from a checkpoint folder on CPU."""
    from transformers import AutoConfig, GenerationConfig

    from pulse.models.flat_merge import model_class_for, processor_class_for  # flat vs spatial_unpad

    folder = Path(folder)
    info = json.loads((folder / STATE_FILE).read_text())
    config = AutoConfig.from_pretrained(folder / "model_config")
    model = model_class_for(config)(config)
    missing, unexpected = model.load_state_dict(checkpoint_state_dict(folder), strict=False)
    # lm_head may be tied to the embeddings and then legitimately absent from the state dict
    missing = [k for k in missing if not (k == "lm_head.weight" and config.tie_word_embeddings)]
    if missing or unexpected:
        raise RuntimeError(
            f"checkpoint {folder} does not match its config: missing={missing} unexpected={unexpected}"
        )
    if (folder / "model_config" / "generation_config.json").exists():
        model.generation_config = GenerationConfig.from_pretrained(folder / "model_config")
    if dtype is None:
        dtype = torch.bfloat16 if info.get("bf16") else torch.float32
    model = model.to(dtype).eval()
    processor = processor_class_for(config).from_pretrained(folder / "processor")
    return model, processor, info


def record_probe(state) -> dict[str, torch.Tensor] | None:
    """Greedy tokens of the trained model on its last training prompt, for the export to reproduce.

    Runs on every ZeRO-3 rank (generation needs every shard), else on rank 0 only.
    """
    from pulse.train_ray.collate import IGNORE_INDEX

    batch = state.last_batch
    if batch is None:
        return None
    answer = (batch["labels"][0] != IGNORE_INDEX).nonzero()
    end = int(answer[0]) if len(answer) else int(batch["attention_mask"][0].sum())
    inputs = {
        "input_ids": batch["input_ids"][:1, :end],
        "attention_mask": batch["attention_mask"][:1, :end],
        "pixel_values": batch["pixel_values"][:1],
        "image_sizes": batch["image_sizes"][:1],
    }
    zero3 = state.cfg.strategy == "zero3"
    if not zero3 and state.rank != 0:
        return None
    model = state.unwrapped
    model.eval()
    with torch.no_grad():
        output = model.generate(
            **state.strategy.to_device(state, inputs),
            max_new_tokens=PROBE_NEW_TOKENS,
            do_sample=False,
            synced_gpus=zero3 and state.world_size > 1,
        )
    model.train()
    return {**inputs, "output_ids": output[:, end:].cpu()}


def probe_matches(model, folder: str | Path) -> bool | None:
    """Greedy tokens of ``model`` on the stored probe prompt equal the trainer's own output."""
    path = Path(folder, PROBE_FILE)
    if not path.exists():
        return None
    probe = torch.load(path, map_location="cpu")
    expected = probe.pop("output_ids")
    probe["pixel_values"] = probe["pixel_values"].to(model.dtype)
    with torch.no_grad():
        out = model.generate(**probe, max_new_tokens=expected.shape[1], do_sample=False)
    got = out[:, probe["input_ids"].shape[1] :]
    return got.shape == expected.shape and bool((got == expected).all())


def export_identity(model_config, run_name: str, base_checkpoint: str | None, step: int) -> dict:
    """The ``pulse_identity`` an export records: this run, on top of what the model was trained from.

    The base is the identity the starting checkpoint recorded (``pulse convert``, an earlier export),
    else the one pulse knows for its hub id, else the checkpoint as given (``None``: built from config).
    """
    from pulse.models.checkpoint_info import IDENTITY_FIELD, checkpoint_identity

    recorded = getattr(model_config, IDENTITY_FIELD, None)
    if isinstance(recorded, dict) and recorded.get("name"):
        base = recorded["name"]
    elif base_checkpoint:
        base = checkpoint_identity(base_checkpoint) or base_checkpoint
    else:
        base = None
    return {
        "name": run_name,
        "source": base_checkpoint,
        "source_format": "pulse-train",
        "base": base,
        "step": step,
    }


def export_checkpoint(
    checkpoint_folder: str | Path,
    export_dir: str,
    storage: io.StorageOptions | None = None,
    *,
    run_name: str | None = None,
    base_checkpoint: str | None = None,
) -> ExportResult:
    """Write ``checkpoint_folder`` (a local copy of a Ray checkpoint) to ``export_dir`` (local or S3).

    With ``run_name`` the export records its identity (``export_identity``); without it, whatever
    identity the model's config carried is dropped rather than passed on to a model it no longer is.
    """
    from pulse.models.checkpoint_info import IDENTITY_FIELD

    model, processor, info = model_from_checkpoint(checkpoint_folder)
    match = probe_matches(model, checkpoint_folder)
    if run_name:
        identity = export_identity(model.config, run_name, base_checkpoint, int(info["step"]))
        setattr(model.config, IDENTITY_FIELD, identity)
    elif hasattr(model.config, IDENTITY_FIELD):
        delattr(model.config, IDENTITY_FIELD)
    with tempfile.TemporaryDirectory(prefix="pulse-export-") as tmp:
        model.save_pretrained(tmp, safe_serialization=True)
        processor.save_pretrained(tmp)
        for file in sorted(Path(tmp).rglob("*")):
            if file.is_file():
                io.write_bytes(io.join(export_dir, str(file.relative_to(tmp))), file.read_bytes(), storage)
    return ExportResult(export_dir=export_dir, step=int(info["step"]), probe_match=match)
