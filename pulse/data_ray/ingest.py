"""Ingest raw ECG datasets in their native layouts into record Parquet, on Ray Data.

Reads PTB-XL, MIMIC-IV-ECG, CODE-15%, the CinC-2021 format (CPSC 2018, G12EC, Chapman-Shaoxing,
Ningbo) and ECG-QA from local paths or s3:// and writes:

  <output_dir>/records/*.parquet   good records (pulse.schema.RECORD_SCHEMA)
  <output_dir>/errors/*.parquet    bad inputs, same schema, `error` = "<reason>: <detail>", no signal
  <output_dir>/ecgqa/*.parquet     ECG-QA rows joined to PTB-XL records by record_ids
  <output_dir>/run_info.json       resolved config, versions, git SHA

Examples:
  pulse ingest --config configs/ingest/bundled.yaml output_dir=/tmp/pulse-records
  pulse ingest --config configs/ingest/bundled.yaml limit_per_source=5 target_fs=250
  pulse ingest --config configs/ingest/synthetic.yaml   (schema-exact synthetic CODE-15% + MIMIC-IV-ECG)
A rerun of the same config on a finished output has nothing to do; an interrupted one starts over
(records/, errors/ and ecgqa/ are replaced); a changed config is refused unless ``overwrite=true``.
"""

from __future__ import annotations

import hashlib
import json
import math
import time
from collections import Counter
from typing import Any, ClassVar

import pyarrow as pa
import pyarrow.parquet as pq
from pydantic import Field, model_validator

from pulse import io, resume
from pulse.config import StrictModel, write_run_info
from pulse.data_ray.first_rows import first_rows
from pulse.data_ray.readers import plan_source, read_unit
from pulse.data_ray.readers.config import SourceConfig
from pulse.data_ray.readers.ecgqa import ECGQA_SCHEMA, mark_missing_records, qa_row, qa_to_table
from pulse.data_ray.readers.signal import error_record, records_to_table
from pulse.data_ray.stage import Stage, map_stage
from pulse.error_sink import ErrorSink
from pulse.progress import Progress, report
from pulse.run_layout import INGEST_LAYOUT, Layout
from pulse.runtime import RayOptions, init_ray
from pulse.schema import RECORD_SCHEMA, error_reason
from pulse.summary import StageSummary

UNIT_COLUMNS = ("source", "unit")
"""A read unit: the index of its source in the config and the reader's unit as JSON."""
OUTPUTS = ("records", "errors", "ecgqa")
NOT_IN_FINGERPRINT = ("output_dir", "batch_size", "concurrency", "num_cpus")
"""Config fields that do not change the ingested rows (where they go, how the read is split)."""


class IngestConfig(StrictModel):
    """``pulse ingest``: which sources to read, where to write, and how Ray Data runs it."""

    RUN_LAYOUT: ClassVar[Layout] = INGEST_LAYOUT
    """paths filled from ``run_dir=R`` (``pulse.run_layout``)."""

    sources: list[SourceConfig] = Field(min_length=1)
    output_dir: str
    target_fs: float | None = Field(default=None, gt=0)
    """Resample every record to this rate (Hz); null keeps each source's rate."""
    limit_per_source: int | None = Field(default=None, ge=0)
    """Quick-run cap applied to each source (at most this many records / QA rows per source, not in
    total); ``sources.<i>.limit`` caps one source."""
    batch_size: int = Field(default=4, ge=1)
    """Read units per Ray Data batch (a unit is one record, or one chunk of a CODE-15% part)."""
    concurrency: int | None = Field(default=None, ge=1)
    """Most read tasks at once; null lets Ray Data decide."""
    num_cpus: float = Field(default=1.0, gt=0)
    """CPUs reserved per read task."""
    storage: io.StorageOptions = io.StorageOptions()
    ray: RayOptions = RayOptions()
    overwrite: bool = False
    """Replace an earlier ingest in ``output_dir``; without it a rerun with a changed config is refused."""

    @model_validator(mode="before")
    @classmethod
    def _renamed_limit(cls, data: Any) -> Any:
        if isinstance(data, dict) and "limit" in data:
            raise ValueError(
                "limit was renamed: use limit_per_source (it caps each source, not the total; "
                "sources.<i>.limit caps one source)"
            )
        return data

    def capped_sources(self) -> list[SourceConfig]:
        """Sources with ``limit_per_source`` folded into each one's own limit."""
        cap = self.limit_per_source
        if cap is None:
            return list(self.sources)
        return [
            s.model_copy(update={"limit": cap if s.limit is None else min(s.limit, cap)})
            for s in self.sources
        ]


class ReadRecords(Stage):
    """Read units in, record rows out; bad inputs go to the one ``ErrorSink`` from inside the task.

    Error rows are written where they are found (datatrove's exclusion-writer pattern), so the
    signal data streams through Ray Data once; the part is named by a hash of its record ids, so a
    retried task overwrites rather than duplicates. ``roots`` are the sources' folders, resolved on
    the driver (one ``io.Folder`` per source): the readers reach storage through them.
    """

    name = "ingest"
    input_columns = UNIT_COLUMNS
    output_columns = tuple(RECORD_SCHEMA.names)

    def __init__(
        self,
        sources: list[SourceConfig],
        roots: list[io.Folder],
        target_fs: float | None,
        errors: ErrorSink,
        progress: Any = None,
    ):
        self.sources, self.roots, self.target_fs = sources, roots, target_fs
        self.errors, self.progress = errors, progress

    def read(self, row: dict[str, Any]) -> list[dict[str, Any]]:
        index = row["source"]
        return read_unit(self.sources[index], json.loads(row["unit"]), self.roots[index], self.target_fs)

    def failed(self, row: dict[str, Any], error: str) -> dict[str, Any]:
        """The error record of a unit whose reader raised (a bug, not a ``ReadError``)."""
        source = self.sources[row["source"]]
        digest = hashlib.sha1(row["unit"].encode()).hexdigest()[:12]
        return error_record(
            record_id=f"{source.kind}/unit-{digest}",
            dataset=source.kind,
            source_path=self.roots[row["source"]].uri,
            error=error,
        )

    def __call__(self, batch: pa.Table) -> pa.Table:
        good: list[dict[str, Any]] = []
        bad: list[dict[str, Any]] = []
        for row in batch.select(self.read_columns(batch.column_names)).to_pylist():
            rows = self.guarded(self.read, row)
            for record in [self.failed(row, rows)] if isinstance(rows, str) else rows:
                (bad if record["error"] else good).append(record)
        if bad:
            digest = hashlib.sha1("\n".join(r["record_id"] for r in bad).encode()).hexdigest()[:16]
            self.errors.write(records_to_table(bad), f"errors-{digest}")
        report(self.progress, batch.num_rows)
        return records_to_table(good)


class ReadQA(Stage):
    """ECG-QA JSON files in, QA rows out, checked against the ingested records (``available``)."""

    name = "ingest.ecgqa"
    input_columns = UNIT_COLUMNS
    output_columns = tuple(ECGQA_SCHEMA.names)

    def __init__(self, sources: list[SourceConfig], roots: list[io.Folder], available: list[str] | None):
        self.sources, self.roots = sources, roots
        self.available = set(available) if available is not None else None

    def read(self, row: dict[str, Any]) -> list[dict[str, Any]]:
        return read_unit(self.sources[row["source"]], json.loads(row["unit"]), self.roots[row["source"]])

    def __call__(self, batch: pa.Table) -> pa.Table:
        rows: list[dict[str, Any]] = []
        for row in batch.select(self.read_columns(batch.column_names)).to_pylist():
            result = self.guarded(self.read, row)
            if isinstance(result, str):
                result = [{**qa_row({}, json.loads(row["unit"]).get("relative", "")), "error": result}]
            rows.extend(result)
        if self.available is not None:
            rows = mark_missing_records(rows, self.available)
        return qa_to_table(rows)


def _read_columns(folder: str, columns: list[str], schema: pa.Schema, storage: io.StorageOptions) -> pa.Table:
    if not io.list_files(folder, "*.parquet", storage):
        return schema.empty_table().select(columns)
    fs, inner = io.filesystem(folder, storage)
    return pq.read_table(inner, filesystem=fs, columns=columns, schema=schema)


def _items(sources: list[SourceConfig], kinds: set[str], storage: io.StorageOptions) -> list[dict[str, Any]]:
    items = []
    for index, source in enumerate(sources):
        if source.kind in kinds:
            items.extend({"source": index, "unit": json.dumps(u)} for u in plan_source(source, storage))
    return items


def _dataset(ray, items: list[dict[str, Any]], batch_size: int):
    blocks = max(1, min(len(items), math.ceil(len(items) / batch_size)))
    return ray.data.from_items(items, override_num_blocks=blocks)


def run(cfg: IngestConfig) -> StageSummary:
    """Run the ingest job (see module doc); returns its summary (``pulse.jobs.finish`` prints it)."""
    started = time.time()
    storage = cfg.storage
    state = resume.prepare(
        cfg, cfg.output_dir, "ingest", outputs=OUTPUTS, ignore=NOT_IN_FINGERPRINT, storage=storage
    )
    if state.status == "done":
        print(resume.nothing_to_do("ingest", cfg.output_dir), flush=True)
        return StageSummary(**state.done)
    ray = init_ray(cfg.ray)
    out = {name: io.join(cfg.output_dir, name) for name in ("records", "errors", "ecgqa")}
    for folder in out.values():
        io.delete(folder, storage)
        io.makedirs(folder, storage)
    sources = cfg.capped_sources()
    # Resolved here on the driver: read tasks reach storage with exactly these (io.Folder).
    roots = [io.Folder(source.resolved_root(), storage) for source in sources]
    errors_sink = ErrorSink(io.Folder(cfg.output_dir, storage))

    record_items = _items(sources, {"ptbxl", "mimic", "code15", "cinc2021"}, storage)
    if record_items:
        with Progress(ray, "ingest", total=len(record_items), unit="read units") as progress:
            map_stage(
                _dataset(ray, record_items, cfg.batch_size),
                ReadRecords,
                kwargs={
                    "sources": sources,
                    "roots": roots,
                    "target_fs": cfg.target_fs,
                    "errors": errors_sink,
                    "progress": progress.counter,
                },
                tasks=True,
                workers=cfg.concurrency,
                batch_size=cfg.batch_size,
                num_cpus=cfg.num_cpus,
            ).write_parquet(**io.ray_write_args(out["records"], storage))
    records = _read_columns(out["records"], ["record_id", "dataset"], RECORD_SCHEMA, storage)
    errors = _read_columns(out["errors"], ["record_id", "dataset", "error"], RECORD_SCHEMA, storage)

    qa_errors: list[str | None] = []
    qa_sources = [s for s in sources if s.kind == "ecgqa"]
    if qa_sources:
        reads_ptbxl = any(
            s.kind == "ptbxl" or (s.kind == "cinc2021" and "ptbxl" in s.cinc_datasets()) for s in sources
        )
        available = [r for r in records.column("record_id").to_pylist() if r.startswith("ptbxl/")]
        qa = map_stage(
            _dataset(ray, _items(sources, {"ecgqa"}, storage), 1),
            ReadQA,
            kwargs={"sources": sources, "roots": roots, "available": available if reads_ptbxl else None},
            tasks=True,
            workers=None,
            batch_size=1,
            num_cpus=cfg.num_cpus,
        )
        qa_limits = [s.limit for s in qa_sources]
        if len(qa_sources) == 1 and qa_limits[0] is not None:
            qa = first_rows(qa, qa_limits[0])
        qa.write_parquet(**io.ray_write_args(out["ecgqa"], storage))
        qa_errors = _read_columns(out["ecgqa"], ["error"], ECGQA_SCHEMA, storage).column("error").to_pylist()

    run_info = write_run_info(cfg, cfg.output_dir, "ingest", storage)
    record_errors = errors.column("error").to_pylist()
    per_dataset = Counter(records.column("dataset").to_pylist())
    per_dataset_errors = Counter(errors.column("dataset").to_pylist())
    reasons = Counter(error_reason(e) for e in record_errors + qa_errors if e)
    summary = StageSummary(
        stage="ingest",
        rows_ok=records.num_rows + sum(e is None for e in qa_errors),
        rows_error=sum(reasons.values()),
        errors_by_reason=dict(sorted(reasons.items())),
        outputs={**out, "run_info": run_info},
        seconds=time.time() - started,
        extra={
            "record_rows": f"{records.num_rows} ok, {errors.num_rows} errors",
            "per_dataset": " ".join(
                f"{d}={per_dataset[d]}" + (f"(+{per_dataset_errors[d]} err)" if per_dataset_errors[d] else "")
                for d in sorted(set(per_dataset) | set(per_dataset_errors))
            ),
        },
    )
    if qa_sources:
        n_qa_ok = sum(e is None for e in qa_errors)
        summary.extra["ecgqa_rows"] = f"{n_qa_ok} ok, {len(qa_errors) - n_qa_ok} errors"
    resume.mark_done(cfg.output_dir, summary.__dict__, storage)
    return summary


CONFIG_CLASS = IngestConfig
