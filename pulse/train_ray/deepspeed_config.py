"""The DeepSpeed config dict, generated from ``TrainConfig`` (never hand-written JSON).

Defaults follow PULSE's ``zero2.json`` (no offload, 2e8 buckets, ``overlap_comm`` off). The
optimizer is passed to ``deepspeed.initialize`` as an object, so no ``optimizer`` section is
emitted: DeepSpeed's own ``AdamW`` type would JIT-compile ``fused_adam`` on first use.
"""

from __future__ import annotations

from typing import Any

from pulse.train_ray.config import TrainConfig

ZERO_STAGES = {"zero2": 2, "zero3": 3}
BUCKET_SIZE = 200_000_000


def deepspeed_config(cfg: TrainConfig, bf16: bool) -> dict[str, Any]:
    """DeepSpeed ``config=`` for ``cfg.strategy`` (``zero2`` / ``zero3``).

    Args:
        cfg: the run's config; ``strategy`` must be a ZeRO strategy.
        bf16: the resolved precision (``cfg.bf16`` may be ``"auto"``).

    Returns:
        A dict accepted by ``deepspeed.initialize(config=...)``.
    """
    if cfg.strategy not in ZERO_STAGES:
        raise ValueError(f"strategy={cfg.strategy!r} is not a DeepSpeed strategy (zero2 | zero3)")
    stage = ZERO_STAGES[cfg.strategy]
    zero: dict[str, Any] = {
        "stage": stage,
        "overlap_comm": False,
        "contiguous_gradients": True,
        "reduce_scatter": True,
        "reduce_bucket_size": BUCKET_SIZE,
    }
    if stage == 2:
        zero["allgather_partitions"] = True
        zero["allgather_bucket_size"] = BUCKET_SIZE
    else:
        zero["stage3_prefetch_bucket_size"] = BUCKET_SIZE
        zero["stage3_param_persistence_threshold"] = 10_000
        zero["stage3_gather_16bit_weights_on_model_save"] = True
    if cfg.offload_optimizer:
        zero["offload_optimizer"] = {"device": "cpu", "pin_memory": cfg.use_gpu}
    return {
        "train_batch_size": cfg.global_batch_size,
        "train_micro_batch_size_per_gpu": cfg.micro_batch_size,
        "gradient_accumulation_steps": cfg.grad_accum_steps,
        "gradient_clipping": cfg.max_grad_norm,
        "zero_optimization": zero,
        "bf16": {"enabled": bf16},
        "fp16": {"enabled": False},
        "zero_allow_untested_optimizer": True,
        "steps_per_print": 10**9,
        "wall_clock_breakdown": False,
    }
