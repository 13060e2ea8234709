"""Typed config of the instruction builder (``pulse build``)."""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field, model_validator

from pulse.config import StrictModel
from pulse.io import StorageOptions
from pulse.llm.config import EngineConfig
from pulse.run_layout import BUILD_LAYOUT, Layout
from pulse.runtime import RayOptions

Generator = Literal["templates", "synthesis", "multi_turn", "report"]

DEFAULT_ROUTES: dict[str, list[Generator]] = {
    "ptbxl": ["templates", "report"],
    "mimic": ["report"],
    "code15": ["templates"],
    "cpsc2018": ["templates"],
    "g12ec": ["templates"],
    "chapman": ["templates"],
    "ningbo": ["templates"],
}


class LLMStageConfig(StrictModel):
    """One LLM-backed stage: which engine, how many tokens, how hot."""

    engine: EngineConfig | None = None
    """``kind: transformers | http | vllm`` plus that engine's settings; null disables the stage."""
    max_tokens: int = Field(512, ge=1)
    temperature: float = Field(0.7, ge=0.0)

    @property
    def enabled(self) -> bool:
        return self.engine is not None


class SynthesisConfig(LLMStageConfig):
    """Report-based synthesis (paper Fig. A5/A6): each report yields ``per_record`` single tasks."""

    prompts: str = "build/prompts/synthesis-v1.yaml"
    """Prompt file (also holds the report-generation questions); a path, or relative to ``configs/``."""
    per_record: int = Field(2, ge=0)
    multi_turn_per_record: int = Field(1, ge=0)
    task_types: list[str] = Field(
        default_factory=lambda: ["close-ended", "open-ended", "fill-in-the-blank", "multiple-choice"]
    )


class TranslateConfig(LLMStageConfig):
    """Translate non-English reports into ``report_en`` (the original ``report`` is kept)."""

    temperature: float = 0.0
    prompts: str = "build/prompts/translate-v1.yaml"
    languages: list[str] = Field(default_factory=lambda: ["de", "sv", "unknown"])
    """Values of ``report_lang`` that are translated; English reports are copied."""


class JudgeConfig(LLMStageConfig):
    """Independent LLM judge (paper Fig. A8, JSON output) and the keep threshold."""

    temperature: float = 0.0
    max_tokens: int = Field(256, ge=1)
    prompts: str = "build/prompts/judge-v1.yaml"
    threshold: float = Field(3.0, ge=0.0, le=5.0)
    """Rows whose mean score is below this are dropped (``judge_below_threshold``)."""
    max_retries: int = Field(2, ge=0)
    """Malformed judge output is asked again this many times, then becomes an error row."""
    apply_to: list[Generator] = Field(default_factory=lambda: ["synthesis", "multi_turn"])


class TemplateConfig(StrictModel):
    """Label-only instruction templates."""

    prompts: str = "build/prompts/templates-v1.yaml"
    """Template file: a path, or relative to the shipped ``configs/``."""
    negatives_per_record: int = Field(2, ge=0)
    """Yes/no questions about labels the record does not have."""
    mcq_options: int = Field(8, ge=2, le=8)


class BalanceConfig(StrictModel):
    """Cap rows per (source, task, qtype) cell, chosen by a seeded hash so reruns agree."""

    max_per_cell: int | None = Field(None, ge=1)


class DedupeConfig(StrictModel):
    """Near-duplicate removal among the instructions of one record (word-shingle Jaccard)."""

    enabled: bool = True
    threshold: float = Field(0.85, gt=0.0, le=1.0)
    shingle: int = Field(3, ge=1)


class FaithfulnessConfig(StrictModel):
    """Rule-based check that an answer does not contradict the record's structured labels."""

    enabled: bool = True


class WriteConfig(StrictModel):
    num_shards: int = Field(4, ge=1)
    """Shards per split; a record's instructions all land in shard ``hash(record_id) % num_shards``."""
    llava: bool = True
    shuffle: Literal["hash", "sort"] = "hash"
    """How rows meet their shard: Ray's hash shuffle (aggregator actors; the default at scale) or a
    sort-based shuffle (tasks only; starts faster on small or crowded clusters)."""
    resume: bool = True
    """Skip shards already written by an earlier (interrupted) run of the same output."""


class BuildConfig(StrictModel):
    """``pulse build``: records + images -> instruction rows -> judge -> filter -> dedupe -> write."""

    RUN_LAYOUT: ClassVar[Layout] = BUILD_LAYOUT
    """paths filled from ``run_dir=R`` (``pulse.run_layout``)."""

    records_dir: str
    images_dir: str
    output_dir: str
    routes: dict[str, list[Generator]] = Field(default_factory=lambda: dict(DEFAULT_ROUTES))
    """Per dataset: which generators run. ECG-QA rows (``<records_dir>/ecgqa/``) are always converted."""
    include_ecgqa: bool = True
    limit: int | None = Field(None, ge=1)
    """Build from at most this many records (handy for smoke runs)."""
    seed: int = 0
    templates: TemplateConfig = TemplateConfig()
    translate: TranslateConfig = TranslateConfig()
    synthesis: SynthesisConfig = SynthesisConfig()
    judge: JudgeConfig = JudgeConfig()
    faithfulness: FaithfulnessConfig = FaithfulnessConfig()
    dedupe: DedupeConfig = DedupeConfig()
    balance: BalanceConfig = BalanceConfig()
    write: WriteConfig = WriteConfig()
    storage: StorageOptions = StorageOptions()
    ray: RayOptions = RayOptions()
    overwrite: bool = False
    """Remove an earlier build in ``output_dir`` and rebuild from scratch; without it a rerun with
    a changed config is refused (the same config resumes)."""

    @model_validator(mode="after")
    def _llm_generators_need_an_engine(self) -> BuildConfig:
        wanted = {g for gens in self.routes.values() for g in gens}
        if wanted & {"synthesis", "multi_turn"} and not self.synthesis.enabled:
            raise ValueError(
                "routes ask for 'synthesis'/'multi_turn' but synthesis.engine is null: "
                "set synthesis.engine.kind=transformers|http|vllm or drop them from routes"
            )
        return self
