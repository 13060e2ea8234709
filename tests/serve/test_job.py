"""The job module: CLI wiring, building the Serve application, and the safety checks before deploying."""

from __future__ import annotations

import pytest
from ray.serve.deployment import Application

from pulse.cli import main as cli_main
from pulse.config import CONFIG_DIR
from pulse.serve import job
from pulse.serve.auth import AuthSetupError
from pulse.serve.config import ServeConfig


def config(**changes) -> ServeConfig:
    return ServeConfig.model_validate({"models": [{"name": "m:1", "checkpoint": "/ckpt"}], **changes})


def test_cli_prints_the_resolved_config(capsys):
    assert (
        cli_main(["serve", "--config", str(CONFIG_DIR / "serve" / "cpu.yaml"), "--print-config", "port=8321"])
        == 0
    )
    out = capsys.readouterr().out
    assert "port: 8321" in out and "pulse-tiny" in out
    assert job.CONFIG_CLASS is ServeConfig and job.__doc__


def test_cli_serves_a_checkpoint_in_one_line(capsys, tiny_llava_dir):
    assert cli_main(["serve", "--checkpoint", str(tiny_llava_dir), "--print-config"]) == 0
    out = capsys.readouterr().out
    assert f"name: {tiny_llava_dir.name}" in out and f"checkpoint: {tiny_llava_dir}" in out
    assert cli_main(["serve", "--checkpoint", "/x", "max_batch_size=4", "--print-config"]) == 2
    assert "max_batch_size" in capsys.readouterr().err


def test_app_builder_builds_ingress_and_one_deployment_per_model(monkeypatch):
    monkeypatch.delenv("PULSE_API_KEY", raising=False)
    app = job.app_builder(
        config(models=[{"name": "a", "checkpoint": "/x"}, {"name": "b/c", "checkpoint": "/y"}]).model_dump()
    )
    assert isinstance(app, Application)
    assert job.deployment_name("b/c") == "model-b-c"


def test_public_host_without_a_key_is_refused(monkeypatch):
    monkeypatch.delenv("PULSE_API_KEY", raising=False)
    with pytest.raises(AuthSetupError, match="without an API key"):
        job.build_app(config(host="0.0.0.0"))
    monkeypatch.setenv("PULSE_API_KEY", "secret")
    assert isinstance(job.build_app(config(host="0.0.0.0")), Application)


def test_vllm_models_get_pulses_ingress_with_api_keys_in_front_of_ray_llm_servers(monkeypatch):
    """The vLLM app starts with keys configured: pulse's ingress, bound to one Ray LLMServer per model."""
    pytest.importorskip("ray.serve.llm")
    monkeypatch.setenv("PULSE_API_KEY", "secret")
    app = job.build_app(
        config(
            host="0.0.0.0",
            models=[
                {
                    "name": "m",
                    "checkpoint": "llava-hf/x",
                    "engine": {"kind": "vllm", "accelerator_type": "H100"},
                }
            ],
        )
    )
    assert isinstance(app, Application)
    ingress = app._bound_deployment
    assert ingress.name == "ingress" and ingress.func_or_class.__name__ == "OpenAIIngress"
    _config, models, digests = ingress.init_args
    assert len(digests) == 1 and "secret" not in str(digests)
    (server,) = models.values()
    assert server._bound_deployment.name == "model-m"
    assert (
        server._bound_deployment.func_or_class.__name__ == "LLMServer"
    )  # Ray's, as build_llm_deployment makes it


def test_every_ray_autoscaling_option_reaches_the_model_deployment_with_pulses_defaults(monkeypatch):
    """``autoscaling`` is Ray's own AutoscalingConfig: Ray's options pulse never re-declared arrive too."""
    monkeypatch.delenv("PULSE_API_KEY", raising=False)
    scale_to_zero = {
        "min_replicas": 0,
        "initial_replicas": 2,
        "max_replicas": 3,
        "downscale_to_zero_delay_s": 300,
    }
    app = job.build_app(config(autoscaling=scale_to_zero, health_check_period_s=2.0))
    model = app._bound_deployment.init_args[1]["m:1"]._bound_deployment
    options = model._deployment_config
    applied = options.autoscaling_config
    assert (applied.min_replicas, applied.initial_replicas, applied.max_replicas) == (0, 2, 3)
    assert applied.downscale_to_zero_delay_s == 300
    # Unset keys keep pulse's defaults, not Ray's (target 2, 30 s up, 600 s down).
    assert (applied.target_ongoing_requests, applied.upscale_delay_s, applied.downscale_delay_s) == (4, 5, 60)
    assert (options.health_check_period_s, options.max_ongoing_requests) == (2.0, 32)


@pytest.mark.parametrize(
    ("autoscaling", "fragment"),
    [
        ({"max_replica": 3}, "max_replica"),
        ({"min_replicas": 2, "initial_replicas": 1}, "initial_replicas"),
        ({"max_replicas": 0}, "max_replicas"),
    ],
)
def test_a_bad_autoscaling_key_or_value_is_refused_by_name(autoscaling, fragment):
    with pytest.raises(ValueError, match=fragment):
        config(autoscaling=autoscaling)
