"""Sweep models × ECGBench subsets: answer (resumable), score, judge, then tables and plots.

``pulse ecgbench sweep --config configs/ecgbench/sweep_local.yaml output_dir=runs/sweep``
writes under ``output_dir``: ``predictions/<model>/<subset>.jsonl`` (+ ``errors/``),
``judge/<model>/<subset>/``, ``results.json``, ``results.csv``, ``results.md`` (paper-layout
table with published reference rows, plus an error-row summary), ``plots/*.png`` and
``run_info.json``. Rerunning with the same output_dir only asks for what is missing.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Literal

from pydantic import Field, field_validator

from pulse import io
from pulse.config import StrictModel, write_run_info
from pulse.ecgbench import report
from pulse.ecgbench.judge import judge_items, load_rubrics
from pulse.ecgbench.load import load_subset
from pulse.ecgbench.results import csv_text, jsonable
from pulse.ecgbench.runner import EndpointConfig, run_items
from pulse.ecgbench.score import read_predictions, score_items
from pulse.ecgbench.subsets import SUBSETS
from pulse.errors import error_reason
from pulse.runtime import RayOptions
from pulse.summary import StageSummary


class SweepConfig(StrictModel):
    """What to sweep and where to write it."""

    output_dir: str
    gold: str
    """ECGBench root (HF release or converted JSON layout), local or s3://."""
    subsets: list[str] = Field(default_factory=lambda: list(SUBSETS))
    models: list[EndpointConfig] = Field(..., min_length=1)
    mode: Literal["paper", "strict"] = "paper"
    """Mode of the headline table; results.json/csv hold both modes."""
    allow_partial: bool = False
    judge: EndpointConfig | None = None
    """Judge endpoint for ptb-test-report and arena; without one those subsets are answered, not scored."""
    rubric: str | None = None
    """Rubric YAML (default: configs/ecgbench/judge_rubrics.yaml)."""
    published_scores: str | None = None
    """Reference rows YAML (default: configs/ecgbench/published_scores.yaml)."""
    reference_models: list[str] = Field(default_factory=lambda: list(report.REFERENCE_MODELS))
    plots: bool = True
    storage: io.StorageOptions = Field(default_factory=io.StorageOptions)
    ray: RayOptions = Field(default_factory=RayOptions)
    """Ray to join (``address``, logical CPUs of an embedded Ray), as every Ray job has."""

    @field_validator("subsets")
    @classmethod
    def _known_subsets(cls, value: list[str]) -> list[str]:
        unknown = [s for s in value if s not in SUBSETS]
        if unknown:
            raise ValueError(f"subsets: unknown {unknown}; choose from {sorted(SUBSETS)}")
        return value

    @field_validator("models")
    @classmethod
    def _unique_names(cls, value: list[EndpointConfig]) -> list[EndpointConfig]:
        names = [m.name for m in value]
        if len(set(names)) != len(names):
            raise ValueError(f"models: names must be unique, got {names}")
        return value


@dataclass
class SweepResult(StageSummary):
    """The sweep's summary: items answered / error rows by reason over every model and subset, the
    results files, plus the scored rows and the markdown table it prints above them."""

    stage: str = "ecgbench-sweep"
    results: list[dict] = field(default_factory=list)
    """One row per model x subset x mode, as in ``results.json``."""
    markdown: str = ""

    def lines(self) -> list[str]:
        return [*self.markdown.rstrip("\n").splitlines(), "", *super().lines()]


def _score_subset(
    cfg: SweepConfig, model: EndpointConfig, subset: str, items: list[dict], preds: list[dict]
) -> list[dict]:
    error_rows = sum(1 for p in preds if p["error"])
    if SUBSETS[subset].kind in ("report", "arena"):
        if cfg.judge is None:
            return [
                {
                    "model": model.name,
                    "subset": subset,
                    "mode": cfg.mode,
                    "n": len(preds),
                    "error_rows": error_rows,
                }
            ]
        judge_dir = io.join(cfg.output_dir, "judge", model.name, subset)
        rubrics = load_rubrics(cfg.rubric)
        result = judge_items(subset, items, preds, cfg.judge, judge_dir, rubrics, storage=cfg.storage)
        return [{"model": model.name, "mode": cfg.mode, **result, "error_rows": error_rows}]
    rows = []
    for mode in ("paper", "strict"):
        result = score_items(subset, items, preds, mode, allow_partial=cfg.allow_partial)
        rows.append({"model": model.name, **result})
    return rows


def run(cfg: SweepConfig) -> SweepResult:
    """Run the sweep; returns its ``SweepResult`` (``results``, ``outputs``, the table), which
    ``pulse.jobs.finish`` prints."""
    from pulse.runtime import init_ray

    started = time.time()
    init_ray(cfg.ray)
    write_run_info(cfg, cfg.output_dir, "ecgbench-sweep", cfg.storage)
    results: list[dict] = []
    answered = 0
    reasons: Counter[str] = Counter()
    for subset in cfg.subsets:
        items = load_subset(cfg.gold, subset, allow_partial=cfg.allow_partial, storage=cfg.storage)
        for model in cfg.models:
            preds_path = io.join(cfg.output_dir, "predictions", model.name, f"{subset}.jsonl")
            run_items(items, model, preds_path, cfg.storage)
            preds = read_predictions(preds_path, cfg.storage)
            answered += sum(1 for p in preds if not p["error"])
            reasons.update(error_reason(p["error"]) for p in preds if p["error"])
            results.extend(_score_subset(cfg, model, subset, items, preds))
    results = [jsonable(r) for r in results]
    headline = [r for r in results if r.get("mode") == cfg.mode]
    published = report.load_published(cfg.published_scores)
    table = report.markdown_table(headline, cfg.subsets, published, cfg.reference_models)
    markdown = f"# ECGBench sweep ({cfg.mode} mode)\n\n{table}\n## Error rows\n\n{report.error_summary_table(results)}"
    outputs = {
        "results_json": io.join(cfg.output_dir, "results.json"),
        "results_csv": io.join(cfg.output_dir, "results.csv"),
        "table": io.join(cfg.output_dir, "results.md"),
    }
    io.write_text(
        outputs["results_json"], json.dumps({"mode": cfg.mode, "results": results}, indent=2), cfg.storage
    )
    io.write_text(outputs["results_csv"], csv_text(results), cfg.storage)
    io.write_text(outputs["table"], markdown, cfg.storage)
    if cfg.plots:
        plot_dir = io.join(cfg.output_dir, "plots")
        from pulse.ecgbench.plots import plot_sweep

        outputs.update(plot_sweep(headline, plot_dir, published, cfg.reference_models, cfg.storage))
    return SweepResult(
        rows_ok=answered,
        rows_error=sum(reasons.values()),
        errors_by_reason=dict(sorted(reasons.items())),
        outputs=outputs,
        seconds=time.time() - started,
        results=results,
        markdown=markdown,
    )
