"""A Ray Data sink that routes image rows: good ones to ``images/``, error rows to ``errors/``.

One pass over the data writes both Parquet sinks (and, optionally, the image files), and
each write task returns its counts by error reason, which ``on_write_complete`` sums on the
driver for the job summary.
"""

from __future__ import annotations

import posixpath
import re
import uuid
from collections import Counter
from collections.abc import Iterable
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from ray.data.block import Block
from ray.data.datasource import Datasink, WriteResult

from pulse import io
from pulse.progress import report
from pulse.schema import IMAGE_SCHEMA, error_reason

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
        # Resolved here on the driver: the filesystem object carries endpoint and credentials to
        # the write tasks, whose processes may not have the driver's AWS_* environment.
        self.filesystem, self.root = io.filesystem(output_dir, storage)
        self.write_files = write_files
        self.run_id = uuid.uuid4().hex[:8]
        self.rows_ok = 0
        self.errors_by_reason: dict[str, int] = {}

    def _write_bytes(self, relative: str, data: bytes) -> None:
        target = posixpath.join(self.root, relative)
        self.filesystem.create_dir(posixpath.dirname(target), recursive=True)
        with self.filesystem.open_output_stream(target) as stream:
            stream.write(data)

    def _write_table(self, table: pa.Table, folder: str, name: str) -> None:
        sink = pa.BufferOutputStream()
        pq.write_table(table, sink)
        self._write_bytes(f"{folder}/{name}", sink.getvalue().to_pybytes())

    def write(self, blocks: Iterable[Block], ctx: Any) -> dict:
        tables = [pa.Table.from_pandas(b) if not isinstance(b, pa.Table) else b for b in blocks]
        tables = [t.cast(IMAGE_SCHEMA) for t in tables if t.num_rows]
        if not tables:
            return {"ok": 0, "errors": {}}
        table = pa.concat_tables(tables)
        failed = pc.is_valid(table.column("error"))
        good, bad = table.filter(pc.invert(failed)), table.filter(failed)
        name = f"part-{self.run_id}-{ctx.task_idx:06d}.parquet"
        if good.num_rows:
            self._write_table(good, "images", name)
            if self.write_files:
                for rid, data, fmt in zip(
                    good.column("record_id").to_pylist(),
                    good.column("image").to_pylist(),
                    good.column("image_format").to_pylist(),
                    strict=True,
                ):
                    self._write_bytes(f"files/{file_name(rid, fmt)}", data)
        if bad.num_rows:
            self._write_table(bad, "errors", name)
        reasons = Counter(error_reason(e) for e in bad.column("error").to_pylist())
        report(self.progress, table.num_rows)
        return {"ok": good.num_rows, "errors": dict(reasons)}

    def on_write_complete(self, write_result: WriteResult[dict]) -> None:
        counts: Counter[str] = Counter()
        for result in write_result.write_returns:
            self.rows_ok += result["ok"]
            counts.update(result["errors"])
        self.errors_by_reason = dict(sorted(counts.items()))
