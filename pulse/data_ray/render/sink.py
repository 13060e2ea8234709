"""A Ray Data sink that routes image rows: good ones to ``images/``, error rows to ``errors/``.

One pass over the data writes both Parquet sinks (and, optionally, the image files), and
each write task returns its counts by error reason, which ``on_write_complete`` sums on the
driver for the job summary.
"""

from __future__ import annotations

import re
import uuid
from collections import Counter
from collections.abc import Iterable
from typing import Any

import pyarrow as pa
from ray.data.block import Block
from ray.data.datasource import Datasink, WriteResult

from pulse import io
from pulse.error_sink import ErrorSink, split_errors
from pulse.progress import report
from pulse.schema import IMAGE_SCHEMA

EXTENSIONS = {"png": "png", "jpeg": "jpg"}


def file_name(record_id: str, image_format: str) -> str:
    """``ptbxl/00001`` → ``ptbxl/00001.jpg``: a safe relative path that keeps the dataset folder."""
    parts = [re.sub(r"[^A-Za-z0-9._-]", "_", p) for p in str(record_id).split("/")]
    parts = [p for p in parts if p not in ("", ".", "..")] or ["unnamed"]
    return "/".join(parts) + "." + EXTENSIONS.get(image_format, image_format)


class ImageRowsDatasink(Datasink[dict]):
    """Write IMAGE_SCHEMA blocks to ``<output_dir>/images`` and ``<output_dir>/errors``."""

    def __init__(
        self,
        output_dir: str,
        storage: io.StorageOptions | None = None,
        write_files: bool = False,
        progress: Any = None,
    ):
        self.output_dir = output_dir
        self.progress = progress
        """A :class:`pulse.progress.Progress` counter handle; each write task adds its rows."""
        # Resolved here on the driver: the Folder carries endpoint and credentials to the write
        # tasks, whose processes may not have the driver's AWS_* environment.
        self.output = io.Folder(output_dir, storage)
        self.errors = ErrorSink(self.output)
        self.write_files = write_files
        self.run_id = uuid.uuid4().hex[:8]
        self.rows_ok = 0
        self.errors_by_reason: dict[str, int] = {}

    def write(self, blocks: Iterable[Block], ctx: Any) -> dict:
        tables = [pa.Table.from_pandas(b) if not isinstance(b, pa.Table) else b for b in blocks]
        tables = [t.cast(IMAGE_SCHEMA) for t in tables if t.num_rows]
        if not tables:
            return {"ok": 0, "errors": {}}
        table = pa.concat_tables(tables)
        good, bad = split_errors(table)
        name = f"part-{self.run_id}-{ctx.task_idx:06d}"
        if good.num_rows:
            self.output.write_parquet(good, "images", f"{name}.parquet")
            if self.write_files:
                for rid, data, fmt in zip(
                    good.column("record_id").to_pylist(),
                    good.column("image").to_pylist(),
                    good.column("image_format").to_pylist(),
                    strict=True,
                ):
                    self.output.write_bytes(data, "files", *file_name(rid, fmt).split("/"))
        reasons = self.errors.write(bad, name)
        report(self.progress, table.num_rows)
        return {"ok": good.num_rows, "errors": reasons}

    def on_write_complete(self, write_result: WriteResult[dict]) -> None:
        counts: Counter[str] = Counter()
        for result in write_result.write_returns:
            self.rows_ok += result["ok"]
            counts.update(result["errors"])
        self.errors_by_reason = dict(sorted(counts.items()))
