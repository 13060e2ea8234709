"""GPU serving through ``ray.serve.llm`` (vLLM): pulse builds the ``LLMConfig``s, Ray runs them.

GPU-only at run time: ``build_vllm_app`` needs ``pip install "pulse-ecg[vllm]"`` and a GPU.
The config dicts are plain data, validated on CPU against Ray's ``LLMConfig`` pydantic
model, and the same dicts go into the generated Serve YAML / KubeRay ``serveConfigV2``.
ray.serve.llm's ingress does not check API keys, so this path refuses to start with keys
configured (front it with an authenticating gateway instead) and keeps the local-only
binding rule for unauthenticated endpoints.
"""

from __future__ import annotations

from typing import Any

from pulse.serve.config import ModelConfig, ServeConfig, engine_kind

VLLM_IMPORT_PATH = "ray.serve.llm:build_openai_app"


def llm_config_dict(model: ModelConfig, cfg: ServeConfig) -> dict[str, Any]:
    """The ``LLMConfig`` fields for one LLaVA-NeXT model, as plain data (YAML/JSON-ready)."""
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
        "deployment_config": {
            "autoscaling_config": cfg.autoscaling.model_dump(),
            "max_ongoing_requests": cfg.max_ongoing_requests,
            "graceful_shutdown_timeout_s": cfg.graceful_shutdown_timeout_s,
            "health_check_period_s": cfg.health_check_period_s,
            "health_check_timeout_s": cfg.health_check_timeout_s,
        },
    }
    if engine.accelerator_type:
        config["accelerator_type"] = engine.accelerator_type
    return config


def serving_args(cfg: ServeConfig) -> dict[str, Any]:
    """``args`` of ``ray.serve.llm:build_openai_app``: every vLLM model of the config."""
    vllm_models = [m for m in cfg.models if engine_kind(m) == "vllm"]
    if len(vllm_models) != len(cfg.models):
        raise ValueError("models[].engine: one app serves either all-vllm or all-transformers models")
    return {"llm_configs": [llm_config_dict(m, cfg) for m in vllm_models]}


def validate_llm_config(config: dict[str, Any]):
    """Validate a config dict with Ray's internal ``LLMConfig`` model (imports without vLLM).

    Internal API: used only to check config shape on CPU; ``build_vllm_app`` uses the public one.
    """
    from ray.llm._internal.serve.core.configs.llm_config import LLMConfig

    return LLMConfig.model_validate(config)


def build_vllm_app(cfg: ServeConfig):
    """``ray.serve.llm.build_openai_app`` for the config's models (GPU + vLLM only)."""
    from pulse.serve.auth import load_api_keys

    if load_api_keys(cfg.auth):
        raise ValueError(
            "engine=vllm: ray.serve.llm's OpenAI ingress does not check API keys; serve it behind an "
            "authenticating gateway and unset auth.api_key_env / auth.api_key_file"
        )
    try:
        from ray.serve.llm import LLMConfig, build_openai_app
    except ImportError as exc:
        raise ImportError(f'engine=vllm needs vLLM: pip install "pulse-ecg[vllm]" ({exc})') from exc
    args = serving_args(cfg)
    return build_openai_app({"llm_configs": [LLMConfig(**c) for c in args["llm_configs"]]})
