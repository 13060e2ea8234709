"""Generated Serve config YAML, validated with Ray's own schema (the RayService embeds it: tests/cluster)."""

from __future__ import annotations

import pytest
import yaml

from pulse.config import CONFIG_DIR, ConfigError, load_config
from pulse.serve.config import ServeConfig
from pulse.serve.gpu import llm_config_dict, validate_llm_config
from pulse.serve.serve_config import main, serve_config


def test_cpu_config_round_trips_through_the_app_builder_args(tmp_path):
    cfg = load_config(ServeConfig, CONFIG_DIR / "serve" / "cpu.yaml", ["port=8555"])
    doc = serve_config(cfg, working_dir="s3://bucket/pulse.zip")
    app = doc["applications"][0]
    assert app["import_path"] == "pulse.serve.job:app_builder"
    assert doc["http_options"] == {"host": "127.0.0.1", "port": 8555}
    assert app["runtime_env"] == {"working_dir": "s3://bucket/pulse.zip"}
    assert ServeConfig.model_validate(app["args"]).models == cfg.models


def test_vllm_config_runs_pulses_app_whose_llm_configs_validate():
    """vLLM models are served by the same app builder (pulse's ingress in front of Ray's LLMServer)."""
    cfg = load_config(ServeConfig, CONFIG_DIR / "serve" / "llava_next_vllm.yaml")
    app = serve_config(cfg)["applications"][0]
    assert app["import_path"] == "pulse.serve.job:app_builder"
    rebuilt = ServeConfig.model_validate(app["args"])
    assert rebuilt.models == cfg.models and rebuilt.auth.api_key_env == "PULSE_API_KEY"
    for model in rebuilt.models:
        validated = validate_llm_config(llm_config_dict(model, rebuilt))
        assert validated.engine_kwargs["limit_mm_per_prompt"] == {"image": 1}


def test_a_mix_of_engines_is_refused():
    cfg = ServeConfig(
        models=[
            {"name": "a", "checkpoint": "/m/a"},
            {"name": "b", "checkpoint": "/m/b", "engine": "vllm"},
        ]
    )
    with pytest.raises(ConfigError, match="mix engines"):
        serve_config(cfg)


def test_cli_writes_the_serve_yaml_locally_and_to_s3(tmp_path, s3_bucket):
    from pulse import io

    out = tmp_path / "serve.yaml"
    assert main(["-c", str(CONFIG_DIR / "serve" / "cpu.yaml"), "--out", str(out), "port=8600"]) == 0
    assert yaml.safe_load(out.read_text())["http_options"]["port"] == 8600
    assert main(["-c", str(CONFIG_DIR / "serve" / "cpu.yaml"), "--out", f"{s3_bucket}/serve.yaml"]) == 0
    assert yaml.safe_load(io.read_text(f"{s3_bucket}/serve.yaml"))["applications"]
