import pytest

from pulse.train_ray.config import TrainConfig
from pulse.train_ray.deepspeed_config import deepspeed_config


def make(**kwargs) -> TrainConfig:
    base = {"name": "t", "storage_path": "/tmp/x", "data": {"train_path": "/tmp/d"}, "model": {"build": {}}}
    return TrainConfig.model_validate({**base, **kwargs})


def test_zero2_matches_pulse_recipe_and_batch_arithmetic():
    cfg = make(strategy="zero2", num_workers=8, global_batch_size=128, micro_batch_size=2)
    ds = deepspeed_config(cfg, bf16=True)
    assert ds["gradient_accumulation_steps"] == 8
    assert (
        ds["train_batch_size"] == ds["train_micro_batch_size_per_gpu"] * 8 * ds["gradient_accumulation_steps"]
    )
    zero = ds["zero_optimization"]
    assert zero["stage"] == 2 and zero["overlap_comm"] is False and zero["reduce_bucket_size"] == 2e8
    assert "offload_optimizer" not in zero and "optimizer" not in ds  # no fused_adam JIT
    assert ds["bf16"] == {"enabled": True}


def test_zero3_and_offload():
    cfg = make(strategy="zero3", offload_optimizer=True, global_batch_size=8, micro_batch_size=2)
    zero = deepspeed_config(cfg, bf16=False)["zero_optimization"]
    assert zero["stage"] == 3 and zero["stage3_gather_16bit_weights_on_model_save"] is True
    assert zero["offload_optimizer"]["device"] == "cpu"


def test_ddp_has_no_deepspeed_dict():
    with pytest.raises(ValueError, match="not a DeepSpeed strategy"):
        deepspeed_config(make(global_batch_size=8), bf16=False)
