"""``ServeConfig``: what ``pulse serve`` deploys, one typed model for CLI, Serve YAML and KubeRay."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator, model_validator

from pulse.config import StrictModel
from pulse.runtime import RayOptions

LOCAL_HOSTS = {"127.0.0.1", "localhost", "::1"}


class AutoscalingConfig(StrictModel):
    """Serve autoscaling for each model deployment (``autoscaling_config`` in Serve)."""

    min_replicas: int = Field(1, ge=0)
    max_replicas: int = Field(1, ge=1)
    target_ongoing_requests: float = Field(4.0, gt=0)
    upscale_delay_s: float = Field(5.0, ge=0)
    downscale_delay_s: float = Field(60.0, ge=0)
    look_back_period_s: float = Field(30.0, gt=0)
    """window over which ongoing requests are averaged before a scaling decision."""

    @model_validator(mode="after")
    def _check_bounds(self) -> AutoscalingConfig:
        if self.max_replicas < max(self.min_replicas, 1):
            raise ValueError("autoscaling.max_replicas must be >= autoscaling.min_replicas (and >= 1)")
        return self


class ModelConfig(StrictModel):
    """One served model: a Hugging Face-format LLaVA-NeXT checkpoint and how to run it."""

    name: str = Field(..., min_length=1, pattern=r"^[A-Za-z0-9._:/-]+$")
    """The ``model`` value clients send."""
    checkpoint: str
    """A local HF folder (pulse's export) or a hub id such as ``llava-hf/llava-v1.6-mistral-7b-hf``."""
    engine: Literal["transformers", "vllm"] = "transformers"
    max_batch_size: int = Field(8, ge=1)
    batch_wait_timeout_s: float = Field(0.02, ge=0)
    dtype: Literal["auto", "float32", "bfloat16", "float16"] = "float32"
    device: str = "cpu"
    """transformers engine device: ``cpu``, ``cuda``, ``cuda:0``."""
    torch_threads: int | None = Field(None, ge=1)
    """intra-op threads per CPU replica; ``None`` = ceil(num_cpus)."""
    max_model_len: int = Field(4096, ge=16)
    max_images_per_prompt: int = Field(1, ge=1)
    """vLLM ``limit_mm_per_prompt``; the transformers engine uses ``limits.max_images``."""
    tensor_parallel_size: int = Field(1, ge=1)
    accelerator_type: str | None = None
    """vLLM only, e.g. ``H100``, ``A10G``."""
    engine_kwargs: dict = Field(default_factory=dict)
    """Extra vLLM engine kwargs, merged over the ones pulse derives."""


class LimitsConfig(StrictModel):
    """Per-request limits; each violation is a 4xx with an OpenAI-style error body."""

    max_body_bytes: int = Field(20 * 1024 * 1024, ge=1024)
    max_image_bytes: int = Field(8 * 1024 * 1024, ge=64)
    max_image_pixels: int = Field(4096 * 4096, ge=64)
    max_images: int = Field(4, ge=0)
    max_tokens_cap: int = Field(1024, ge=1)
    default_max_tokens: int = Field(256, ge=1)
    max_messages: int = Field(64, ge=1)
    request_timeout_s: float = Field(120.0, gt=0)
    image_formats: list[str] = Field(default_factory=lambda: ["PNG", "JPEG", "WEBP"])

    @field_validator("image_formats")
    @classmethod
    def _upper(cls, value: list[str]) -> list[str]:
        return [v.upper() for v in value]

    @model_validator(mode="after")
    def _check_default(self) -> LimitsConfig:
        if self.default_max_tokens > self.max_tokens_cap:
            raise ValueError("limits.default_max_tokens must be <= limits.max_tokens_cap")
        return self


class AuthConfig(StrictModel):
    """Bearer API keys from an env var and/or a secret file (one key per line)."""

    api_key_env: str | None = "PULSE_API_KEY"
    api_key_file: str | None = None
    allow_unauthenticated_remote: bool = False
    """Allow binding a non-local host without any key (not recommended)."""


class RemoteImagesConfig(StrictModel):
    """``http(s)://`` image URLs: off by default; when on, only hosts on the allow-list."""

    enabled: bool = False
    allowed_hosts: list[str] = Field(default_factory=list)
    """Exact hosts or ``*.example.org`` suffix patterns."""
    timeout_s: float = Field(10.0, gt=0)
    """total time for one download: connect, headers and body."""
    allow_private_addresses: bool = False
    """fetch from hosts that resolve to loopback/private/link-local addresses (tests, trusted LANs)."""


class ServeConfig(StrictModel):
    """Everything ``pulse serve`` needs: models, HTTP, scaling, limits, auth."""

    models: list[ModelConfig] = Field(..., min_length=1)
    app_name: str = "pulse"
    route_prefix: str = "/"
    host: str = "127.0.0.1"
    port: int = Field(8000, ge=1, le=65535)
    autoscaling: AutoscalingConfig = Field(default_factory=AutoscalingConfig)
    num_cpus: float = Field(1.0, gt=0)
    """CPUs per model replica (fractional is fine: 0.5 fits two replicas on one core)."""
    num_gpus: float = Field(0.0, ge=0)
    """GPUs per transformers-engine replica (vLLM models use ``accelerator_type``)."""
    ingress_num_cpus: float = Field(0.1, gt=0)
    ingress_replicas: int = Field(1, ge=1)
    max_ongoing_requests: int = Field(32, ge=1)
    max_queued_requests: int = Field(32, ge=1)
    """requests waiting for a model replica, per model at each caller; beyond it: 429 + Retry-After."""
    retry_after_s: float = Field(1.0, gt=0)
    """the ``Retry-After`` seconds sent with 429 and 503 answers."""
    graceful_shutdown_timeout_s: float = Field(20.0, ge=0)
    health_check_period_s: float = Field(5.0, gt=0)
    health_check_timeout_s: float = Field(30.0, gt=0)
    limits: LimitsConfig = Field(default_factory=LimitsConfig)
    auth: AuthConfig = Field(default_factory=AuthConfig)
    remote_images: RemoteImagesConfig = Field(default_factory=RemoteImagesConfig)
    web_page: bool = True
    ray: RayOptions = Field(default_factory=RayOptions)

    @model_validator(mode="after")
    def _check(self) -> ServeConfig:
        names = [m.name for m in self.models]
        if len(set(names)) != len(names):
            raise ValueError(f"models[].name must be unique, got {names}")
        return self

    def model(self, name: str) -> ModelConfig | None:
        return next((m for m in self.models if m.name == name), None)

    @property
    def base_url(self) -> str:
        host = "127.0.0.1" if self.host in {"0.0.0.0", "::"} else self.host
        prefix = self.route_prefix.rstrip("/")
        return f"http://{host}:{self.port}{prefix}/v1"
