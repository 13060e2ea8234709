"""ServeConfig validation and every shipped configs/serve/*.yaml."""

from __future__ import annotations

from pathlib import Path

import pytest

from pulse.config import CONFIG_DIR, ConfigError, load_config
from pulse.serve.config import ServeConfig

SHIPPED = sorted((CONFIG_DIR / "serve").glob("*.yaml"))


def test_there_are_shipped_configs():
    assert {p.name for p in SHIPPED} >= {"cpu.yaml", "llava_next_vllm.yaml"}


@pytest.mark.parametrize("path", SHIPPED, ids=[p.name for p in SHIPPED])
def test_shipped_yaml_loads_and_opens_with_its_command(path: Path):
    cfg = load_config(ServeConfig, path, ["port=8123"])
    assert cfg.port == 8123
    assert path.read_text().startswith("# ")
    assert f"configs/serve/{path.name}" in path.read_text().splitlines()[1]


def test_defaults_and_base_url():
    cfg = ServeConfig.model_validate(
        {"models": [{"name": "m", "checkpoint": "/ckpt"}], "route_prefix": "/pulse"}
    )
    assert cfg.host == "127.0.0.1"
    assert cfg.base_url == "http://127.0.0.1:8000/pulse/v1"
    assert cfg.models[0].engine == "transformers"


@pytest.mark.parametrize(
    ("overrides", "fragment"),
    [
        (["autoscaling.min_replicas=3", "autoscaling.max_replicas=2"], "max_replicas"),
        (["limits.default_max_tokens=2000"], "default_max_tokens"),
        (["limits.max_body_bytess=5"], "Unknown config key: limits.max_body_bytess"),
        (["num_cpus=0"], "num_cpus"),
    ],
)
def test_bad_values_name_the_key(overrides, fragment):
    with pytest.raises(ConfigError, match=fragment):
        load_config(ServeConfig, CONFIG_DIR / "serve" / "cpu.yaml", overrides)


def test_duplicate_model_names_are_rejected():
    with pytest.raises(ValueError, match="unique"):
        ServeConfig.model_validate(
            {"models": [{"name": "m", "checkpoint": "a"}, {"name": "m", "checkpoint": "b"}]}
        )
