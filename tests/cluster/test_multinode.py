"""pulse jobs on a real two-node Ray, submitted through the Jobs API with ``pulse submit``.

The cluster (tests/cluster/multinode.py) is a head plus a second node marked with the
custom resource ``pulse_cpu`` (the "worker group"), both started by this test session on
private ports and stopped by killing exactly their processes. Data travels through a real
S3 server (moto on 127.0.0.1), as it would between the VMs of a real cluster. Each test
checks where the job's tasks ran (node ids from Ray's state API), that its outputs are
complete, and that it survives losing the worker node mid-run.
"""

from __future__ import annotations

import re
import time

import pyarrow.parquet as pq
import pytest
from conftest import job_client, pulse_submit, wait_for_job

from pulse import io

pytestmark = pytest.mark.slow
S3_ENV = [
    "--env",
    "AWS_ENDPOINT_URL",
    "--env",
    "AWS_ACCESS_KEY_ID",
    "--env",
    "AWS_SECRET_ACCESS_KEY",
    "--env",
    "AWS_REGION",
]


def submitted_job_id(stdout: str) -> str:
    match = re.search(r"pulse submit: job (\S+) submitted", stdout)
    assert match, stdout
    return match.group(1)


def read_rows(folder: str, columns: list[str]) -> list[dict]:
    rows: list[dict] = []
    for path in io.list_files(folder, "*.parquet"):
        fs, inner = io.filesystem(path)
        rows += pq.read_table(inner, filesystem=fs, columns=columns).to_pylist()
    return rows


def kill_worker_when_busy(cluster, job_id: str, task_marker: str, timeout: float = 300) -> None:
    """Kill the worker node once a ``task_marker`` task finished on it and another is running there."""
    worker = cluster.nodes[-1]
    client = job_client(cluster)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status = str(client.get_job_status(job_id)).rsplit(".", 1)[-1]
        assert status in {"PENDING", "RUNNING"}, (
            f"job ended before the node kill:\n{client.get_job_logs(job_id)}"
        )
        on_worker = [
            t
            for t in cluster.job_tasks(job_id)
            if t["node_id"] == worker.node_id and task_marker in t["name"]
        ]
        states = {t["state"] for t in on_worker}
        if "FINISHED" in states and "RUNNING" in states:
            worker.kill()
            return
        time.sleep(0.5)
    raise TimeoutError(f"no {task_marker} work on the worker node within {timeout}s")


def test_ingest_then_render_spread_over_both_nodes_and_survive_losing_one(two_node_cluster, s3_bucket):
    cluster = two_node_cluster
    ingest_dir, render_dir = f"{s3_bucket}/ingest", f"{s3_bucket}/render"

    ingest = pulse_submit(
        cluster, "ingest", "--config", "configs/ingest/bundled.yaml", "--pip", "none", *S3_ENV,
        f"output_dir={ingest_dir}", "batch_size=8",
    )  # fmt: skip
    assert ingest.returncode == 0, ingest.stdout[-4000:] + ingest.stderr[-4000:]
    assert "SUCCEEDED" in ingest.stdout and "[ingest] ok=" in ingest.stdout  # logs were followed
    records = read_rows(f"{ingest_dir}/records", ["record_id"])
    assert len(records) > 20

    render = pulse_submit(
        cluster, "render", "--pip", "none", "--no-follow", *S3_ENV,
        f"input_dir={ingest_dir}", f"output_dir={render_dir}", "batch_size=2", "concurrency=[2,3]",
    )  # fmt: skip
    assert render.returncode == 0, render.stderr[-4000:]
    job_id = submitted_job_id(render.stdout)
    kill_worker_when_busy(cluster, job_id, "RenderStage")
    status = wait_for_job(cluster, job_id)
    logs = job_client(cluster).get_job_logs(job_id)
    assert status == "SUCCEEDED", logs[-4000:]

    tasks = [t for t in cluster.job_tasks(job_id) if "RenderStage" in t["name"]]
    finished_on = {t["node_id"] for t in tasks if t["state"] == "FINISHED"}
    head, worker = cluster.nodes[0], cluster.nodes[-1]
    assert {head.node_id, worker.node_id} <= finished_on, "render work ran on both nodes"
    lost = [t for t in tasks if t["node_id"] == worker.node_id and t["state"] != "FINISHED"]
    assert lost, "a render task was running on the worker when it died"
    assert any(t["node_id"] == head.node_id and t["state"] == "FINISHED" for t in tasks)

    images = read_rows(f"{render_dir}/images", ["record_id"])
    errors = read_rows(f"{render_dir}/errors", ["record_id", "error"])
    rendered = [r["record_id"] for r in images + errors]
    assert sorted(rendered) == sorted(r["record_id"] for r in records), "every record exactly once"
    assert not [e for e in errors if re.search(r"node|worker|actor", e["error"] or "", re.I)]
    assert f"[render] ok={len(images)}" in logs
    assert [n["node_id"] for n in cluster.alive_nodes()] == [head.node_id], "the worker node is gone"
