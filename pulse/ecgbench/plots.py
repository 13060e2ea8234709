"""PNG plots of a sweep: per-subset bars across models, and each model's delta against PULSE-7B.

The plotted value per subset is its primary metric: macro AUC for multi-label subsets, accuracy,
or the judge score.
"""

from __future__ import annotations

import io as stdio
from collections.abc import Sequence

from pulse import io
from pulse.ecgbench.report import ordered_subsets
from pulse.ecgbench.subsets import get_subset


def primary_metric(subset: str) -> str:
    return get_subset(subset).metric_keys[0]


def _values(results: Sequence[dict], published: dict, references: Sequence[str], subsets: list[str]):
    series: dict[str, list[float | None]] = {}
    for model in references:
        scores = published.get(model, {})
        series[f"{model} (published)"] = [scores.get(s, {}).get(primary_metric(s)) for s in subsets]
    by_model: dict[str, dict[str, dict]] = {}
    for row in results:
        by_model.setdefault(row["model"], {})[row["subset"]] = row
    for model, rows in by_model.items():
        series[model] = [rows.get(s, {}).get(primary_metric(s)) for s in subsets]
    return series


def _save(fig, path: str, storage: io.StorageOptions | None) -> str:
    buffer = stdio.BytesIO()
    fig.savefig(buffer, format="png", dpi=120, bbox_inches="tight")
    io.write_bytes(path, buffer.getvalue(), storage)
    return path


def plot_sweep(
    results: Sequence[dict],
    out_dir: str,
    published: dict | None = None,
    references: Sequence[str] = ("PULSE-7B", "GPT-4o", "Random"),
    storage: io.StorageOptions | None = None,
) -> dict[str, str]:
    """Write ``per_subset.png`` and ``delta_vs_pulse.png`` into ``out_dir``; returns their paths."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    published = published or {}
    subsets = ordered_subsets(list(dict.fromkeys(r["subset"] for r in results)))
    labels = [f"{get_subset(s).title}\n({primary_metric(s)})" for s in subsets]
    series = _values(results, published, [r for r in references if r in published], subsets)
    x = np.arange(len(subsets))
    width = 0.8 / max(1, len(series))
    fig, ax = plt.subplots(figsize=(max(6, 1.6 * len(subsets)), 4))
    for i, (name, values) in enumerate(series.items()):
        heights = [np.nan if v is None else v for v in values]
        ax.bar(x + i * width - 0.4 + width / 2, heights, width, label=name)
    ax.set_xticks(x, labels, fontsize=8)
    ax.set_ylabel("score (×100)")
    ax.set_title("ECGBench per subset")
    ax.legend(fontsize=7)
    paths = {"per_subset": _save(fig, io.join(out_dir, "per_subset.png"), storage)}
    plt.close(fig)

    pulse = published.get("PULSE-7B", {})
    swept = {k: v for k, v in series.items() if not k.endswith("(published)")}
    fig, ax = plt.subplots(figsize=(max(6, 1.6 * len(subsets)), 4))
    width = 0.8 / max(1, len(swept))
    for i, (name, values) in enumerate(swept.items()):
        deltas = []
        for s, v in zip(subsets, values, strict=True):
            ref = pulse.get(s, {}).get(primary_metric(s))
            deltas.append(np.nan if v is None or ref is None else v - ref)
        ax.bar(x + i * width - 0.4 + width / 2, deltas, width, label=name)
    ax.axhline(0, color="black", linewidth=0.8)
    ax.set_xticks(x, labels, fontsize=8)
    ax.set_ylabel("Δ vs PULSE-7B (published)")
    ax.set_title("Difference to PULSE-7B")
    ax.legend(fontsize=7)
    paths["delta_vs_pulse"] = _save(fig, io.join(out_dir, "delta_vs_pulse.png"), storage)
    plt.close(fig)
    return paths
