"""Result tables: the paper's ECGBench layout in Markdown, with published reference rows.

A result row is ``{"model", "subset", "mode", <metric>: value, "error_rows", ...}`` (what the
sweep writes). Columns follow the paper: in-domain subsets first (PTB-XL Super, Report, CODE-15%,
ECG-QA), then out-of-domain (CPSC 2018, CSN, G12EC, MMMU-ECG, Arena); multi-label subsets show
AUC / F1 / HL (HL lower is better), the others accuracy or the judge score. Values have 1 decimal.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import yaml

from pulse import io
from pulse.ecgbench.subsets import SUBSETS, Subset, get_subset

DEFAULT_PUBLISHED = Path(__file__).resolve().parents[1] / "configs" / "ecgbench" / "published_scores.yaml"
REFERENCE_MODELS: tuple[str, ...] = ("PULSE-7B", "GPT-4o", "Random")
METRIC_HEADERS = {
    "auc": "AUC ↑",
    "f1": "F1 ↑",
    "hamming_loss": "HL ↓",
    "accuracy": "Acc ↑",
    "report_score": "Score ↑",
    "arena_score": "Score ↑",
}
_PUBLISHED_KEYS = {"AUC": "auc", "F1": "f1", "HL": "hamming_loss"}


def load_published(path: str | None = None) -> dict[str, dict[str, dict[str, float]]]:
    """Published scores as ``{model: {subset: {metric: value}}}`` with pulse's metric names."""
    text = io.read_text(path) if path else DEFAULT_PUBLISHED.read_text()
    data = yaml.safe_load(text)
    return {
        model: {
            s: {_PUBLISHED_KEYS.get(k, k): v for k, v in metrics.items()} for s, metrics in subsets.items()
        }
        for model, subsets in data.items()
        if not model.startswith("_")
    }


def ordered_subsets(names: Sequence[str]) -> list[str]:
    """Subsets in the paper's column order (in-domain first)."""
    order = [s.name for s in SUBSETS.values() if s.in_domain] + [
        s.name for s in SUBSETS.values() if not s.in_domain
    ]
    known = [n for n in order if n in names]
    return known + [n for n in names if n not in known]


def _cell(value) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    return f"{value:.1f}"


def _spec(name: str, specs: dict[str, Subset] | None) -> Subset:
    return (specs or {}).get(name) or get_subset(name)


def _columns(subsets: Sequence[str], specs: dict[str, Subset] | None) -> list[tuple[str, str]]:
    return [(s, key) for s in ordered_subsets(subsets) for key in _spec(s, specs).metric_keys]


def markdown_table(
    results: Sequence[dict],
    subsets: Sequence[str] | None = None,
    published: dict | None = None,
    reference_models: Sequence[str] = REFERENCE_MODELS,
    specs: dict[str, Subset] | None = None,
) -> str:
    """The paper-layout Markdown table: reference rows (published) above the swept models.

    Args:
        results: result rows (``model``, ``subset`` and metric keys).
        subsets: columns to show (default: the subsets in ``results``).
        published: ``load_published()`` output; None for no reference rows.
        reference_models: which published models to show, in order.
        specs: subsets that are not ECGBench configs (own items), by name.
    """
    subsets = list(subsets or dict.fromkeys(r["subset"] for r in results))
    columns = _columns(subsets, specs)
    ordered = [_spec(s, specs) for s in ordered_subsets(subsets)]
    groups = {
        "In-domain": [s.title for s in ordered if s.in_domain],
        "Out-of-domain": [s.title for s in ordered if not s.in_domain],
    }
    lines = [" · ".join(f"**{g}:** {', '.join(t)}" for g, t in groups.items() if t), ""]
    header = ["Model"] + [f"{_spec(s, specs).title} {METRIC_HEADERS[k]}" for s, k in columns]
    lines.append("| " + " | ".join(header) + " |")
    lines.append("|" + "---|" * len(header))
    for model in reference_models if published else ():
        scores = published.get(model, {})
        cells = [_cell(scores.get(s, {}).get(k)) for s, k in columns]
        lines.append(f"| {model} (published) | " + " | ".join(cells) + " |")
    by_model: dict[str, dict[str, dict]] = {}
    for row in results:
        by_model.setdefault(row["model"], {})[row["subset"]] = row
    for model, rows in by_model.items():
        cells = [_cell(rows.get(s, {}).get(k)) for s, k in columns]
        lines.append(f"| {model} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def error_summary_table(results: Sequence[dict]) -> str:
    """Markdown table of error rows (endpoint failures) and judge errors per model and subset."""
    lines = [
        "| Model | Subset | n | Error rows | Unparseable / random | Judge errors |",
        "|---|---|---|---|---|---|",
    ]
    for row in results:
        guessed = row.get("unparseable", row.get("random_fallback", "–"))
        lines.append(
            f"| {row['model']} | {row['subset']} | {row.get('n', '–')} | {row.get('error_rows', 0)} | "
            f"{guessed} | {row.get('judge_errors', '–')} |"
        )
    return "\n".join(lines) + "\n"
