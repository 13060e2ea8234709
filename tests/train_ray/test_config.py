from pathlib import Path

import pytest

from pulse.config import ConfigError, load_config
from pulse.train_ray.config import TrainConfig

CONFIG_DIR = Path(__file__).resolve().parents[2] / "configs" / "train"


@pytest.mark.parametrize("path", sorted(CONFIG_DIR.glob("*.yaml")), ids=lambda p: p.name)
def test_shipped_configs_validate_and_say_how_to_run(path):
    cfg = load_config(TrainConfig, path)
    assert path.read_text().startswith("# ") and "pulse train --config configs/train/" in path.read_text()
    assert cfg.global_batch_size % (cfg.micro_batch_size * cfg.num_workers) == 0


def test_pulse_7b_is_the_published_recipe():
    cfg = load_config(TrainConfig, CONFIG_DIR / "pulse-7b.yaml")
    assert (cfg.strategy, cfg.global_batch_size, cfg.epochs, cfg.lr, cfg.warmup_ratio) == (
        "zero2",
        128,
        3,
        2e-5,
        0.03,
    )
    assert cfg.trainable.vision_tower is False and cfg.trainable.language_model and cfg.bf16 is True
    assert cfg.max_length == 4096 and cfg.gradient_checkpointing and cfg.schedule == "cosine"
    assert cfg.model.expect["image_grid_pinpoints"] == [
        [336, 672],
        [672, 336],
        [672, 672],
        [1008, 336],
        [336, 1008],
    ]


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("global_batch_size=6", "global_batch_size .6. must be a multiple of micro_batch_size"),
        ("offload_optimizer=true", "offload_optimizer needs strategy=zero2 or zero3"),
        ("model.patch_merge=unpad", "patch_merge"),
        ("trainable.language_model=false", None),
        ("strategy=fsdp", "strategy"),
        ("lrr=1", "Unknown config key: lrr"),
        ("name=pulse-7b", "name=pulse-7b is a published model's name"),
        ("name=llava-v1.6-vicuna-7b", "e.g. llava-v1.6-vicuna-7b-repro"),
    ],
)
def test_bad_values_name_the_flag(override, message):
    overrides = [override]
    if override.startswith("trainable"):
        overrides += ["trainable.projector=false", "trainable.vision_tower=false"]
        message = "at least one of vision_tower, projector, language_model"
    with pytest.raises(ConfigError, match=message):
        load_config(TrainConfig, CONFIG_DIR / "tiny-cpu.yaml", overrides)


def test_placement_strategy_is_one_of_rays_and_reaches_the_scaling_config():
    cfg = load_config(TrainConfig, CONFIG_DIR / "tiny-cpu.yaml", ["placement_strategy=SPREAD"])
    assert cfg.placement_strategy == "SPREAD"
    with pytest.raises(ConfigError, match="placement_strategy"):
        load_config(TrainConfig, CONFIG_DIR / "tiny-cpu.yaml", ["placement_strategy=spread"])
    source = (Path(__file__).resolve().parents[2] / "pulse" / "train_ray" / "job.py").read_text()
    assert "placement_strategy=cfg.placement_strategy" in source


def test_metric_reports_are_spaced_by_the_report_interval():
    from pulse.train_ray.loop import report_due

    assert report_due(100.0, None, 2.0)  # the first step always reports
    assert not report_due(101.5, 100.0, 2.0)  # Ray Train would block this one until it polls
    assert report_due(102.0, 100.0, 2.0)
    assert report_due(100.1, 100.0, 0.0)  # 0 reports every step
    cfg = load_config(TrainConfig, "configs/train/tiny-cpu.yaml", ["report_interval_s=0.5"])
    assert cfg.report_interval_s == 0.5
