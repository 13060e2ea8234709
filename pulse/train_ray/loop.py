"""``train_loop_per_worker``: what every Ray Train worker runs (DDP or DeepSpeed ZeRO-2/3).

Everything arrives through the loop's config dict (the validated ``TrainConfig`` as JSON,
the processor, the step budget); nothing is captured from module globals. The loop is
``setup`` -> ``load_checkpoint`` (always from ``ray.train.get_checkpoint()``) ->
``train_epoch`` ... -> ``save_checkpoint``. DDP vs DeepSpeed lives in ``strategy.py``,
checkpoint files in ``checkpoint.py``, the export probe in ``export.py``, per-step hooks
(the resume tests' fault injection) in ``callbacks.py``. Gradient accumulation works on whole groups of
micro-batches, so a resumed run skips exactly the micro-batches already trained in the
current epoch and the optimizer step counter, LR schedule and loss history continue.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import torch

from pulse.progress import report, restart_at
from pulse.train_ray.callbacks import StepCallback, callbacks_for
from pulse.train_ray.checkpoint import STATE_FILE, load_checkpoint, print_progress, save_checkpoint
from pulse.train_ray.config import TrainConfig
from pulse.train_ray.data import training_batches
from pulse.train_ray.model import apply_trainable, freeze_unused, load_model
from pulse.train_ray.strategy import DDPStrategy, strategy_for
from pulse.train_ray.tracking import Tracker

__all__ = ["STATE_FILE", "WorkerState", "train_loop_per_worker"]


@dataclass
class WorkerState:
    """Everything one worker trains with; checkpointed fields are the counters and history."""

    cfg: TrainConfig
    processor: Any
    model: Any  # DDP-wrapped module, or the DeepSpeed engine
    optimizer: Any
    scheduler: Any
    strategy: DDPStrategy
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
    callbacks: list[StepCallback] = field(default_factory=list)
    progress: Any = None

    @property
    def unwrapped(self):
        """The bare ``LlavaNextForConditionalGeneration`` under DDP or DeepSpeed."""
        return getattr(self.model, "module", self.model)


def train_loop_per_worker(loop_config: dict[str, Any]) -> None:
    """Ray Train entry point; ``loop_config`` = {config, processor, total_steps, progress}.

    ``progress`` is the driver's step counter (:mod:`pulse.progress`): rank 0 reports each step
    and its loss, so the terminal shows ``[train] 12/40 steps (…, ETA …) loss 2.31``.
    """
    import ray.train

    state = setup(
        TrainConfig.model_validate(loop_config["config"]),
        loop_config["processor"],
        loop_config["total_steps"],
    )
    checkpoint = ray.train.get_checkpoint()
    if checkpoint is not None:
        load_checkpoint(state, checkpoint)
    if state.rank == 0:
        state.progress = loop_config.get("progress")
        restart_at(state.progress, state.step)
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
    strategy = strategy_for(cfg)
    model, optimizer, scheduler = strategy.wrap(model, cfg, device, bf16, total_steps)
    tracker = Tracker(cfg.tracking, cfg.model_dump(mode="json"), enabled=rank == 0)
    return WorkerState(
        cfg,
        processor,
        model,
        optimizer,
        scheduler,
        strategy,
        device,
        bf16,
        total_steps,
        rank,
        world_size,
        tracker,
        callbacks=callbacks_for(cfg),
    )


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
    batches = training_batches(shard, cfg, state.processor.tokenizer.pad_token_id, state.epoch)
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
            micro = state.strategy.to_device(state, micro)
            losses.append(state.strategy.forward_backward(state, micro, sync=i == accum - 1))
            tokens += int(micro["attention_mask"].sum())
            samples += int(micro["input_ids"].shape[0])
        state.strategy.optimizer_step(state)
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
        report(state.progress, 1, f"loss {metrics['loss']:.4f}")
        if state.step % cfg.checkpoint_every == 0 or state.step >= state.total_steps:
            save_checkpoint(state, metrics, final=state.step >= state.total_steps)
        elif any_rank(report_due(time.monotonic(), state.last_report, cfg.report_interval_s), state.device):
            ray.train.report(metrics)
            state.last_report = time.monotonic()
            print_progress(state, metrics)
        for callback in state.callbacks:
            callback.on_step(state)
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


def report_due(now: float, last_report: float | None, interval_s: float) -> bool:
    """Whether a metric-only report may go out now without stalling on Ray Train's collection."""
    return last_report is None or now - last_report >= interval_s


def any_rank(flag: bool, device: torch.device) -> bool:
    """``flag`` OR-ed over all training ranks, the same answer on every rank.

    ``ray.train.report`` is collective (the ranks agree on a checkpoint folder), so a rank whose
    clock says "report" while another's says "not yet" would wait in it while the other waits in
    the next step's all-reduce: a deadlock. Each rank's own clock decides; all follow the earliest.
    """
    import torch.distributed as dist

    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return flag
    vote = torch.tensor([int(flag)], dtype=torch.int32, device=device)
    dist.all_reduce(vote, op=dist.ReduceOp.MAX)
    return bool(vote.item())
