"""Finetune LLaVA-NeXT on instruction Parquet with Ray Train (DDP or DeepSpeed ZeRO-2/3).

Reads ``data.train_path`` (local or s3://) through Ray Data, trains ``num_workers`` workers,
checkpoints every ``checkpoint_every`` steps to ``<storage_path>/<name>/`` and resumes from the
latest checkpoint when rerun with the same name and config (a larger ``max_steps``/``epochs``
extends the run; any other change is refused unless ``overwrite=true``, which starts over). The final model is exported in Hugging Face
format (safetensors + processor + chat template) to ``export_dir``.

Example: pulse train --config configs/train/tiny-cpu.yaml max_steps=20 strategy=zero2
"""

from __future__ import annotations

import dataclasses
import json
import math
import statistics
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow.fs as pafs

from pulse import io, resume
from pulse.config import write_run_info
from pulse.progress import Progress
from pulse.runtime import init_ray
from pulse.summary import StageSummary
from pulse.train_ray.config import TrainConfig
from pulse.train_ray.data import build_train_dataset, count_rows, error_sink, skipped_by_reason
from pulse.train_ray.export import export_checkpoint
from pulse.train_ray.loop import STATE_FILE, train_loop_per_worker
from pulse.train_ray.model import load_processor
from pulse.train_ray.tracking import check_tracking_available

CONFIG_CLASS = TrainConfig
NOT_IN_FINGERPRINT = (
    *("name", "storage_path", "export_dir", "max_steps", "epochs"),  # where it goes; the budget may grow
    *("cpus_per_worker", "placement_strategy", "report_interval_s", "checkpoint_every"),
    *("keep_checkpoints", "max_failures", "tracking", "fault"),
    *("data.preprocess_concurrency", "data.preprocess_batch_size", "data.preprocess_cpus"),
)
"""Config fields that do not change the trained weights of a step (a larger budget extends a run)."""


@dataclass
class TrainResult(StageSummary):
    """What a training run produced: the job's ``StageSummary`` (rows trained, rows skipped by
    reason, outputs, the printed extras) plus the export, the checkpoint and the metrics."""

    stage: str = "train"
    export_dir: str = ""
    checkpoint_path: str | None = None
    metrics: dict[str, Any] = field(default_factory=dict)
    skipped_by_reason: dict[str, int] = field(default_factory=dict)
    history: list[list[float]] = field(default_factory=list)
    """Per optimizer step: [step, loss, samples/s, tokens/s], across restarts."""


def planned_steps(cfg: TrainConfig, rows: int) -> int:
    """Optimizer steps of the run: ``max_steps``, or whole accumulation groups per epoch."""
    if cfg.max_steps is not None:
        return cfg.max_steps
    micro_batches = rows // cfg.num_workers // cfg.micro_batch_size
    per_epoch = micro_batches // cfg.grad_accum_steps
    if per_epoch < 1:
        raise ValueError(
            f"{rows} rows give no full step of global_batch_size={cfg.global_batch_size}; "
            "lower global_batch_size or set max_steps"
        )
    return per_epoch * cfg.epochs


def _trainer(cfg: TrainConfig, processor, total_steps: int, progress=None):
    from ray.train import CheckpointConfig, FailureConfig, RunConfig, ScalingConfig
    from ray.train.torch import TorchConfig, TorchTrainer

    resources: dict[str, float] = {"CPU": cfg.cpus_per_worker}
    if cfg.use_gpu:
        resources["GPU"] = 1
    fs, inner = io.filesystem(cfg.storage_path, cfg.storage)
    return TorchTrainer(
        train_loop_per_worker,
        train_loop_config={
            "config": cfg.model_dump(mode="json"),
            "processor": processor,
            "total_steps": total_steps,
            "progress": progress,
        },
        scaling_config=ScalingConfig(
            num_workers=cfg.num_workers,
            use_gpu=cfg.use_gpu,
            resources_per_worker=resources,
            placement_strategy=cfg.placement_strategy,
        ),
        torch_config=TorchConfig(backend="nccl" if cfg.use_gpu else "gloo"),
        run_config=RunConfig(
            name=cfg.name,
            storage_path=inner,
            storage_filesystem=fs,
            checkpoint_config=CheckpointConfig(num_to_keep=cfg.keep_checkpoints),
            failure_config=FailureConfig(max_failures=cfg.max_failures),
        ),
        datasets={"train": build_train_dataset(cfg, processor)},
    )


def _summarise(history: list[list[float]]) -> dict[str, float]:
    if not history:
        return {}
    steady = history[1:] or history  # step 1 includes the Ray Data pipeline start
    return {
        "steps": int(history[-1][0]),
        "final_loss": float(history[-1][1]),
        "first_loss": float(history[0][1]),
        "samples_per_s": statistics.median(h[2] for h in steady),
        "tokens_per_s": statistics.median(h[3] for h in steady),
    }


def run(cfg: TrainConfig) -> TrainResult:
    """Train, checkpoint, export; returns its ``TrainResult`` (a ``StageSummary``, which
    ``pulse.jobs.finish`` prints)."""
    started = time.time()
    if not io.is_remote(cfg.storage_path):  # workers run in their own working directories
        cfg = cfg.model_copy(update={"storage_path": str(Path(cfg.storage_path).absolute())})
    check_tracking_available(cfg.tracking)
    budget = [cfg.max_steps, cfg.epochs]
    state = resume.prepare(
        cfg,
        cfg.run_dir,
        "train",
        outputs=_run_entries(cfg),
        ignore=NOT_IN_FINGERPRINT,
        storage=cfg.storage,
        dir_key="name (or storage_path)",
    )
    if state.status == "done" and state.done.get("budget") == budget:
        print(resume.nothing_to_do("train", cfg.run_dir), flush=True)
        return TrainResult(**state.done["result"])
    if cfg.overwrite and cfg.export_dir:
        io.delete(cfg.export_dir, cfg.storage)
    resume.clear_done(cfg.run_dir, cfg.storage)
    ray = init_ray(cfg.ray)
    processor = load_processor(cfg.model)
    total_steps = planned_steps(cfg, count_rows(cfg))
    with Progress(ray, "train", total=total_steps, unit="steps") as progress:
        result = _trainer(cfg, processor, total_steps, progress.counter).fit()
    if result.error is not None:
        raise result.error
    checkpoint = result.checkpoint
    export_dir = cfg.resolved_export_dir
    metrics: dict[str, Any] = dict(result.metrics or {})
    history: list[list[float]] = []
    if checkpoint is not None:
        with checkpoint.as_directory() as folder:
            history = json.loads(Path(folder, STATE_FILE).read_text())["history"]
            exported = export_checkpoint(
                folder, export_dir, cfg.storage, run_name=cfg.name, base_checkpoint=cfg.model.checkpoint
            )
        metrics["export_probe_match"] = exported.probe_match
    metrics.update(_summarise(history))
    write_run_info(cfg, cfg.run_dir, "train", cfg.storage)
    skipped = skipped_by_reason(error_sink(cfg))
    checkpoint_path = None
    if checkpoint is not None:
        checkpoint_path = f"s3://{checkpoint.path}" if io.is_remote(cfg.storage_path) else checkpoint.path
    outcome = TrainResult(
        rows_ok=int(metrics.get("steps", 0)) * cfg.global_batch_size,
        rows_error=sum(skipped.values()),
        errors_by_reason=skipped,
        outputs={"checkpoint": str(checkpoint_path), "export": export_dir, "errors": cfg.errors_dir},
        seconds=time.time() - started,
        extra={
            "steps": metrics.get("steps"),
            "final_loss": _fmt(metrics.get("final_loss")),
            "samples/s": _fmt(metrics.get("samples_per_s")),
            "tokens/s": _fmt(metrics.get("tokens_per_s")),
            "resumed_from_step": metrics.get("resumed_from_step", -1),
            "export_probe_match": metrics.get("export_probe_match"),
        },
        export_dir=export_dir,
        checkpoint_path=checkpoint_path,
        metrics=metrics,
        skipped_by_reason=skipped,
        history=history,
    )
    record = {"budget": budget, "result": dataclasses.asdict(outcome)}
    resume.mark_done(cfg.run_dir, record, cfg.storage)
    return outcome


def _run_entries(cfg: TrainConfig) -> list[str]:
    """What the run folder already holds (checkpoints, errors, export), besides pulse's progress."""
    fs, inner = io.filesystem(cfg.run_dir, cfg.storage)
    found = fs.get_file_info(pafs.FileSelector(inner, allow_not_found=True))
    return [info.base_name for info in found if info.base_name != resume.PROGRESS_DIR]


def _fmt(value: float | None) -> str:
    return "n/a" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.4g}"
