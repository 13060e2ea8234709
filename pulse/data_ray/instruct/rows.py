"""The instruction row as it flows through the build, and the stable hashes that shard it.

Rows carry the public instruction columns (:data:`pulse.schema.INSTRUCTION_SCHEMA`, minus the
image, which is attached when a shard is written) plus the context later stages need:
``split``, ``shard``, ``labels_std``, ``superclasses``, ``context`` (the report an LLM row was
made from) and ``request`` (what a pending LLM row should become).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import Any

import pyarrow as pa

from pulse.data_ray.stage import Stage, map_stage
from pulse.schema import table_schema

IMAGE_TOKEN = "<image>\n"

RECORD_COLUMNS = (
    "record_id",
    "dataset",
    "split",
    "labels_std",
    "superclasses",
    "report",
    "report_lang",
    "error",
)
ROW_COLUMNS = (
    "id",
    "record_id",
    "split",
    "shard",
    "source",
    "task",
    "qtype",
    "generator",
    "conversations",
    "judge_score",
    "judge_reason",
    "error",
    "labels_std",
    "superclasses",
    "context",
    "request",
)

ROW_SCHEMA = table_schema(ROW_COLUMNS)


def stable_hash(text: str) -> int:
    """A 64-bit hash that is the same in every process and run (unlike ``hash``)."""
    return int.from_bytes(hashlib.blake2b(text.encode("utf-8"), digest_size=8).digest(), "big")


def unit_interval(text: str) -> float:
    """``text`` hashed into [0, 1)."""
    return stable_hash(text) / 2**64


def shard_of(record_id: str, num_shards: int) -> int:
    """All instructions of a record share a shard, so dedupe and resume work per shard."""
    return stable_hash(record_id) % num_shards


def conversation(*turns: str) -> list[dict[str, str]]:
    """Alternating human/gpt turns; the first human turn gets the ``<image>`` token."""
    out = []
    for index, text in enumerate(turns):
        role = "human" if index % 2 == 0 else "gpt"
        value = IMAGE_TOKEN + text if index == 0 else text
        out.append({"from": role, "value": value})
    return out


def instruction_row(
    record: dict[str, Any],
    key: str,
    *,
    task: str,
    qtype: str,
    generator: str,
    conversations: list[dict[str, str]] | None = None,
    source: str | None = None,
    context: str | None = None,
    request: str | None = None,
    error: str | None = None,
) -> dict[str, Any]:
    """One row for ``record``; ``key`` makes the id unique and stable across reruns."""
    return {
        "id": f"{record['record_id']}#{key}",
        "record_id": record["record_id"],
        "split": record.get("split") or "train",
        "shard": int(record.get("shard") or 0),
        "source": source or record.get("dataset") or "unknown",
        "task": task,
        "qtype": qtype,
        "generator": generator,
        "conversations": conversations or [],
        "judge_score": None,
        "judge_reason": None,
        "error": error,
        "labels_std": list(record.get("labels_std") or []),
        "superclasses": list(record.get("superclasses") or []),
        "context": context,
        "request": request,
    }


def with_error(row: dict[str, Any], reason: str, detail: str) -> dict[str, Any]:
    """``row`` marked as an error row (``"<reason>: <detail>"``); the first error wins."""
    if row.get("error"):
        return row
    return {**row, "error": f"{reason}: {detail}"}


def human_text(row: dict[str, Any], turn: int = 0) -> str:
    """The text of the ``turn``-th human message without the image token."""
    humans = [t["value"] for t in row["conversations"] if t["from"] == "human"]
    text = humans[turn] if turn < len(humans) else ""
    return text[len(IMAGE_TOKEN) :] if text.startswith(IMAGE_TOKEN) else text


def gpt_texts(row: dict[str, Any]) -> list[str]:
    return [t["value"] for t in row["conversations"] if t["from"] == "gpt"]


class RowStage(Stage):
    """Instruction rows in and out through one per-row function (balance, validate, faithfulness).

    Rows that already carry an error pass the function unchanged or keep their first error (the
    functions' own rule, :func:`with_error`); a function that raises marks just that row.
    """

    name = "instruct.rows"
    input_columns = ROW_COLUMNS
    output_columns = ROW_COLUMNS

    def __init__(self, fn: Callable[..., dict[str, Any]], args: tuple[Any, ...] = ()):
        self.fn, self.args = fn, args

    def apply(self, row: dict[str, Any]) -> dict[str, Any]:
        try:
            return self.fn(row, *self.args)
        except Exception as exc:  # a bug or exotic input must cost one row, not the build
            return with_error(row, self.crash_reason, f"{type(exc).__name__}: {exc}")

    def __call__(self, batch: pa.Table) -> pa.Table:
        rows = batch.select(self.read_columns(batch.column_names)).to_pylist()
        return pa.Table.from_pylist([self.apply(row) for row in rows], schema=ROW_SCHEMA)


def map_rows(ds, fn, *args: Any):
    """``fn(row, *args)`` over instruction rows (:class:`RowStage` as tasks), typed as :data:`ROW_SCHEMA`."""
    return map_stage(ds, RowStage, kwargs={"fn": fn, "args": args}, tasks=True, workers=None)
