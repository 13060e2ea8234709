"""Finetune a converted flat-merge checkpoint with Ray Train (2 DDP workers), export it, and load the export."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pulse.config import load_config
from pulse.models.convert import convert
from pulse.models.flat_merge import PulseFlatLlavaNextForConditionalGeneration, load_llava_next
from pulse.train_ray.config import TrainConfig
from pulse.train_ray.export import probe_matches
from pulse.train_ray.job import run
from pulse.train_ray.synthetic import heart_rate_rows, write_instruction_parquet
from tests.models.original_llava_testlib import write_original_llava

pytestmark = pytest.mark.slow


def test_finetune_from_converted_flat_checkpoint_exports_a_flat_model(ray_session, tmp_path):
    src = write_original_llava(tmp_path / "orig", "flat", seed=5)
    converted = tmp_path / "hf"
    convert(str(src), str(converted), name="tiny-pulse")
    data = tmp_path / "parquet" / "split=train"
    write_instruction_parquet(heart_rate_rows(16, seed=2), str(data), shard_size=8)
    cfg = load_config(
        TrainConfig,
        "configs/train/tiny-cpu.yaml",
        [
            f"storage_path={tmp_path / 'runs'}",
            f"data.train_path={data}",
            "name=flat",
            "model.build=null",
            f"model.checkpoint={converted}",
            "model.patch_merge=flat",
            "max_steps=3",
            "checkpoint_every=3",
            "global_batch_size=4",
            "max_length=256",
            "ray.num_cpus=8",
        ],
    )
    result = run(cfg)
    assert result.metrics["steps"] == 3
    assert result.history[-1][1] < result.history[0][1]  # the loss went down
    config = json.loads(Path(result.export_dir, "config.json").read_text())
    assert config["pulse_patch_merge"] == "flat"
    assert config["architectures"] == ["PulseFlatLlavaNextForConditionalGeneration"]
    model, processor = load_llava_next(result.export_dir)
    assert isinstance(model, PulseFlatLlavaNextForConditionalGeneration)
    assert processor.chat_template
    # The export generates, token for token, what the trained flat model generated inside the worker.
    assert result.metrics["export_probe_match"] is True
    assert probe_matches(model, result.checkpoint_path) is True
