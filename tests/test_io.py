import os
import signal
import subprocess
import sys
import time

import pyarrow as pa
import pytest

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


WRITER = """
import sys
from pulse import io
io.write_bytes(sys.argv[1], b"n" * (400 << 20))
print("done", flush=True)
"""


@pytest.mark.parametrize("via", ["function", "folder"])
def test_a_write_killed_midway_leaves_the_old_file_whole(tmp_path, via):
    """A rerun after a crash reads resume markers and checkpoints: a file is the old one or the whole
    new one, never torn (SIGKILL while 400 MiB are being written)."""
    target = tmp_path / "marker.json"
    target.write_bytes(b"old")
    code = (
        WRITER
        if via == "function"
        else WRITER.replace(
            "io.write_bytes(sys.argv[1],", "io.Folder(sys.argv[1].rsplit('/', 1)[0]).write_bytes("
        ).replace('b"n" * (400 << 20))', 'b"n" * (400 << 20), "marker.json")')
    )
    writer = subprocess.Popen([sys.executable, "-c", code, str(target)], stdout=subprocess.PIPE)
    deadline = time.monotonic() + 60
    while not any(len(name) > len("marker.json") for name in os.listdir(tmp_path)) and (
        target.stat().st_size == 3
    ):
        assert writer.poll() is None and time.monotonic() < deadline, "the writer never started writing"
        time.sleep(0.001)
    writer.send_signal(signal.SIGKILL)
    writer.wait(timeout=30)
    assert target.read_bytes() == b"old"
    survivors = os.listdir(tmp_path)
    assert survivors[0] == "marker.json" or survivors[0].startswith(".marker.json.")  # hidden partial
    io.write_bytes(str(target), b"new")
    assert target.read_bytes() == b"new"
    assert [name for name in os.listdir(tmp_path) if not name.startswith(".")] == ["marker.json"]


def test_a_failed_write_removes_its_partial_file(tmp_path):
    with pytest.raises(TypeError):
        io.write_bytes(str(tmp_path / "x.bin"), object())  # not bytes: the write fails inside the stream
    assert os.listdir(tmp_path) == []
