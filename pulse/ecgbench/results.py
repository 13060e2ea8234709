"""The results folder of ``pulse ecgbench score|run --output-dir``, laid out like a sweep's.

``<output_dir>/results.json`` (``{"mode", "results": [paper row, strict row], "sources"}``),
``results.csv`` (the same rows), ``results.md`` (the paper-layout table with published reference
rows, plus error rows) and ``answers.jsonl`` (one row per scored item: ``question_id``, ``prompt``,
``text``, ``gold``, ``extracted``, ``correct``, ``error``; in the headline mode). ``run`` adds its
raw model answers as ``predictions.jsonl`` (+ ``errors/predictions.jsonl``).
"""

from __future__ import annotations

import csv
import io as stdio
import json
import math
from collections.abc import Sequence

from pulse import io
from pulse.ecgbench import report
from pulse.ecgbench.score import score_items
from pulse.ecgbench.subsets import Subset

MODES: tuple[str, str] = ("paper", "strict")


class NothingScoredError(ValueError):
    """A score without a single usable number (no matched item, all error rows, or all metrics null)."""


def _null(value) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def jsonable(row: dict) -> dict:
    """The row with NaN as None (JSON has no NaN)."""
    return {k: None if isinstance(v, float) and math.isnan(v) else v for k, v in row.items()}


def nothing_scored(result: dict, spec: Subset) -> str | None:
    """Why ``result`` holds no usable score, or None when at least one headline metric has a value."""
    n = result.get("n", 0)
    if not n:
        return "no prediction matched a gold item"
    if result.get("error_rows", 0) >= n:
        return f"all {n} predictions are error rows (see the run's errors/ file)"
    headline = [k for k in spec.metric_keys if k != "hamming_loss"]  # HL alone ranks nothing
    if all(_null(result.get(key)) for key in headline):
        return f"{'/'.join(headline)} null for the {n} predictions (gold or answers hold no label)"
    return None


def score_both_modes(
    spec: Subset,
    gold: Sequence[dict],
    predictions: Sequence[dict],
    mode: str,
    model: str,
    allow_partial: bool = False,
) -> tuple[list[dict], list[dict]]:
    """Result rows for paper and strict mode (``model`` first), and the per-item rows of ``mode``."""
    rows, answers = [], []
    for each in MODES:
        details: list[dict] | None = answers if each == mode else None
        result = score_items(spec, gold, predictions, each, allow_partial=allow_partial, details=details)
        rows.append(jsonable({"model": model, **result}))
    return rows, answers


def csv_text(rows: Sequence[dict]) -> str:
    """Rows as CSV; the header is the union of keys in first-seen order."""
    keys = list(dict.fromkeys(k for r in rows for k in r))
    buffer = stdio.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=keys)
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue()


def write_results(
    output_dir: str,
    rows: Sequence[dict],
    mode: str,
    answers: Sequence[dict] = (),
    sources: dict | None = None,
    specs: dict[str, Subset] | None = None,
    storage: io.StorageOptions | None = None,
) -> dict[str, str]:
    """Write results.json/.csv/.md (and answers.jsonl when given); returns ``{name: path}``."""
    headline = [r for r in rows if r.get("mode") == mode]
    published = report.load_published()
    own = bool(specs) and any(r["subset"] in specs for r in headline)
    table = report.markdown_table(headline, published=None if own else published, specs=specs)
    markdown = f"# ECGBench ({mode} mode)\n\n{table}\n## Error rows\n\n{report.error_summary_table(headline)}"
    paths = {
        "results_json": io.join(output_dir, "results.json"),
        "results_csv": io.join(output_dir, "results.csv"),
        "table": io.join(output_dir, "results.md"),
    }
    body = {"mode": mode, "results": [jsonable(r) for r in rows], "sources": sources or {}}
    io.write_text(paths["results_json"], json.dumps(body, indent=2), storage)
    io.write_text(paths["results_csv"], csv_text(rows), storage)
    io.write_text(paths["table"], markdown, storage)
    if answers:
        paths["answers"] = io.join(output_dir, "answers.jsonl")
        lines = "".join(json.dumps(a, ensure_ascii=False) + "\n" for a in answers)
        io.write_text(paths["answers"], lines, storage)
    return paths
