"""Arrow schemas of the rows that flow between stages, and the shared lead order.

Every row carries ``error`` (null when fine). A stage that cannot process a row sets
``error`` to a short reason (``"<reason>: <detail>"``; the part before the colon is
what summaries count by) instead of raising.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import pyarrow as pa

from pulse.errors import error_reason  # noqa: F401  (re-exported: the reason vocabulary lives in pulse.errors)

STANDARD_LEADS: tuple[str, ...] = ("I", "II", "III", "aVR", "aVL", "aVF", "V1", "V2", "V3", "V4", "V5", "V6")
PTBXL_SUPERCLASSES: tuple[str, ...] = ("NORM", "MI", "STTC", "CD", "HYP")
DATASETS: tuple[str, ...] = ("ptbxl", "mimic", "code15", "cpsc2018", "g12ec", "chapman", "ningbo", "ecgqa")
SPLITS: tuple[str, ...] = ("train", "val", "test")

LEAD_BOX_TYPE = pa.struct(
    [
        ("name", pa.string()),
        ("bbox", pa.list_(pa.float32())),  # x0, y0, x1, y1 in final-image pixels
        ("x", pa.list_(pa.float32())),
        ("y", pa.list_(pa.float32())),
        ("start_sample", pa.int32()),
        ("end_sample", pa.int32()),
        ("missing", pa.bool_()),
    ]
)
TURN_TYPE = pa.struct([("from", pa.string()), ("value", pa.string())])
STRINGS = pa.list_(pa.string())

COLUMN_TYPES: dict[str, pa.DataType] = {
    "id": pa.string(),
    "record_id": pa.string(),
    "dataset": pa.string(),
    "split": pa.string(),
    "fs": pa.float32(),
    "lead_names": STRINGS,
    "signal": pa.list_(pa.list_(pa.float32())),
    "n_samples": pa.int32(),
    "age": pa.float32(),
    "sex": pa.string(),
    "labels": STRINGS,
    "labels_std": STRINGS,
    "superclasses": STRINGS,  # PTB-XL diagnostic superclasses; empty elsewhere
    "report": pa.string(),
    "report_lang": pa.string(),
    "source_path": pa.string(),
    "recorded_at": pa.string(),  # ISO date/time when the source has it
    "extra": pa.string(),  # JSON of source-specific fields (e.g. strat_fold, patient_id)
    "image": pa.binary(),
    "image_format": pa.string(),
    "width": pa.int32(),
    "height": pa.int32(),
    "dpi": pa.int32(),
    "layout": pa.string(),
    "distortions": pa.string(),
    "leads": pa.list_(LEAD_BOX_TYPE),
    "image_path": pa.string(),
    "conversations": pa.list_(TURN_TYPE),
    "task": pa.string(),
    "qtype": pa.string(),
    "source": pa.string(),
    "generator": pa.string(),
    "judge_score": pa.float32(),
    "judge_reason": pa.string(),
    "shard": pa.int64(),
    "context": pa.string(),  # the report an LLM-made instruction row was made from
    "request": pa.string(),  # what a pending LLM row should become
    "mixture_source": pa.string(),
    "question_id": pa.int64(),
    "sample_id": pa.int64(),
    "template_id": pa.int64(),
    "question": pa.string(),
    "answer": STRINGS,
    "question_type": pa.string(),
    "attribute_type": pa.string(),
    "attribute": STRINGS,
    "ecg_ids": pa.list_(pa.int64()),
    "record_ids": STRINGS,
    "source_file": pa.string(),
    "error": pa.string(),
}
"""The one Arrow type of every column a stage writes: a column means the same in every table."""


def table_schema(columns: Iterable[str]) -> pa.Schema:
    """The schema of ``columns``, in that order, each with its type from :data:`COLUMN_TYPES`."""
    return pa.schema([(name, COLUMN_TYPES[name]) for name in columns])


RECORD_SCHEMA = table_schema(
    (
        "record_id",
        "dataset",
        "split",
        "fs",
        "lead_names",
        "signal",
        "n_samples",
        "age",
        "sex",
        "labels",
        "labels_std",
        "superclasses",
        "report",
        "report_lang",
        "source_path",
        "recorded_at",
        "extra",
        "error",
    )
)
IMAGE_SCHEMA = table_schema(
    (
        "record_id",
        "image",
        "image_format",
        "width",
        "height",
        "dpi",
        "layout",
        "distortions",
        "leads",
        "error",
    )
)
INSTRUCTION_SCHEMA = table_schema(
    (
        "id",
        "record_id",
        "image",
        "image_path",
        "conversations",
        "task",
        "qtype",
        "source",
        "generator",
        "judge_score",
        "judge_reason",
        "error",
    )
)

TASKS: tuple[str, ...] = ("feature", "rhythm", "morphology", "report")
QTYPES: tuple[str, ...] = ("close", "open", "fill", "mcq", "multi-turn")


class MissingColumnsError(KeyError):
    """A stage was given a batch without a column it needs."""


def require_columns(batch: Mapping | Iterable[str], needed: Iterable[str], stage: str) -> None:
    """Fail fast, naming the missing columns and the stage."""
    present = set(batch.keys() if isinstance(batch, Mapping) else batch)
    missing = [c for c in needed if c not in present]
    if missing:
        raise MissingColumnsError(
            f"{stage}: required input columns {missing} not found (have {sorted(present)})"
        )
