import pyarrow as pa

from pulse import io


def test_local_roundtrip(tmp_path):
    target = io.join(str(tmp_path), "a", "b.txt")
    io.write_text(target, "hello")
    assert io.read_text(target) == "hello"
    assert io.exists(target)
    assert io.list_files(str(tmp_path), "*.txt") == [str(tmp_path / "a" / "b.txt")]


def test_s3_roundtrip_parquet(s3_bucket):
    table = pa.table({"x": [1, 2, 3]})
    path = f"{s3_bucket}/out/part-0.parquet"
    io.write_parquet(table, path)
    assert io.exists(path)
    assert io.read_parquet(path).column("x").to_pylist() == [1, 2, 3]
    assert io.list_files(f"{s3_bucket}/out", "*.parquet") == [path]
    io.write_text(f"{s3_bucket}/notes/x.txt", "über")
    assert io.read_text(f"{s3_bucket}/notes/x.txt") == "über"
    assert not io.exists(f"{s3_bucket}/missing.txt")


def test_count_parquet_rows_reads_footers_locally_and_on_s3(tmp_path, s3_bucket):
    for base in (str(tmp_path / "rows"), f"{s3_bucket}/rows"):
        io.write_parquet(pa.table({"x": list(range(5))}), io.join(base, "a.parquet"))
        io.write_parquet(pa.table({"x": list(range(7))}), io.join(base, "sub", "b.parquet"))
        io.write_text(io.join(base, "_SUCCESS.txt"), "not parquet")
        assert io.count_parquet_rows(base) == 12
        assert io.count_parquet_rows(io.join(base, "a.parquet")) == 5
    assert io.count_parquet_rows(str(tmp_path / "empty-folder-that-does-not-exist")) == 0


def test_storage_error_message_names_the_cause_and_the_settings():
    unreachable = OSError(
        "When listing objects in bucket 'b': AWS Error NETWORK_CONNECTION during ListObjectsV2"
    )
    message = io.storage_error_message(unreachable)
    assert message.startswith("cannot reach the object store: When listing objects in bucket 'b'")
    assert "storage: section" in message and "AWS_SECRET_ACCESS_KEY" in message
    denied = OSError("AWS Error ACCESS_DENIED during HeadObject operation: No response body.")
    wrapped = RuntimeError("task failed")
    wrapped.__cause__ = denied
    assert io.storage_error_message(wrapped).startswith(
        "the object store refused access: AWS Error ACCESS_DENIED"
    )
    assert io.storage_error_message(OSError("[Errno 28] No space left on device")) is None
    assert io.storage_error_message(ValueError("AWS Error but not an OSError")) is None
