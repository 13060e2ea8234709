"""How a worker wraps, steps and checkpoints its model: DDP or DeepSpeed ZeRO-2/3, chosen once.

The training loop calls the same five methods whatever the strategy; the DDP/DeepSpeed
difference lives only here.
"""

from __future__ import annotations

from contextlib import nullcontext
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from pulse.train_ray.config import TrainConfig
from pulse.train_ray.deepspeed_config import deepspeed_config

if TYPE_CHECKING:
    from pulse.train_ray.loop import WorkerState

DS_TAG = "ckpt"


def _adamw(params, cfg: TrainConfig):
    return torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)


def _schedule(optimizer, cfg: TrainConfig, total_steps: int):
    from transformers import get_scheduler

    warmup = round(cfg.warmup_ratio * total_steps)
    return get_scheduler(cfg.schedule, optimizer, num_warmup_steps=warmup, num_training_steps=total_steps)


class DDPStrategy:
    """PyTorch DDP through ``ray.train.torch.prepare_model``; pulse steps the optimizer itself."""

    deepspeed = False

    def wrap(self, model, cfg: TrainConfig, device, bf16: bool, total_steps: int):
        """(wrapped model, optimizer, scheduler)."""
        import ray.train.torch

        params = [p for p in model.parameters() if p.requires_grad]
        model = ray.train.torch.prepare_model(model, parallel_strategy="ddp")
        optimizer = _adamw(params, cfg)
        return model, optimizer, _schedule(optimizer, cfg, total_steps)

    def to_device(self, state: WorkerState, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        return {k: v.to(state.device, non_blocking=True) for k, v in batch.items()}

    def forward_backward(self, state: WorkerState, batch: dict[str, torch.Tensor], sync: bool) -> float:
        no_sync = getattr(state.model, "no_sync", None)
        autocast = torch.autocast(state.device.type, dtype=torch.bfloat16) if state.bf16 else nullcontext()
        with nullcontext() if sync or no_sync is None else no_sync(), autocast:
            loss = state.model(**batch).loss
            (loss / state.cfg.grad_accum_steps).backward()
        return float(loss.detach())

    def optimizer_step(self, state: WorkerState) -> None:
        torch.nn.utils.clip_grad_norm_(
            [p for p in state.model.parameters() if p.requires_grad], state.cfg.max_grad_norm
        )
        state.optimizer.step()
        state.scheduler.step()
        state.optimizer.zero_grad(set_to_none=True)

    def save(self, state: WorkerState, folder: Path) -> bool:
        """Write this rank's part of a checkpoint; returns whether this rank wrote anything."""
        if state.rank != 0:
            return False
        torch.save(state.unwrapped.state_dict(), folder / "model.pt")
        torch.save(state.optimizer.state_dict(), folder / "optimizer.pt")
        torch.save(state.scheduler.state_dict(), folder / "scheduler.pt")
        return True

    def load(self, state: WorkerState, folder: Path, info: dict[str, Any]) -> None:
        state.unwrapped.load_state_dict(torch.load(folder / "model.pt", map_location=state.device))
        state.optimizer.load_state_dict(torch.load(folder / "optimizer.pt", map_location=state.device))
        state.scheduler.load_state_dict(torch.load(folder / "scheduler.pt"))


class DeepSpeedStrategy(DDPStrategy):
    """DeepSpeed ZeRO-2/3 (optionally with CPU-offloaded Adam); the engine steps at accumulation ends."""

    deepspeed = True

    def wrap(self, model, cfg: TrainConfig, device, bf16: bool, total_steps: int):
        import deepspeed

        params = [p for p in model.parameters() if p.requires_grad]
        if cfg.offload_optimizer:
            from deepspeed.ops.adam import DeepSpeedCPUAdam

            optimizer = DeepSpeedCPUAdam(params, lr=cfg.lr, weight_decay=cfg.weight_decay, adamw_mode=True)
        else:
            optimizer = _adamw(params, cfg)
        engine, optimizer, _, scheduler = deepspeed.initialize(
            model=model.to(device),
            optimizer=optimizer,
            lr_scheduler=_schedule(optimizer, cfg, total_steps),
            config=deepspeed_config(cfg, bf16),
        )
        return engine, optimizer, scheduler

    def to_device(self, state: WorkerState, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        moved = super().to_device(state, batch)
        if state.bf16:
            moved["pixel_values"] = moved["pixel_values"].to(torch.bfloat16)
        return moved

    def forward_backward(self, state: WorkerState, batch: dict[str, torch.Tensor], sync: bool) -> float:
        loss = state.model(**batch).loss
        state.model.backward(loss)
        state.model.step()  # DeepSpeed steps the optimizer only at accumulation boundaries
        return float(loss.detach())

    def optimizer_step(self, state: WorkerState) -> None:
        """Nothing: ``engine.step()`` in ``forward_backward`` already stepped at the boundary."""

    def save(self, state: WorkerState, folder: Path) -> bool:
        state.model.save_checkpoint(str(folder), tag=DS_TAG)
        return True  # every ZeRO rank holds shards

    def load(self, state: WorkerState, folder: Path, info: dict[str, Any]) -> None:
        if info["world_size"] != state.world_size:
            raise RuntimeError(
                f"checkpoint was written by {info['world_size']} ZeRO ranks, this run has "
                f"{state.world_size}; resume with num_workers={info['world_size']}"
            )
        state.model.load_checkpoint(
            str(folder), tag=DS_TAG, load_optimizer_states=True, load_lr_scheduler_states=True
        )


def strategy_for(cfg: TrainConfig) -> DDPStrategy:
    return DDPStrategy() if cfg.strategy == "ddp" else DeepSpeedStrategy()
