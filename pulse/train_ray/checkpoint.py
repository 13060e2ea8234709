"""Save and restore a worker's training state as a Ray Train checkpoint (any strategy).

A checkpoint folder holds the strategy's weights/optimizer files, ``train_state.json`` (counters
and loss history), the model config and processor, and on the final one the export probe.
"""

from __future__ import annotations

import json
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

if TYPE_CHECKING:
    from pulse.train_ray.loop import WorkerState

STATE_FILE = "train_state.json"


def save_checkpoint(state: WorkerState, metrics: dict[str, Any], final: bool = False) -> None:
    """Write a checkpoint from every rank that holds shards and report it with ``metrics``."""
    import ray.train
    from ray.train import Checkpoint

    from pulse.train_ray.export import PROBE_FILE, record_probe

    with tempfile.TemporaryDirectory(prefix="pulse-ckpt-") as tmp:
        writes = state.strategy.save(state, Path(tmp))
        probe = record_probe(state) if final else None
        if state.rank == 0:
            writes = True
            _write_metadata(state, Path(tmp))
            if probe is not None:
                torch.save(probe, Path(tmp, PROBE_FILE))
        ray.train.report(metrics, checkpoint=Checkpoint.from_directory(tmp) if writes else None)
    state.saved_step = state.step
    state.last_report = time.monotonic()
    print_progress(state, metrics)


def load_checkpoint(state: WorkerState, checkpoint) -> None:
    """Restore weights, optimizer, schedule, counters and loss history from a Ray checkpoint."""
    with checkpoint.as_directory() as folder:
        info = json.loads(Path(folder, STATE_FILE).read_text())
        state.strategy.load(state, Path(folder), info)
    state.step = info["step"]
    state.epoch = info["epoch"]
    state.batches_in_epoch = info["batches_in_epoch"]
    state.history = info["history"]
    state.resumed_from = state.step
    state.saved_step = state.step
    print(
        f"[pulse.train] rank {state.rank}: resumed from step {state.step} (epoch {state.epoch})", flush=True
    )


def print_progress(state: WorkerState, metrics: dict[str, Any]) -> None:
    if state.rank != 0 or "loss" not in metrics:
        return
    print(
        f"[pulse.train] step {state.step}/{state.total_steps} loss {metrics['loss']:.4f} "
        f"lr {metrics['lr']:.3g} {metrics['samples_per_s']:.2f} samples/s "
        f"{metrics['tokens_per_s']:.0f} tok/s data_wait {metrics.get('data_wait_s', 0.0):.2f}s",
        flush=True,
    )


def _write_metadata(state: WorkerState, folder: Path) -> None:
    info = {
        "step": state.step,
        "epoch": state.epoch,
        "batches_in_epoch": state.batches_in_epoch,
        "world_size": state.world_size,
        "strategy": state.cfg.strategy,
        "bf16": state.bf16,
        "history": state.history,
        "resumed_from": state.resumed_from,
    }
    Path(folder, STATE_FILE).write_text(json.dumps(info))
    model = state.unwrapped
    model.config.save_pretrained(folder / "model_config")
    model.generation_config.save_pretrained(folder / "model_config")
    state.processor.save_pretrained(folder / "processor")
