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
    header = [line for line in path.read_text().splitlines() if line.startswith("#")]
    assert any(f"pulse serve --config configs/serve/{path.name}" in line for line in header[:6])


def test_defaults_and_base_url():
    cfg = ServeConfig.model_validate(
        {"models": [{"name": "m", "checkpoint": "/ckpt"}], "route_prefix": "/pulse"}
    )
    assert cfg.host == "127.0.0.1"
    assert cfg.base_url == "http://127.0.0.1:8000/pulse/v1"
    assert cfg.models[0].kind == "transformers"
    assert cfg.models[0].engine.model_source == "/ckpt"


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


def test_the_engine_is_the_llm_seams_discriminated_config():
    from pulse.llm.config import TransformersEngineConfig, VllmEngineConfig

    cfg = load_config(
        ServeConfig, CONFIG_DIR / "serve" / "llava_next_vllm.yaml", ["models.0.engine.max_model_len=4096"]
    )
    engine = cfg.models[0].engine
    assert isinstance(engine, VllmEngineConfig) and engine.max_model_len == 4096
    assert engine.model_source == cfg.models[0].checkpoint
    short = ServeConfig.model_validate({"models": [{"name": "m", "checkpoint": "/c", "engine": "vllm"}]})
    assert isinstance(short.models[0].engine, VllmEngineConfig)  # ``engine: vllm`` is short for {kind: vllm}
    cpu = load_config(ServeConfig, CONFIG_DIR / "serve" / "cpu.yaml", ["models.0.engine.torch_threads=2"])
    assert (
        isinstance(cpu.models[0].engine, TransformersEngineConfig) and cpu.models[0].engine.torch_threads == 2
    )
    assert ServeConfig.model_validate(cpu.model_dump(mode="json")) == cpu  # what app_builder receives


@pytest.mark.parametrize(
    ("model", "fragment"),
    [
        ({"device": "cuda"}, "device: engine settings live under engine:"),
        ({"engine": {"kind": "transformers", "num_cpus": 4}}, "engine.num_cpus is set by num_cpus"),
        (
            {"engine": {"kind": "transformers", "batch_size": 4}},
            "engine.batch_size is set by models\\[\\].max_batch_size",
        ),
        ({"engine": {"kind": "transformers", "model_source": "/other"}}, "engine.model_source is models"),
        ({"engine": {"kind": "transformers", "max_concurency": 4}}, "max_concurency"),
        ({"engine": {"kind": "sglang"}}, "sglang"),
    ],
)
def test_engine_settings_that_serving_would_ignore_are_errors(model, fragment):
    with pytest.raises(ValueError, match=fragment):
        ServeConfig.model_validate({"models": [{"name": "m", "checkpoint": "/c", **model}]})


def test_checkpoint_is_one_line_and_names_the_model(tmp_path):
    folder = tmp_path / "ecg-run-7" / "export"
    folder.mkdir(parents=True)
    (folder / "config.json").write_text("{}")
    cfg = load_config(ServeConfig, None, [f"checkpoint={folder}"])
    (model,) = cfg.models
    assert (model.name, model.checkpoint, model.engine.model_source) == (
        "ecg-run-7-export",
        str(folder),
        str(folder),
    )
    from_file = load_config(
        ServeConfig, CONFIG_DIR / "serve" / "cpu.yaml", [f"checkpoint={folder}", "port=8200"]
    )
    assert from_file.models[0].name == "ecg-run-7-export"  # not the file's pulse-tiny
    assert from_file.models[0].max_batch_size == 8 and from_file.port == 8200  # the rest of the file stays
    hub = ServeConfig.model_validate({"checkpoint": "llava-hf/llava-v1.6-vicuna-7b-hf"})
    assert hub.models[0].name == "llava-v1.6-vicuna-7b"
    two = {
        "models": [{"name": "a", "checkpoint": "/a"}, {"name": "b", "checkpoint": "/b"}],
        "checkpoint": "/c",
    }
    with pytest.raises(ValueError, match="checkpoint= serves one model"):
        ServeConfig.model_validate(two)
