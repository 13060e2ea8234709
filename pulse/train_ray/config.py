"""``TrainConfig``: every knob of a LLaVA-NeXT finetune with Ray Train, typed and validated.

Cross-field checks raise errors that name the flags (``global_batch_size`` must be a
multiple of ``micro_batch_size * num_workers``, exactly one of ``model.build`` /
``model.checkpoint``). The DeepSpeed dict is generated from this config by
``pulse.train_ray.deepspeed_config``; nothing else reads raw dicts.
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal

from pydantic import Field, model_validator

from pulse import io
from pulse.config import StrictModel
from pulse.models.tiny_llava import LlavaBuildConfig
from pulse.run_layout import TRAIN_LAYOUT, Layout
from pulse.runtime import RayOptions


class MixtureSource(StrictModel):
    """One instruction source of a training mixture."""

    name: str = Field(pattern=r"^[A-Za-z0-9_.-]+$")
    path: str
    """Instruction Parquet (folder or file), or, with ``format: llava``, a LLaVA JSON/JSONL file."""
    weight: float = Field(1.0, gt=0)
    """Share of the mixture: source rows per epoch = ``mixture_size * weight / sum(weights)``
    (a small source is repeated, a large one subsampled with the mixture seed)."""
    format: Literal["parquet", "llava"] = "parquet"
    images: str | list[str] | None = None
    """``format: llava`` only: the image folder, a folder of ``.tar``/``.tar.gz`` shards, or shard paths.
    The file is imported once to ``<run>/imported/<name>/`` (``pulse import-llava``) and reused."""

    @model_validator(mode="after")
    def _images(self) -> MixtureSource:
        if (self.format == "llava") != (self.images is not None):
            raise ValueError(f"source {self.name}: images is required with format=llava and only then")
        return self


class DataConfig(StrictModel):
    """Where the instruction Parquet is and how rows become training samples."""

    train_path: str | None = None
    """An instruction Parquet folder or file (``<build_out>/parquet/split=train/``), local or ``s3://``."""
    sources: list[MixtureSource] = Field(default_factory=list)
    """A weighted mixture instead of ``train_path`` (e.g. ECGInstruct + ``pulse build`` output + own
    LLaVA JSON). The resolved mixture is written to ``<run>/mixture.json``; a resumed run reuses it."""
    mixture_size: int | None = Field(None, ge=1)
    """Rows per epoch of the mixture; default the sum of the sources' rows."""
    mixture_seed: int = 0
    image_root: str | None = None
    """Folder that ``image_path`` is relative to, for rows without inline ``image`` bytes."""
    truncation: Literal["truncate", "drop"] = "truncate"
    """Over-long samples: cut answer text at ``max_length`` (never image tokens) or drop and count."""
    limit: int | None = None
    """Use only the first N rows (smoke runs)."""
    shuffle_seed: int | None = 0
    """Shuffle the order of Parquet files, and seed each epoch's sample shuffle, with this;
    ``null`` keeps file order and an unseeded sample shuffle."""
    shuffle_buffer_rows: int = Field(128, ge=0)
    """Encoded samples each worker shuffles in (Ray's ``local_shuffle_buffer_size``); ``0``: stream order.
    Without it the rows of one file, e.g. every question about one image, train back to back. Costs
    this many samples of memory per worker (LLaVA-NeXT at 336 px with 5 tiles: about 7 MB each)."""
    preprocess_concurrency: int = 1
    """Ray Data tasks decoding images and running the processor in parallel."""
    preprocess_batch_size: int = 16
    preprocess_cpus: float = 0.5

    @model_validator(mode="after")
    def _one_input(self) -> DataConfig:
        if (self.train_path is None) == (not self.sources):
            raise ValueError("set exactly one of data.train_path or data.sources")
        names = [s.name for s in self.sources]
        if len(set(names)) != len(names):
            raise ValueError(f"data.sources names must be unique, got {names}")
        return self


class ModelConfig(StrictModel):
    """A model built from a config (tests, benchmarks) or loaded from a Hugging Face checkpoint."""

    build: LlavaBuildConfig | None = None
    checkpoint: str | None = None
    """A Hugging Face id (``llava-hf/llava-v1.6-vicuna-7b-hf``) or a local folder in HF format."""
    expect: dict[str, Any] = Field(default_factory=dict)
    """Architecture values the run relies on (``image_grid_pinpoints``, ``vision_feature_layer``,
    ``vision_feature_select_strategy``, ``image_token_index``...). They are checked against the
    checkpoint's own config; a conflicting value is an error, never an override."""
    patch_merge: Literal["spatial_unpad", "flat"] | None = None
    """How anyres tile features are merged: ``spatial_unpad`` (HF LLaVA-NeXT: unpadded grid +
    ``image_newline``) or ``flat`` (original LLaVA, PULSE-7B: base crop then grid crops, no unpad,
    no newline; see ``pulse.models.flat_merge``). Unset: what the checkpoint records in
    ``pulse_patch_merge`` (``pulse convert`` writes it). A value the checkpoint contradicts is an
    error here for a local folder and at load for a hub id, never an override."""
    attn_implementation: str | None = "sdpa"

    @model_validator(mode="after")
    def _one_source(self) -> ModelConfig:
        from pulse.models.checkpoint_info import PATCH_MERGE_FIELD, local_config, patch_merge_of

        if (self.build is None) == (self.checkpoint is None):
            raise ValueError("set exactly one of model.build (from config) or model.checkpoint (HF id/path)")
        recorded = local_config(self.checkpoint) if self.checkpoint else None
        if self.patch_merge and recorded is not None and patch_merge_of(recorded) != self.patch_merge:
            raise ValueError(
                f"model.patch_merge={self.patch_merge} but checkpoint {self.checkpoint} records "
                f"{PATCH_MERGE_FIELD}={patch_merge_of(recorded)!r}"
            )
        return self


class TrainableParts(StrictModel):
    """Which parts receive gradients (PULSE: frozen tower, trained projector and LM)."""

    vision_tower: bool = False
    projector: bool = True
    language_model: bool = True


class TrackingConfig(StrictModel):
    """Experiment tracking from rank 0; both optional."""

    mlflow_tracking_uri: str | None = None
    mlflow_experiment: str = "pulse-train"
    tensorboard_dir: str | None = None
    """A local folder for TensorBoard event files (tensorboardX)."""


class FaultInjection(StrictModel):
    """Chaos testing: SIGKILL one worker process after step ``at_step``, once per run."""

    at_step: int
    rank: int = 1
    delay_s: float = 5.0
    """Seconds between the step's report and the kill (lets Ray register that step's checkpoint)."""


class TrainConfig(StrictModel):
    """A LLaVA-NeXT finetune with Ray Train (``pulse train --config configs/train/<name>.yaml``)."""

    RUN_LAYOUT: ClassVar[Layout] = TRAIN_LAYOUT
    """paths filled from ``run_dir=R`` (``pulse.run_layout``)."""

    name: str
    """Run name; checkpoints land in ``<storage_path>/<name>/``; rerunning the same name resumes. The
    export records it as the model's identity (its served name), so a published model's name
    (``pulse-7b``, ``llava-v1.6-vicuna-7b``, ...) is refused: what pulse trains is another model."""
    storage_path: str
    data: DataConfig
    model: ModelConfig
    num_workers: int = 2
    use_gpu: bool = False
    cpus_per_worker: float = 1.0
    placement_strategy: Literal["PACK", "SPREAD", "STRICT_PACK", "STRICT_SPREAD"] = "PACK"
    """How Ray places the workers: ``PACK`` fills a node first (fast NVLink/shm collectives);
    ``SPREAD`` puts one per node when it can (each worker gets a node's NIC and disk)."""
    strategy: Literal["ddp", "zero2", "zero3"] = "ddp"
    offload_optimizer: bool = False
    """ZeRO only: keep optimizer state on CPU (DeepSpeedCPUAdam; its first use JIT-compiles cpu_adam)."""
    max_steps: int | None = None
    """Optimizer steps; when unset, ``epochs`` passes over the data."""
    epochs: int = 1
    lr: float = 2e-5
    weight_decay: float = 0.0
    warmup_ratio: float = 0.03
    schedule: Literal["cosine", "linear", "constant"] = "cosine"
    global_batch_size: int = 128
    micro_batch_size: int = 2
    max_length: int = 4096
    bf16: bool | Literal["auto"] = "auto"
    """``auto``: bf16 on a CUDA device that supports it, fp32 otherwise."""
    gradient_checkpointing: bool = False
    max_grad_norm: float = 1.0
    checkpoint_every: int = 100
    report_interval_s: float = 2.0
    """Least seconds between metric-only ``ray.train.report`` calls (checkpoints always report).
    Ray Train 2.x collects one report per worker every ``RAY_TRAIN_HEALTH_CHECK_INTERVAL_S`` (2 s)
    and a worker blocks until its previous report was collected, so reporting every step of a
    fast step stalls training; per-step metrics still go to the trackers."""
    keep_checkpoints: int = 2
    max_failures: int = 1
    seed: int = 0
    trainable: TrainableParts = Field(default_factory=TrainableParts)
    export_dir: str | None = None
    """Hugging Face export of the final model; default ``<storage_path>/<name>/export``."""
    storage: io.StorageOptions = Field(default_factory=io.StorageOptions)
    ray: RayOptions = Field(default_factory=RayOptions)
    tracking: TrackingConfig = Field(default_factory=TrackingConfig)
    fault: FaultInjection | None = None
    overwrite: bool = False
    """Remove the run folder ``<storage_path>/<name>/`` (checkpoints included) and train from scratch;
    without it a rerun of the same name with a changed config is refused."""

    @model_validator(mode="after")
    def _check(self) -> TrainConfig:
        per_step = self.micro_batch_size * self.num_workers
        if self.global_batch_size % per_step:
            raise ValueError(
                f"global_batch_size ({self.global_batch_size}) must be a multiple of "
                f"micro_batch_size * num_workers ({self.micro_batch_size} * {self.num_workers})"
            )
        if self.offload_optimizer and self.strategy == "ddp":
            raise ValueError("offload_optimizer needs strategy=zero2 or zero3")
        if not any(self.trainable.model_dump().values()):
            raise ValueError(
                "trainable: at least one of vision_tower, projector, language_model must be true"
            )
        if self.max_steps is not None and self.max_steps < 1:
            raise ValueError("max_steps must be >= 1")
        from pulse.models.checkpoint_info import KNOWN_CHECKPOINTS

        if self.name in set(KNOWN_CHECKPOINTS.values()):
            raise ValueError(
                f"name={self.name} is a published model's name, and the export is served and benchmarked "
                f"under the run's name; name the run after what it is (e.g. {self.name}-repro, {self.name}-ecg)"
            )
        if self.fault is not None and not 0 <= self.fault.rank < self.num_workers:
            raise ValueError(f"fault.rank must be in [0, num_workers={self.num_workers})")
        return self

    @property
    def grad_accum_steps(self) -> int:
        return self.global_batch_size // (self.micro_batch_size * self.num_workers)

    @property
    def run_dir(self) -> str:
        return io.join(self.storage_path, self.name)

    @property
    def resolved_export_dir(self) -> str:
        return self.export_dir or io.join(self.run_dir, "export")

    @property
    def errors_dir(self) -> str:
        return io.join(self.run_dir, "errors")
