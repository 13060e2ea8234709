"""The one error sink: parts under errors/, counted by reason, picklable for Ray workers."""

from __future__ import annotations

import pickle

import pyarrow as pa

from pulse import io
from pulse.error_sink import ErrorSink, split_errors


def test_error_rows_are_written_and_counted_by_reason(tmp_path, s3_bucket):
    table = pa.table(
        {
            "id": ["a", "b", "c", "d"],
            "error": [None, "missing_image: a.png", "corrupt_image: truncated", "missing_image: d.png"],
        }
    )
    good, bad = split_errors(table)
    assert good.column("id").to_pylist() == ["a"]
    for root in (str(tmp_path), s3_bucket):
        sink = pickle.loads(pickle.dumps(ErrorSink(io.Folder(root))))
        assert sink.write(bad, "part-0") == {"corrupt_image": 1, "missing_image": 2}
        assert sink.write(bad.slice(0, 0), "part-empty") == {}
        sink.write(bad.slice(0, 1), "part-1-retry")  # "b" again after a restart
        assert sink.counts() == {"corrupt_image": 1, "missing_image": 3}
        assert sink.counts(unique_by="id") == {"corrupt_image": 1, "missing_image": 2}
        assert io.list_files(io.join(root, "errors"), "*.parquet") == [
            io.join(root, "errors", "part-0.parquet"),
            io.join(root, "errors", "part-1-retry.parquet"),
        ]
