"""The one error sink: where every stage's error rows go and how they are counted.

A stage writes its error rows (its own output schema, ``error`` set to ``"<reason>: <detail>"``
with a reason from ``pulse.errors``) as Parquet parts under ``<output>/errors/``; the job's
``StageSummary`` counts them by reason from the parts (or from the counts each write returned).
"""

from __future__ import annotations

from collections import Counter

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from pulse import io
from pulse.errors import error_reason


def split_errors(table: pa.Table) -> tuple[pa.Table, pa.Table]:
    """(rows without an error, rows with one)."""
    failed = pc.is_valid(table.column("error"))
    return table.filter(pc.invert(failed)), table.filter(failed)


def count_reasons(errors: list[str | None]) -> dict[str, int]:
    return dict(sorted(Counter(error_reason(e) for e in errors if e).items()))


class ErrorSink:
    """``<output>/errors/``: picklable (an ``io.Folder``), so write tasks and actors can hold it."""

    def __init__(self, output: io.Folder, name: str = "errors"):
        self.folder = output.sub(name)

    @property
    def uri(self) -> str:
        return self.folder.uri

    def write(self, rows: pa.Table, part: str) -> dict[str, int]:
        """Write error rows as ``<part>.parquet`` (nothing for none); returns their counts by reason."""
        if not rows.num_rows:
            return {}
        self.folder.write_parquet(rows, f"{part}.parquet")
        return count_reasons(rows.column("error").to_pylist())

    def counts(self, unique_by: str | None = None) -> dict[str, int]:
        """Error rows on storage by reason; ``unique_by`` counts each value of that column once
        (a row retried after a restart is written again)."""
        errors: dict[object, str | None] = {}
        for i, relative in enumerate(self.folder.list_files("*.parquet")):
            columns = ["error", unique_by] if unique_by else ["error"]
            table = pq.read_table(self.folder.inner(relative), columns=columns, filesystem=self.folder.fs)
            keys = table.column(unique_by).to_pylist() if unique_by else range(table.num_rows)
            for key, error in zip(keys, table.column("error").to_pylist(), strict=True):
                errors[key if unique_by else (i, key)] = error
        return count_reasons(list(errors.values()))
