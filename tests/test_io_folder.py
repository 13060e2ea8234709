"""io.Folder: one picklable handle per output folder, local or on a real S3 server (moto)."""

from __future__ import annotations

import pickle

import pyarrow as pa

from pulse import io


def test_local_folder_writes_reads_and_lists(tmp_path):
    folder = io.Folder(tmp_path / "out")
    folder.write_text("hi", "a", "b.txt")
    folder.sub("t").write_parquet(pa.table({"x": [1, 2]}), "part-0.parquet")
    assert folder.read_bytes("a", "b.txt") == b"hi" and folder.exists("a", "b.txt")
    assert folder.list_files("*.parquet") == ["t/part-0.parquet"]
    assert io.read_parquet(folder.path("t")).column("x").to_pylist() == [1, 2]


def test_s3_folder_carries_its_credentials_into_a_ray_task(s3_bucket, monkeypatch, ray_session):
    """A Folder made on the driver writes from a Ray task whose environment has no AWS_* credentials."""
    import ray

    folder = io.Folder(f"{s3_bucket}/folder")
    assert pickle.loads(pickle.dumps(folder)).uri == folder.uri

    @ray.remote(
        num_cpus=0.1, runtime_env={"env_vars": {"AWS_ACCESS_KEY_ID": "", "AWS_SECRET_ACCESS_KEY": ""}}
    )
    def write(target: io.Folder) -> str:
        import os

        assert not os.environ.get("AWS_ACCESS_KEY_ID")
        target.write_text("from a task", "task.txt")
        return "ok"

    assert ray.get(write.remote(folder)) == "ok"
    assert io.read_text(f"{s3_bucket}/folder/task.txt") == "from a task"
    assert folder.list_files() == ["task.txt"]


def test_io_functions_reach_s3_through_a_folder_made_on_the_driver(s3_bucket, ray_session):
    """Readers take a Folder where they took StorageOptions: a task without AWS_* credentials reads with it."""
    import ray

    io.write_text(f"{s3_bucket}/raw/a.txt", "raw")
    root = io.Folder(f"{s3_bucket}/raw")

    @ray.remote(
        num_cpus=0.1, runtime_env={"env_vars": {"AWS_ACCESS_KEY_ID": "", "AWS_SECRET_ACCESS_KEY": ""}}
    )
    def read(storage: io.Folder) -> tuple[str, list[str]]:
        return io.read_text(f"{s3_bucket}/raw/a.txt", storage), io.list_files(
            f"{s3_bucket}/raw", "*", storage
        )

    assert ray.get(read.remote(root)) == ("raw", [f"{s3_bucket}/raw/a.txt"])
    assert io.filesystem("/tmp/x", root)[0].type_name == "local"  # a local path is not sent to S3
