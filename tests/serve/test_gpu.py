"""ray.serve.llm configs for LLaVA-NeXT, validated on CPU with Ray's LLMConfig model; the LLaVA run is GPU-only
(a text model runs on CPU behind pulse's ingress: tests/serve/test_vllm_ingress.py)."""

from __future__ import annotations

import pytest

from pulse.serve import job
from pulse.serve.config import ServeConfig
from pulse.serve.gpu import llm_config_dict, validate_llm_config


def gpu_config(**changes) -> ServeConfig:
    engine = {
        "kind": "vllm",
        "accelerator_type": "H100",
        "max_model_len": 8192,
        "tensor_parallel_size": 2,
        "gpu_memory_utilization": 0.9,
    }
    checkpoint = changes.pop("checkpoint", "llava-hf/llava-v1.6-vicuna-7b-hf")
    model = {"name": "pulse-7b", "checkpoint": checkpoint, "engine": {**engine, **changes}}
    return ServeConfig.model_validate(
        {
            "models": [model],
            "autoscaling": {"min_replicas": 1, "max_replicas": 4, "target_ongoing_requests": 32},
            "auth": {"api_key_env": None},
        }
    )


def test_llm_config_carries_llava_engine_kwargs_and_autoscaling():
    cfg = gpu_config()
    config = llm_config_dict(cfg.models[0], cfg)
    assert config["engine_kwargs"] == {
        "max_model_len": 8192,
        "limit_mm_per_prompt": {"image": 1},
        "tensor_parallel_size": 2,
        "dtype": "auto",
        "gpu_memory_utilization": 0.9,
    }
    validated = validate_llm_config(config)
    assert validated.model_loading_config.model_id == "pulse-7b"
    assert validated.accelerator_type == "H100"
    autoscaling = validated.deployment_config["autoscaling_config"]
    assert (
        autoscaling["min_replicas"],
        autoscaling["max_replicas"],
        autoscaling["target_ongoing_requests"],
    ) == (1, 4, 32)
    # The same deployment options as the transformers models and the ingress (ServeConfig.deployment_options).
    assert {k: validated.deployment_config[k] for k in cfg.deployment_options()} == {
        "max_ongoing_requests": 32,
        "graceful_shutdown_timeout_s": 20.0,
        "health_check_period_s": 5.0,
        "health_check_timeout_s": 30.0,
    }


def test_ray_rejects_an_unknown_accelerator_through_our_config():
    cfg = gpu_config(accelerator_type="NOT-A-GPU")
    with pytest.raises(Exception, match="accelerator"):
        validate_llm_config(llm_config_dict(cfg.models[0], cfg))


def test_cpu_placement_and_runtime_env_reach_the_llm_config():
    cfg = gpu_config(
        accelerator_type=None,
        placement_group_config={"bundles": [{"CPU": 1}]},
        runtime_env={"env_vars": {"VLLM_CPU_KVCACHE_SPACE": "1"}},
    )
    config = llm_config_dict(cfg.models[0], cfg)
    assert "accelerator_type" not in config
    validated = validate_llm_config(config)
    assert validated.placement_group_config == {"bundles": [{"CPU": 1}]}
    assert validated.runtime_env == {"env_vars": {"VLLM_CPU_KVCACHE_SPACE": "1"}}


def test_mixed_engines_are_rejected():
    cfg = gpu_config()
    mixed = cfg.model_copy(
        update={
            "models": [
                *cfg.models,
                cfg.models[0].model_copy(update={"name": "cpu", "engine": "transformers"}),
            ]
        }
    )
    with pytest.raises(ValueError, match="mix engines"):
        job.build_app(mixed)


@pytest.mark.gpu
def test_vllm_app_serves_on_gpu(ray_session, tmp_path):
    """GPU + vLLM only: build the ray.serve.llm app for a real LLaVA-NeXT and answer one request."""
    import openai
    from ray import serve

    cfg = gpu_config(
        checkpoint="llava-hf/llava-v1.6-mistral-7b-hf", tensor_parallel_size=1, max_model_len=4096
    )
    serve.run(job.build_app(cfg), name="pulse-gpu", route_prefix="/")
    try:
        client = openai.OpenAI(base_url="http://127.0.0.1:8000/v1", api_key="x")
        resp = client.chat.completions.create(
            model="pulse-7b", messages=[{"role": "user", "content": "Hi"}], max_tokens=4
        )
        assert resp.choices[0].message.content
    finally:
        serve.delete("pulse-gpu")
