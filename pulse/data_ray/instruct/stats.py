"""Build statistics from the shard markers: a Table-A1-style count table and the judge histogram.

Markers hold each shard's counts, so the statistics cover every shard, including those a
resumed run skipped, without reading the Parquet back.
"""

from __future__ import annotations

import io as _stdio
from collections import Counter
from typing import Any

from pulse import io
from pulse.data_ray.instruct.write import HIST_BINS

TASK_NAMES = {
    "feature": "Basic Feature Recognition",
    "rhythm": "Heart Rhythm Analysis",
    "morphology": "Morphology and Pathology Identification",
    "report": "Clinical Report",
}
QTYPE_NAMES = {
    "close": "Close-ended QA",
    "open": "Open-ended QA",
    "fill": "Fill-in-blank",
    "mcq": "Multi-choice QA",
    "multi-turn": "Multi-turn dialogue",
}


def merge_markers(markers: list[dict[str, Any]]) -> dict[str, Any]:
    """Sum the counts of all shard markers."""
    cells: Counter[str] = Counter()
    splits: Counter[str] = Counter()
    errors: Counter[str] = Counter()
    kept = [0] * HIST_BINS
    dropped = [0] * HIST_BINS
    for marker in markers:
        cells.update(marker["cells"])
        splits.update(marker["splits"])
        errors.update(marker["errors"])
        kept = [a + b for a, b in zip(kept, marker["judge_kept"], strict=True)]
        dropped = [a + b for a, b in zip(dropped, marker["judge_dropped"], strict=True)]
    return {
        "cells": dict(cells),
        "splits": dict(splits),
        "errors": dict(sorted(errors.items())),
        "judge_kept": kept,
        "judge_dropped": dropped,
        "rows_ok": sum(splits.values()),
    }


def count_table(cells: dict[str, int]) -> list[tuple[str, str, str, int]]:
    """(source, task, type, n) rows ordered like Table A1, with per-source and grand totals."""
    rows: list[tuple[str, str, str, int]] = []
    by_source: dict[str, list[tuple[str, str, int]]] = {}
    for cell, n in cells.items():
        source, task, qtype = cell.split("/")
        by_source.setdefault(source, []).append((task, qtype, n))
    task_order = list(TASK_NAMES)
    qtype_order = list(QTYPE_NAMES)
    for source in sorted(by_source):
        items = sorted(
            by_source[source],
            key=lambda t: (
                task_order.index(t[0]) if t[0] in task_order else 99,
                qtype_order.index(t[1]) if t[1] in qtype_order else 99,
            ),
        )
        for task, qtype, n in items:
            rows.append((source, TASK_NAMES.get(task, task), QTYPE_NAMES.get(qtype, qtype), n))
        rows.append((source, "Total", "", sum(n for _, _, n in items)))
    rows.append(("All", "Total", "", sum(cells.values())))
    return rows


def markdown_table(rows: list[tuple[str, str, str, int]]) -> str:
    lines = ["| Source | Task | Type | # Samples |", "|---|---|---|---:|"]
    lines += [f"| {s} | {t} | {q} | {n:,} |" for s, t, q, n in rows]
    return "\n".join(lines) + "\n"


def csv_table(rows: list[tuple[str, str, str, int]]) -> str:
    return "source,task,type,n\n" + "".join(f"{s},{t},{q},{n}\n" for s, t, q, n in rows)


def histogram_png(kept: list[int], dropped: list[int], threshold: float | None) -> bytes:
    """PNG of judge scores: kept vs dropped rows, with the threshold marked."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    width = 5.0 / HIST_BINS
    lefts = [i * width for i in range(HIST_BINS)]
    fig, ax = plt.subplots(figsize=(6, 3.5), dpi=100)
    ax.bar(lefts, kept, width=width, align="edge", label="kept", color="#2b7bba")
    ax.bar(lefts, dropped, width=width, align="edge", bottom=kept, label="dropped", color="#d9534f")
    if threshold is not None:
        ax.axvline(threshold, color="black", linestyle="--", label=f"threshold {threshold:g}")
    ax.set_xlabel("judge score (mean of relevance, clarity, answerability)")
    ax.set_ylabel("rows")
    ax.set_xlim(0, 5)
    ax.legend()
    fig.tight_layout()
    buffer = _stdio.BytesIO()
    fig.savefig(buffer, format="png")
    plt.close(fig)
    return buffer.getvalue()


def write_stats(
    output_dir: str, totals: dict[str, Any], threshold: float | None, storage: io.StorageOptions | None = None
) -> dict[str, str]:
    """Write ``stats/table.md``, ``stats/table.csv`` and, when any row was judged,
    ``stats/judge_hist.png`` (no empty plot for a build without a judge); returns name -> path."""
    rows = count_table(totals["cells"])
    paths = {
        "table_md": io.join(output_dir, "stats", "table.md"),
        "table_csv": io.join(output_dir, "stats", "table.csv"),
    }
    io.write_text(paths["table_md"], markdown_table(rows), storage)
    io.write_text(paths["table_csv"], csv_table(rows), storage)
    hist = io.join(output_dir, "stats", "judge_hist.png")
    if any(totals["judge_kept"]) or any(totals["judge_dropped"]):
        paths["judge_hist"] = hist
        io.write_bytes(hist, histogram_png(totals["judge_kept"], totals["judge_dropped"], threshold), storage)
    else:
        io.delete(hist, storage)  # a plot left by an earlier judged build of this folder
    return paths
