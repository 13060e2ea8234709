"""Balance: cap the rows of each (source, task, qtype) cell.

Applied to the build plan (template rows and pending LLM requests), so no LLM time is spent
on rows the cap would drop. Each row of a cell holding ``n > cap`` rows is kept with
probability ``cap / n``, decided by a seeded hash of its id: the cell ends near the cap, the
choice is the same on every rerun (resume relies on it), and no global sort is needed.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from pulse.data_ray.instruct.rows import unit_interval, with_error

CELL = ("source", "task", "qtype")


def cell_of(row: dict[str, Any]) -> str:
    return "/".join(str(row.get(column)) for column in CELL)


def keep_probabilities(counts: dict[str, int], cap: int | None) -> dict[str, float]:
    """Cell -> probability of keeping one of its rows."""
    if cap is None:
        return {cell: 1.0 for cell in counts}
    return {cell: min(1.0, cap / n) if n else 1.0 for cell, n in counts.items()}


def balance_row(row: dict[str, Any], probabilities: dict[str, float], seed: int = 0) -> dict[str, Any]:
    """``row``, or a ``balance_cap`` error row when its cell is over the cap and the hash says drop."""
    if row.get("error"):
        return row
    cell = cell_of(row)
    p = probabilities.get(cell, 1.0)
    if p >= 1.0 or unit_interval(f"{seed}:balance:{row['id']}") < p:
        return row
    return with_error(row, "balance_cap", f"{cell} kept with p={p:.3f}")


def _batch_counts(batch: dict[str, Any]) -> dict[str, list]:
    counts: Counter[str] = Counter()
    for source, task, qtype, error in zip(
        batch["source"], batch["task"], batch["qtype"], batch["error"], strict=True
    ):
        if not error:
            counts[f"{source}/{task}/{qtype}"] += 1
    return {"cell": list(counts), "n": list(counts.values())}


def cell_counts(ds) -> dict[str, int]:
    """Rows per cell of a Ray Dataset (error rows excluded): partial counts per block, summed here."""
    partial = ds.select_columns([*CELL, "error"]).map_batches(_batch_counts, batch_format="numpy")
    counts: Counter[str] = Counter()
    for item in partial.take_all():
        counts[item["cell"]] += int(item["n"])
    return dict(counts)
