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
