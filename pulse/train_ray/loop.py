"""``train_loop_per_worker``: what every Ray Train worker runs (DDP or DeepSpeed ZeRO-2/3).

Everything arrives through the loop's config dict (the validated ``TrainConfig`` as JSON,
the processor, the step budget); nothing is captured from module globals. The loop is
``setup`` -> ``load_checkpoint`` (always from ``ray.train.get_checkpoint()``) ->
``train_epoch`` ... -> ``save_checkpoint``. Gradient accumulation works on whole groups of
micro-batches, so a resumed run skips exactly the micro-batches already trained in the
current epoch and the optimizer step counter, LR schedule and loss history continue.
"""

from __future__ import annotations

import json
import os
import signal
import tempfile
import time
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from pulse.train_ray.config import TrainConfig
from pulse.train_ray.data import PadCollate
from pulse.train_ray.deepspeed_config import deepspeed_config
from pulse.train_ray.model import apply_trainable, freeze_unused, load_model
from pulse.train_ray.tracking import Tracker

DS_TAG = "ckpt"
STATE_FILE = "train_state.json"
PROBE_FILE = "probe.pt"
PROBE_NEW_TOKENS = 8


@dataclass
class WorkerState:
    """Everything one worker trains with; checkpointed fields are the counters and history."""

    cfg: TrainConfig
    processor: Any
    model: Any  # DDP-wrapped module, or the DeepSpeed engine
    optimizer: Any
    scheduler: Any
    engine: Any | None
    device: torch.device
    bf16: bool
    total_steps: int
    rank: int
    world_size: int
    tracker: Tracker
    step: int = 0
    epoch: int = 0
    batches_in_epoch: int = 0
    history: list[list[float]] = field(default_factory=list)
    resumed_from: int | None = None
    saved_step: int | None = None
    last_batch: dict[str, torch.Tensor] | None = None
    last_report: float | None = None


def train_loop_per_worker(loop_config: dict[str, Any]) -> None:
    """Ray Train entry point; ``loop_config`` = {config, processor, total_steps}."""
    import ray.train

    state = setup(
        TrainConfig.model_validate(loop_config["config"]),
        loop_config["processor"],
        loop_config["total_steps"],
    )
    checkpoint = ray.train.get_checkpoint()
    if checkpoint is not None:
        load_checkpoint(state, checkpoint)
    shard = ray.train.get_dataset_shard("train")
    max_epochs = state.cfg.epochs if state.cfg.max_steps is None else None
    while state.step < state.total_steps and (max_epochs is None or state.epoch < max_epochs):
        if not train_epoch(state, shard):
            break
    if state.saved_step != state.step:
        save_checkpoint(state, {"step": state.step}, final=True)
    state.tracker.close()


def resolve_bf16(cfg: TrainConfig) -> bool:
    if cfg.bf16 == "auto":
        return torch.cuda.is_available() and torch.cuda.is_bf16_supported()
    return bool(cfg.bf16)


def setup(cfg: TrainConfig, processor, total_steps: int) -> WorkerState:
    """Build the model, freeze/unfreeze parts, wrap it for DDP or DeepSpeed, build optimizer + schedule."""
    import ray.train
    import ray.train.torch
    from transformers import get_scheduler

    context = ray.train.get_context()
    rank, world_size = context.get_world_rank(), context.get_world_size()
    device = ray.train.torch.get_device()
    bf16 = resolve_bf16(cfg)
    torch.manual_seed(cfg.seed)
    model = load_model(cfg.model, processor)
    apply_trainable(model, cfg.trainable)
    freeze_unused(model)
    if cfg.gradient_checkpointing:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    params = [p for p in model.parameters() if p.requires_grad]
    warmup = round(cfg.warmup_ratio * total_steps)
    engine = None
    if cfg.strategy == "ddp":
        model = ray.train.torch.prepare_model(model, parallel_strategy="ddp")
        optimizer = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
        scheduler = get_scheduler(
            cfg.schedule, optimizer, num_warmup_steps=warmup, num_training_steps=total_steps
        )
    else:
        import deepspeed

        if cfg.offload_optimizer:
            from deepspeed.ops.adam import DeepSpeedCPUAdam

            optimizer = DeepSpeedCPUAdam(params, lr=cfg.lr, weight_decay=cfg.weight_decay, adamw_mode=True)
        else:
            optimizer = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
        scheduler = get_scheduler(
            cfg.schedule, optimizer, num_warmup_steps=warmup, num_training_steps=total_steps
        )
        engine, optimizer, _, scheduler = deepspeed.initialize(
            model=model.to(device),
            optimizer=optimizer,
            lr_scheduler=scheduler,
            config=deepspeed_config(cfg, bf16),
        )
        model = engine
    tracker = Tracker(cfg.tracking, cfg.model_dump(mode="json"), enabled=rank == 0)
    return WorkerState(
        cfg,
        processor,
        model,
        optimizer,
        scheduler,
        engine,
        device,
        bf16,
        total_steps,
        rank,
        world_size,
        tracker,
    )


def unwrap(state: WorkerState):
    """The bare ``LlavaNextForConditionalGeneration`` under DDP or DeepSpeed."""
    return getattr(state.model, "module", state.model)


def _to_device(state: WorkerState, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    moved = {k: v.to(state.device, non_blocking=True) for k, v in batch.items()}
    if state.engine is not None and state.bf16:
        moved["pixel_values"] = moved["pixel_values"].to(torch.bfloat16)
    return moved


def _forward_backward(state: WorkerState, batch: dict[str, torch.Tensor], sync: bool) -> float:
    cfg = state.cfg
    if state.engine is not None:
        loss = state.engine(**batch).loss
        state.engine.backward(loss)
        state.engine.step()  # DeepSpeed steps the optimizer only at accumulation boundaries
        return float(loss.detach())
    no_sync = getattr(state.model, "no_sync", None)
    autocast = torch.autocast(state.device.type, dtype=torch.bfloat16) if state.bf16 else nullcontext()
    with nullcontext() if sync or no_sync is None else no_sync(), autocast:
        loss = state.model(**batch).loss
        (loss / cfg.grad_accum_steps).backward()
    return float(loss.detach())


def _optimizer_step(state: WorkerState) -> None:
    if state.engine is not None:
        return
    torch.nn.utils.clip_grad_norm_(
        [p for p in state.model.parameters() if p.requires_grad], state.cfg.max_grad_norm
    )
    state.optimizer.step()
    state.scheduler.step()
    state.optimizer.zero_grad(set_to_none=True)


def optimizer_state_step(state: WorkerState) -> int:
    """The optimizer's own step counter (Adam ``state['step']``): proof that its state was restored."""
    opt = state.optimizer
    base = getattr(opt, "optimizer", opt)
    steps = [float(s["step"]) for s in base.state.values() if isinstance(s, dict) and "step" in s]
    return int(max(steps)) if steps else 0


def train_epoch(state: WorkerState, shard) -> bool:
    """One pass over this worker's shard; returns False when the shard produced no step."""
    import ray.train

    cfg = state.cfg
    accum = cfg.grad_accum_steps
    batches = shard.iter_torch_batches(
        batch_size=cfg.micro_batch_size,
        collate_fn=PadCollate(state.processor.tokenizer.pad_token_id),
        drop_last=True,
    )
    skip, group, steps_done = state.batches_in_epoch, [], 0
    started = time.perf_counter()
    waited = _WaitClock()
    for index, batch in enumerate(waited.iterate(batches)):
        if index < skip:
            continue  # already trained before the restart
        group.append(batch)
        if len(group) < accum:
            continue
        losses, tokens, samples = [], 0, 0
        for i, micro in enumerate(group):
            micro = _to_device(state, micro)
            losses.append(_forward_backward(state, micro, sync=i == accum - 1))
            tokens += int(micro["attention_mask"].sum())
            samples += int(micro["input_ids"].shape[0])
        _optimizer_step(state)
        state.last_batch = group[-1]
        group = []
        state.step += 1
        state.batches_in_epoch += accum
        steps_done += 1
        elapsed = time.perf_counter() - started
        metrics = _step_metrics(state, sum(losses) / len(losses), tokens, samples, elapsed)
        metrics["data_wait_s"] = waited.take()
        started = time.perf_counter()
        state.history.append([state.step, metrics["loss"], metrics["samples_per_s"], metrics["tokens_per_s"]])
        state.tracker.log(metrics, state.step)
        if state.step % cfg.checkpoint_every == 0 or state.step >= state.total_steps:
            save_checkpoint(state, metrics, final=state.step >= state.total_steps)
        elif report_due(time.monotonic(), state.last_report, cfg.report_interval_s):
            ray.train.report(metrics)
            state.last_report = time.monotonic()
            _print_progress(state, metrics)
        _maybe_inject_fault(state)
        if state.step >= state.total_steps:
            return True
    state.epoch += 1
    state.batches_in_epoch = 0
    return steps_done > 0 or skip > 0


class _WaitClock:
    """Seconds a worker spent blocked on the input pipeline: high values mean data-bound training."""

    def __init__(self):
        self.seconds = 0.0

    def iterate(self, iterable):
        iterator = iter(iterable)
        while True:
            started = time.perf_counter()
            try:
                item = next(iterator)
            except StopIteration:
                return
            finally:
                self.seconds += time.perf_counter() - started
            yield item

    def take(self) -> float:
        seconds, self.seconds = self.seconds, 0.0
        return seconds


def _step_metrics(
    state: WorkerState, loss: float, tokens: int, samples: int, seconds: float
) -> dict[str, Any]:
    totals = torch.tensor([loss, tokens, samples], dtype=torch.float64)
    if state.world_size > 1:
        torch.distributed.all_reduce(totals)
    seconds = max(seconds, 1e-9)
    return {
        "step": state.step,
        "epoch": state.epoch,
        "loss": float(totals[0]) / state.world_size,
        "lr": float(state.scheduler.get_last_lr()[0]),
        "tokens_per_s": float(totals[1]) / seconds,
        "samples_per_s": float(totals[2]) / seconds,
        "step_time_s": seconds,
        "optimizer_state_step": optimizer_state_step(state),
        "resumed_from_step": -1 if state.resumed_from is None else state.resumed_from,
    }


def _maybe_inject_fault(state: WorkerState) -> None:
    """SIGKILL this worker once per run (``cfg.fault``), after its checkpoint had time to register."""
    from pulse import io

    fault = state.cfg.fault
    if not fault or state.resumed_from is not None or state.step != fault.at_step or state.rank != fault.rank:
        return
    marker = io.join(state.cfg.run_dir, "fault_injected")
    if io.exists(marker, state.cfg.storage):  # a restart that found no checkpoint must not loop forever
        return
    io.write_text(marker, f"SIGKILL rank {state.rank} after step {state.step}\n", state.cfg.storage)
    # The controller registers a checkpoint only after polling every worker's report.
    time.sleep(fault.delay_s)
    os.kill(os.getpid(), signal.SIGKILL)


def save_checkpoint(state: WorkerState, metrics: dict[str, Any], final: bool = False) -> None:
    """Write a checkpoint from every rank that holds shards and report it with ``metrics``."""
    import ray.train
    from ray.train import Checkpoint

    with tempfile.TemporaryDirectory(prefix="pulse-ckpt-") as tmp:
        writes = state.rank == 0
        if state.engine is not None:
            state.engine.save_checkpoint(tmp, tag=DS_TAG)
            writes = True
        elif state.rank == 0:
            torch.save(unwrap(state).state_dict(), Path(tmp, "model.pt"))
            torch.save(state.optimizer.state_dict(), Path(tmp, "optimizer.pt"))
            torch.save(state.scheduler.state_dict(), Path(tmp, "scheduler.pt"))
        probe = _probe(state) if final else None
        if state.rank == 0:
            _write_metadata(state, Path(tmp), probe)
        ray.train.report(metrics, checkpoint=Checkpoint.from_directory(tmp) if writes else None)
    state.saved_step = state.step
    state.last_report = time.monotonic()
    _print_progress(state, metrics)


def report_due(now: float, last_report: float | None, interval_s: float) -> bool:
    """Whether a metric-only report may go out now without stalling on Ray Train's collection."""
    return last_report is None or now - last_report >= interval_s


def _print_progress(state: WorkerState, metrics: dict[str, Any]) -> None:
    if state.rank != 0 or "loss" not in metrics:
        return
    print(
        f"[pulse.train] step {state.step}/{state.total_steps} loss {metrics['loss']:.4f} "
        f"lr {metrics['lr']:.3g} {metrics['samples_per_s']:.2f} samples/s "
        f"{metrics['tokens_per_s']:.0f} tok/s data_wait {metrics.get('data_wait_s', 0.0):.2f}s",
        flush=True,
    )


def _write_metadata(state: WorkerState, folder: Path, probe: dict | None) -> None:
    model = unwrap(state)
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
    model.config.save_pretrained(folder / "model_config")
    model.generation_config.save_pretrained(folder / "model_config")
    state.processor.save_pretrained(folder / "processor")
    if probe is not None:
        torch.save(probe, folder / PROBE_FILE)


def _probe(state: WorkerState) -> dict[str, torch.Tensor] | None:
    """Greedy tokens of the trained model on one training prompt, to check the export against."""
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
    model = unwrap(state)
    model.eval()
    with torch.no_grad():
        output = model.generate(
            **_to_device(state, inputs),
            max_new_tokens=PROBE_NEW_TOKENS,
            do_sample=False,
            synced_gpus=zero3 and state.world_size > 1,
        )
    model.train()
    return {**inputs, "output_ids": output[:, end:].cpu()}


def load_checkpoint(state: WorkerState, checkpoint) -> None:
    """Restore weights, optimizer, schedule, counters and loss history from a Ray checkpoint."""
    with checkpoint.as_directory() as folder:
        info = json.loads(Path(folder, STATE_FILE).read_text())
        if state.engine is not None:
            if info["world_size"] != state.world_size:
                raise RuntimeError(
                    f"checkpoint was written by {info['world_size']} ZeRO ranks, this run has "
                    f"{state.world_size}; resume with num_workers={info['world_size']}"
                )
            state.engine.load_checkpoint(
                folder, tag=DS_TAG, load_optimizer_states=True, load_lr_scheduler_states=True
            )
        else:
            unwrap(state).load_state_dict(torch.load(Path(folder, "model.pt"), map_location=state.device))
            state.optimizer.load_state_dict(
                torch.load(Path(folder, "optimizer.pt"), map_location=state.device)
            )
            state.scheduler.load_state_dict(torch.load(Path(folder, "scheduler.pt")))
    state.step = info["step"]
    state.epoch = info["epoch"]
    state.batches_in_epoch = info["batches_in_epoch"]
    state.history = info["history"]
    state.resumed_from = state.step
    state.saved_step = state.step
    print(
        f"[pulse.train] rank {state.rank}: resumed from step {state.step} (epoch {state.epoch})", flush=True
    )
