"""ray.serve.llm configs for LLaVA-NeXT, validated on CPU with Ray's LLMConfig model; the run is GPU-only."""

from __future__ import annotations

import pytest

from pulse.serve.config import ServeConfig
from pulse.serve.gpu import build_vllm_app, llm_config_dict, serving_args, validate_llm_config


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


def test_ray_rejects_an_unknown_accelerator_through_our_config():
    cfg = gpu_config(accelerator_type="NOT-A-GPU")
    with pytest.raises(Exception, match="accelerator"):
        validate_llm_config(llm_config_dict(cfg.models[0], cfg))


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
    with pytest.raises(ValueError, match="all-vllm or all-transformers"):
        serving_args(mixed)


def test_build_without_vllm_names_the_extra():
    pytest.importorskip("ray.llm")
    try:
        import vllm  # noqa: F401

        pytest.skip("vLLM is installed here")
    except ImportError:
        pass
    with pytest.raises(ImportError, match=r"pulse-ecg\[vllm\]"):
        build_vllm_app(gpu_config())


@pytest.mark.gpu
def test_vllm_app_serves_on_gpu(ray_session, tmp_path):
    """GPU + vLLM only: build the ray.serve.llm app for a real LLaVA-NeXT and answer one request."""
    import openai
    from ray import serve

    cfg = gpu_config(
        checkpoint="llava-hf/llava-v1.6-mistral-7b-hf", tensor_parallel_size=1, max_model_len=4096
    )
    serve.run(build_vllm_app(cfg), name="pulse-gpu", route_prefix="/")
    try:
        client = openai.OpenAI(base_url="http://127.0.0.1:8000/v1", api_key="x")
        resp = client.chat.completions.create(
            model="pulse-7b", messages=[{"role": "user", "content": "Hi"}], max_tokens=4
        )
        assert resp.choices[0].message.content
    finally:
        serve.delete("pulse-gpu")
