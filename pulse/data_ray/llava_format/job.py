"""Import LLaVA-format instruction data (ECGInstruct.json, LLaVA JSON/JSONL) into instruction Parquet.

The JSON is streamed row by row (never loaded whole); images come from a folder or straight from
``.tar``/``.tar.gz`` shards through a member index (see ``pulse.data_ray.llava_format.images``).
Good rows (image bytes inline) go to ``<output_dir>/parquet/split=train/part-NNNNN.parquet``,
the format ``pulse train`` reads; a missing or corrupt image, a bad conversation or a malformed
row goes to ``<output_dir>/errors/`` with its reason and is counted in the summary.

Example: pulse import-llava input=ECGInstruct.json images.shards=/data/ecginstruct/ output_dir=out/ecginstruct
"""

from __future__ import annotations

import io as _stdio
import json
import os
import sqlite3
import tempfile
import time
from typing import Any

import pyarrow as pa
from pydantic import Field, model_validator

from pulse import io
from pulse.config import StrictModel
from pulse.data_ray.llava_format.images import FolderImages, TarShards, is_gzip_shard, shard_paths
from pulse.data_ray.llava_format.reader import RowError, error_row, iter_records, validate_record
from pulse.schema import INSTRUCTION_SCHEMA
from pulse.summary import StageSummary


class ImagesConfig(StrictModel):
    """Where the rows' relative ``image`` paths resolve: a folder, or tar shards (exactly one)."""

    folder: str | None = None
    shards: str | list[str] | None = None
    """A folder of ``*.tar``/``*.tar.gz`` shards, one shard, or a list of shard paths."""
    index_path: str | None = None
    """SQLite member index (reused when present); default ``<output_dir>/_index/members.sqlite``
    (a local temp dir when ``output_dir`` is on S3)."""

    @model_validator(mode="after")
    def _one(self) -> ImagesConfig:
        if (self.folder is None) == (self.shards is None):
            raise ValueError("set exactly one of images.folder or images.shards")
        return self


class LlavaImportConfig(StrictModel):
    """``pulse import-llava``: one LLaVA JSON/JSONL file (+ its images) -> instruction Parquet."""

    input: str
    """The JSON array or JSONL file, local or ``s3://``."""
    images: ImagesConfig
    output_dir: str
    source: str | None = None
    """``source`` for rows that have none (ECGInstruct rows carry their own)."""
    limit: int | None = Field(None, ge=1)
    """Read only the first N records (smoke runs)."""
    rows_per_file: int = Field(1024, ge=1)
    verify_images: bool = True
    """Decode each image once, so corrupt bytes become ``corrupt_image`` error rows here."""
    storage: io.StorageOptions = Field(default_factory=io.StorageOptions)


CONFIG_CLASS = LlavaImportConfig


class _Sink:
    """Parquet part files written as rows arrive (bounded memory)."""

    def __init__(self, folder: str, rows_per_file: int, storage: io.StorageOptions):
        self.folder, self.rows_per_file, self.storage = folder, rows_per_file, storage
        self.rows: list[dict[str, Any]] = []
        self.files = 0
        self.count = 0

    def add(self, row: dict[str, Any]) -> None:
        self.rows.append(row)
        self.count += 1
        if len(self.rows) >= self.rows_per_file:
            self.flush()

    def flush(self) -> None:
        if not self.rows:
            return
        table = pa.Table.from_pylist(self.rows, schema=INSTRUCTION_SCHEMA)
        io.write_parquet(table, io.join(self.folder, f"part-{self.files:05d}.parquet"), self.storage)
        self.files += 1
        self.rows = []


def _check_image(data: bytes) -> None:
    from PIL import Image

    try:
        with Image.open(_stdio.BytesIO(data)) as image:
            image.load()
    except Exception as exc:  # PIL raises many types for bad bytes
        raise RowError("corrupt_image", f"{type(exc).__name__}: {exc}") from None


class Importer:
    """Stream records -> validated rows -> good/error sinks."""

    def __init__(self, cfg: LlavaImportConfig):
        self.cfg = cfg
        storage = cfg.storage
        self.good = _Sink(io.join(cfg.output_dir, "parquet", "split=train"), cfg.rows_per_file, storage)
        self.bad = _Sink(io.join(cfg.output_dir, "errors"), cfg.rows_per_file, storage)
        self.generator = f"llava-import:{os.path.basename(cfg.input.rstrip('/'))}"
        if cfg.images.folder is not None:
            self.images: FolderImages | TarShards = FolderImages(cfg.images.folder, storage)
        else:
            index = cfg.images.index_path or self._default_index()
            self.images = TarShards(shard_paths(cfg.images.shards, storage), index, storage)
        self.queue: sqlite3.Connection | None = None

    def _default_index(self) -> str:
        if io.is_remote(self.cfg.output_dir):
            return os.path.join(tempfile.mkdtemp(prefix="pulse-llava-index-"), "members.sqlite")
        return os.path.join(self.cfg.output_dir, "_index", "members.sqlite")

    def _emit(self, row: dict[str, Any], data: bytes) -> None:
        try:
            if self.cfg.verify_images:
                _check_image(data)
        except RowError as exc:
            self.bad.add(dict(row, conversations=None, error=str(exc)))
            return
        self.good.add(dict(row, image=data, generator=self.generator))

    def _park(self, row: dict[str, Any], shard: str) -> None:
        """Queue a row whose image is in a .tar.gz shard (read later, one pass per shard)."""
        if self.queue is None:
            self.queue = sqlite3.connect(
                os.path.join(tempfile.mkdtemp(prefix="pulse-llava-queue-"), "q.sqlite")
            )
            self.queue.execute("CREATE TABLE rows (shard TEXT, image TEXT, row TEXT)")
            self.queue.execute("CREATE INDEX by_image ON rows (shard, image)")
        self.queue.execute("INSERT INTO rows VALUES (?, ?, ?)", (shard, row["image_path"], json.dumps(row)))

    def handle(self, record) -> None:
        if record.error:
            self.bad.add(error_row(record.index, record.error))
            return
        try:
            row = validate_record(record.value, record.index, self.cfg.source)
        except RowError as exc:
            self.bad.add(error_row(record.index, str(exc), record.value))
            return
        shard = self.images.locate(row["image_path"])
        if shard is None:
            self.bad.add(dict(row, conversations=None, error=f"missing_image: {row['image_path']}"))
        elif shard != "folder" and is_gzip_shard(shard):
            self._park(row, shard)
        else:
            try:
                self._emit(row, self.images.read(row["image_path"]))
            except KeyError as exc:
                self.bad.add(dict(row, conversations=None, error=f"missing_image: {exc.args[0]}"))

    def drain_gzip_shards(self) -> None:
        """Emit parked rows shard by shard, reading each .tar.gz once, in archive order."""
        from pulse.data_ray.llava_format.images import member_key

        if self.queue is None:
            return
        self.queue.commit()
        shards = [s for (s,) in self.queue.execute("SELECT DISTINCT shard FROM rows ORDER BY shard")]
        for shard in shards:
            for name, data in self.images.iter_shard(shard):
                parked = self.queue.execute(
                    "SELECT row FROM rows WHERE shard = ? AND image = ?", (shard, name)
                ).fetchall()
                if not parked:  # rows may spell the path with a leading ./ or /
                    parked = [
                        r
                        for r in self.queue.execute("SELECT row, image FROM rows WHERE shard = ?", (shard,))
                        if member_key(r[1]) == name
                    ]
                for row_text, *_ in parked:
                    self._emit(json.loads(row_text), data)

    def close(self) -> None:
        self.good.flush()
        self.bad.flush()
        if isinstance(self.images, TarShards):
            self.images.close()
        if self.queue is not None:
            self.queue.close()


def run(cfg: LlavaImportConfig) -> StageSummary:
    """Import ``cfg.input``; returns the summary (also written to ``summary.json``; printed by
    ``pulse.jobs.finish``)."""
    started = time.time()
    if not io.exists(cfg.input, cfg.storage):
        raise FileNotFoundError(f"input {cfg.input} does not exist")
    for stale in ("parquet", "errors"):  # a rerun replaces, never mixes with, an older import
        io.delete(io.join(cfg.output_dir, stale), cfg.storage)
    importer = Importer(cfg)
    try:
        for record in iter_records(cfg.input, cfg.storage):
            if cfg.limit is not None and record.index >= cfg.limit:
                break
            importer.handle(record)
        importer.drain_gzip_shards()
    finally:
        importer.close()
    summary = StageSummary(
        "import-llava",
        rows_ok=importer.good.count,
        outputs={
            "parquet": importer.good.folder,
            "errors": importer.bad.folder,
        },
        seconds=time.time() - started,
    )
    counts = _count_errors(importer.bad.folder, cfg.storage)
    summary.rows_error = sum(counts.values())
    summary.errors_by_reason = counts
    io.write_text(io.join(cfg.output_dir, "summary.json"), summary.to_json(), cfg.storage)
    return summary


def _count_errors(folder: str, storage: io.StorageOptions) -> dict[str, int]:
    from collections import Counter

    from pulse.schema import error_reason

    counts: Counter[str] = Counter()
    for path in io.list_files(folder, "*.parquet", storage):
        for error in io.read_parquet(path, storage).column("error").to_pylist():
            counts[error_reason(error) or "unknown"] += 1
    return dict(sorted(counts.items()))
