"""Near-duplicate removal among the instructions of one record.

The same question about different ECGs is not a duplicate (the image differs), so rows are
compared only within a record, which the shard layout keeps together. Two rows are near
duplicates when the Jaccard similarity of their word ``k``-shingles (over all turns,
lower-cased, punctuation dropped) reaches the threshold. The better row is kept: higher judge
score first, then the smaller id, so the choice does not depend on row order.
"""

from __future__ import annotations

import re
from typing import Any

from pulse.data_ray.instruct.rows import with_error

WORD = re.compile(r"[a-z0-9]+")


def shingles(text: str, k: int = 3) -> frozenset[tuple[str, ...]]:
    words = WORD.findall(text.lower().replace("<image>", " "))
    if len(words) < k:
        return frozenset({tuple(words)})
    return frozenset(tuple(words[i : i + k]) for i in range(len(words) - k + 1))


def jaccard(a: frozenset, b: frozenset) -> float:
    if not a and not b:
        return 1.0
    return len(a & b) / len(a | b)


def conversation_text(row: dict[str, Any]) -> str:
    return "\n".join(turn["value"] for turn in row.get("conversations") or [])


def _priority(row: dict[str, Any]) -> tuple[float, str]:
    score = row.get("judge_score")
    return (-(score if score is not None else 0.0), row["id"])


def drop_near_duplicates(
    rows: list[dict[str, Any]], threshold: float = 0.85, k: int = 3
) -> list[dict[str, Any]]:
    """Rows of one record; each near duplicate of a kept row becomes a ``near_duplicate`` error row."""
    kept: list[tuple[dict[str, Any], frozenset]] = []
    out: list[dict[str, Any]] = []
    for row in sorted(rows, key=_priority):
        if row.get("error"):
            out.append(row)
            continue
        signature = shingles(conversation_text(row), k)
        match = next((other for other, sig in kept if jaccard(signature, sig) >= threshold), None)
        if match is not None:
            out.append(with_error(row, "near_duplicate", f"of {match['id']}"))
        else:
            kept.append((row, signature))
            out.append(row)
    return out
