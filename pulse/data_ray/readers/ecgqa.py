"""ECG-QA, PTB-XL version (Oh et al. 2023, github.com/Jwoo5/ecg-qa), in its native layout.

``<root>/ptbxl/{template,paraphrased}/{train,valid,test}/NNNNN.json``: each file is a JSON list
of QA samples with template_id, question_id, sample_id, question_type, attribute_type,
question, answer (list), ecg_id (one id, or two for ``comparison_*`` questions) and attribute.

Rows follow :data:`ECGQA_SCHEMA`. ``record_ids`` are the PTB-XL record ids
(``ptbxl/<ecg_id>``) the question is about: the join key to the record Parquet. The split comes
from the folder (``valid`` -> ``val``), or from a ``source_file`` field when a file gathers
samples of several chunks (the bundled ``qa_on_realdata_ptbxl_ids.json`` does).
:func:`mark_missing_records` sets ``error`` on QA rows whose ECGs are not among the records of
the same ingest run (e.g. a comparison whose second ECG was not ingested).
"""

from __future__ import annotations

import fnmatch
import json
from collections.abc import Iterable
from typing import Any

import pyarrow as pa

from pulse import io
from pulse.data_ray.readers.config import SourceConfig
from pulse.schema import table_schema

ECGQA_SCHEMA = table_schema(
    (
        "question_id",
        "sample_id",
        "template_id",
        "question",
        "answer",
        "question_type",
        "attribute_type",
        "attribute",
        "ecg_ids",
        "record_ids",
        "split",
        "source_file",
        "error",
    )
)
DEFAULT_FILES = ("ptbxl/template/*/*.json",)
_SPLIT_DIRS = {"train": "train", "valid": "val", "val": "val", "test": "test"}


def split_of(path: str) -> str | None:
    """train/val/test from the last folder name of a chunk path that names a split."""
    for part in reversed(path.replace("\\", "/").split("/")[:-1]):
        if part in _SPLIT_DIRS:
            return _SPLIT_DIRS[part]
    return None


def plan(source: SourceConfig, storage: io.StorageOptions | None = None) -> list[dict[str, Any]]:
    """One unit per QA JSON file matching ``files`` (globs relative to root), sorted."""
    root = source.resolved_root()
    patterns = source.files or list(DEFAULT_FILES)
    units = []
    for path in io.list_files(root, "*.json", storage):
        relative = relative_path(path, root)
        if any(fnmatch.fnmatch(relative, pattern) for pattern in patterns):
            units.append({"path": path, "relative": relative})
    return units


def relative_path(path: str, root: str) -> str:
    """``path`` relative to ``root`` (both local or both ``s3://``), with forward slashes."""
    base = root if io.is_remote(root) else io.filesystem(root)[1]
    base = base.rstrip("/") + "/"
    return path[len(base) :] if path.startswith(base) else path


def _as_list(value: Any) -> list:
    if value is None:
        return []
    return list(value) if isinstance(value, list | tuple) else [value]


def qa_row(sample: dict[str, Any], relative_path: str) -> dict[str, Any]:
    """One ECG-QA sample as an :data:`ECGQA_SCHEMA` row (``error`` set when malformed)."""
    source_file = sample.get("source_file") or relative_path
    row: dict[str, Any] = {name: None for name in ECGQA_SCHEMA.names}
    row.update(
        source_file=source_file,
        split=split_of(source_file),
        answer=[],
        attribute=[],
        ecg_ids=[],
        record_ids=[],
    )
    try:
        ecg_ids = [int(x) for x in _as_list(sample["ecg_id"])]
        row.update(
            question_id=int(sample["question_id"]),
            sample_id=int(sample["sample_id"]) if sample.get("sample_id") is not None else None,
            template_id=int(sample["template_id"]) if sample.get("template_id") is not None else None,
            question=str(sample["question"]),
            answer=[str(a) for a in _as_list(sample["answer"])],
            question_type=sample.get("question_type"),
            attribute_type=sample.get("attribute_type"),
            attribute=[str(a) for a in _as_list(sample.get("attribute"))],
            ecg_ids=ecg_ids,
            record_ids=[f"ptbxl/{i}" for i in ecg_ids],
        )
        if not ecg_ids or not row["question"].strip():
            raise ValueError("empty ecg_id or question")
    except (KeyError, TypeError, ValueError) as exc:
        row["error"] = f"bad_qa_row: {type(exc).__name__}: {exc}"
    return row


def read(
    source: SourceConfig, unit: dict[str, Any], storage: io.StorageOptions | None = None
) -> list[dict[str, Any]]:
    """QA rows of one JSON file; an unreadable file becomes one error row."""
    try:
        samples = json.loads(io.read_text(unit["path"], storage))
        if not isinstance(samples, list):
            raise ValueError(f"top level is {type(samples).__name__}, expected a list")
    except (OSError, ValueError) as exc:
        row = qa_row({}, unit["relative"])
        row["error"] = f"unreadable_qa_file: {unit['path']}: {exc}"
        return [row]
    return [qa_row(sample if isinstance(sample, dict) else {}, unit["relative"]) for sample in samples]


def mark_missing_records(rows: Iterable[dict[str, Any]], available: set[str]) -> list[dict[str, Any]]:
    """Set ``error = "missing_record: <ids>"`` on rows that reference records not in ``available``."""
    out = []
    for row in rows:
        missing = [r for r in row["record_ids"] if r not in available]
        if row.get("error") is None and missing:
            row = {**row, "error": f"missing_record: {', '.join(missing)} not ingested"}
        out.append(row)
    return out


def qa_to_table(rows: list[dict[str, Any]]) -> pa.Table:
    return pa.Table.from_pylist(rows, schema=ECGQA_SCHEMA)
