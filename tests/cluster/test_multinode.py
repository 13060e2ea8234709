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

from pulse import io
from tests.cluster.multinode import job_client, pulse_submit, wait_for_job

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


def kill_worker_when_busy(cluster, job_id: str, task_marker: str, timeout: float = 300) -> float:
    """Kill the worker node once a ``task_marker`` batch finished on it while the job still runs.

    Only Ray Data's ``submit`` calls count (a batch of real work): an actor's ``__init__`` or
    ``get_location`` finishes as soon as the pool starts, while the job may still be listing its
    input — and Ray Data's Parquet ``FooterReader`` actor is not restarted when its node dies.
    Returns the kill time in ms since the epoch, so a test can show that work went on after it.
    """
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
            if t["node_id"] == worker.node_id and task_marker in t["name"] and t["name"].endswith(".submit")
        ]
        if any(t["state"] == "FINISHED" for t in on_worker):
            killed_at_ms = time.time() * 1000
            worker.kill()
            return killed_at_ms
        time.sleep(0.25)
    raise TimeoutError(f"no {task_marker} work on the worker node within {timeout}s")


def finished_after(tasks: list[dict], node_id: str, when_ms: float) -> list[dict]:
    """Batches of real work (``submit`` calls) that finished on ``node_id`` after ``when_ms``."""
    return [
        t
        for t in tasks
        if t["node_id"] == node_id
        and t["name"].endswith(".submit")
        and t["state"] == "FINISHED"
        and (t.get("end_time_ms") or 0) > when_ms
    ]


def test_ingest_then_render_spread_over_both_nodes_and_survive_losing_one(cluster, s3_bucket):
    ingest_dir, render_dir = f"{s3_bucket}/ingest", f"{s3_bucket}/render"

    ingest = pulse_submit(
        cluster, "ingest", "--config", "configs/ingest/bundled.yaml", "--pip", "none", *S3_ENV,
        f"output_dir={ingest_dir}", "batch_size=8", "limit_per_source=14",
    )  # fmt: skip
    # 28 of the 118 records (14 per source): 300-dpi pages keep render busy past the kill, in half the time.
    assert ingest.returncode == 0, ingest.stdout[-4000:] + ingest.stderr[-4000:]
    assert "SUCCEEDED" in ingest.stdout and "[ingest] ok=" in ingest.stdout  # logs were followed
    records = read_rows(f"{ingest_dir}/records", ["record_id"])
    assert len(records) > 20

    render = pulse_submit(
        cluster, "render", "--pip", "none", "--no-follow", *S3_ENV,
        f"input_dir={ingest_dir}", f"output_dir={render_dir}", "batch_size=2", "concurrency=[2,3]",
        # 300-dpi distorted pages keep the job running long enough to lose a node mid-run
        "params.dpi=300", "params.clean_fraction=0.0",
    )  # fmt: skip
    assert render.returncode == 0, render.stderr[-4000:]
    job_id = submitted_job_id(render.stdout)
    killed_at_ms = kill_worker_when_busy(cluster, job_id, "RenderStage")
    status = wait_for_job(cluster, job_id)
    logs = job_client(cluster).get_job_logs(job_id)
    assert status == "SUCCEEDED", logs[-4000:]

    tasks = [t for t in cluster.job_tasks(job_id) if "RenderStage" in t["name"]]
    finished_on = {t["node_id"] for t in tasks if t["state"] == "FINISHED"}
    head, worker = cluster.nodes[0], cluster.nodes[-1]
    assert {head.node_id, worker.node_id} <= finished_on, "render work ran on both nodes"
    assert finished_after(tasks, head.node_id, killed_at_ms), "render went on, on the head, after the kill"

    images = read_rows(f"{render_dir}/images", ["record_id"])
    errors = read_rows(f"{render_dir}/errors", ["record_id", "error"])
    rendered = [r["record_id"] for r in images + errors]
    assert sorted(rendered) == sorted(r["record_id"] for r in records), "every record exactly once"
    assert not [e for e in errors if re.search(r"node|worker|actor", e["error"] or "", re.I)]
    assert f"[render] ok={len(images)}" in logs
    assert worker.node_id not in {n["node_id"] for n in cluster.alive_nodes()}, "the worker node is gone"

    # The instruction builder from the uploaded working_dir (its package once fell to an exclude).
    build_dir = f"{s3_bucket}/instruct"
    build = pulse_submit(
        cluster, "build", "--config", "configs/build/templates.yaml", "--pip", "none", *S3_ENV,
        f"records_dir={ingest_dir}", f"images_dir={render_dir}", f"output_dir={build_dir}", "limit=4",
    )  # fmt: skip
    assert build.returncode == 0, build.stdout[-4000:] + build.stderr[-4000:]
    assert "SUCCEEDED" in build.stdout and "[build] ok=" in build.stdout
    assert io.list_files(build_dir, "*.parquet")


def write_converted_gold(root: str, subset: str, n: int) -> None:
    """An ECGBench subset in the converted JSON layout (``<root>/<subset>.json`` + images) on S3."""
    import io as stdio
    import json

    from PIL import Image

    items = []
    for i in range(n):
        buffer = stdio.BytesIO()
        Image.new("RGB", (16, 16), (i, 200, 200)).save(buffer, format="PNG")
        io.write_bytes(io.join(root, "images", f"{i}.png"), buffer.getvalue())
        question = "<image>\nWhich rhythm?\nA. NORM\nB. AF\nC. ...\nH. SB"
        conversations = [{"from": "human", "value": question}, {"from": "gpt", "value": "A. NORM"}]
        items.append({"id": f"item-{i}", "image": f"images/{i}.png", "conversations": conversations})
    io.write_text(io.join(root, f"{subset}.json"), json.dumps(items))


def test_ecgbench_sweep_spreads_its_clients_and_survives_losing_a_node(cluster, s3_bucket):
    """The endpoint is a small OpenAI-compatible HTTP server in this process (tests/ecgbench/chat_server.py),
    standing in for the model endpoint a sweep queries; the client side under test is pulse's own."""
    import json
    import sys
    from pathlib import Path

    import yaml

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "ecgbench"))
    from chat_server import ChatServer

    n_items = 80
    gold, out = f"{s3_bucket}/ecgbench", f"{s3_bucket}/sweep"
    write_converted_gold(gold, "g12-test-no-cot", n_items)

    def slow_answer(messages):
        time.sleep(0.5)  # ~10 s of answers: the kill lands mid-sweep even when task events lag under load
        return "A"

    with ChatServer(slow_answer) as server:
        endpoint = {
            "name": "stand-in", "base_url": server.base_url, "model": "m", "api_key_env": None,
            "max_tokens": 8, "concurrency": 2, "max_concurrent_requests": 2, "batch_size": 2,
        }  # fmt: skip
        config = {
            "output_dir": out, "gold": gold, "subsets": ["g12-test-no-cot"], "allow_partial": True,
            "plots": False, "models": [endpoint],
        }  # fmt: skip
        io.write_text(f"{s3_bucket}/sweep.yaml", yaml.safe_dump(config))
        sweep = pulse_submit(
            cluster,
            "ecgbench_sweep",
            "--config",
            f"{s3_bucket}/sweep.yaml",
            "--pip",
            "none",
            "--no-follow",
            *S3_ENV,
        )
        assert sweep.returncode == 0, sweep.stderr[-4000:]
        job_id = submitted_job_id(sweep.stdout)
        killed_at_ms = kill_worker_when_busy(cluster, job_id, "HttpBatchUDF")
        status = wait_for_job(cluster, job_id)
    logs = job_client(cluster).get_job_logs(job_id)
    assert status == "SUCCEEDED", logs[-4000:]

    tasks = [t for t in cluster.job_tasks(job_id) if "HttpBatchUDF" in t["name"]]
    head, worker = cluster.nodes[0], cluster.nodes[-1]
    assert {head.node_id, worker.node_id} <= {t["node_id"] for t in tasks if t["state"] == "FINISHED"}
    assert finished_after(tasks, head.node_id, killed_at_ms), "the sweep went on after the kill"
    predictions = io.read_text(f"{out}/predictions/stand-in/g12-test-no-cot.jsonl").splitlines()
    rows = [json.loads(line) for line in predictions]
    assert sorted(r["question_id"] for r in rows) == sorted(f"item-{i}" for i in range(n_items))
    assert not [r for r in rows if r["metadata"].get("error")], "no item lost with the node"
    results = json.loads(io.read_text(f"{out}/results.json"))["results"]
    assert {r["subset"] for r in results} == {"g12-test-no-cot"}


def test_two_worker_train_spreads_and_resumes_after_losing_a_node(cluster, s3_bucket):
    """A 2-worker DDP run spread one worker per node (``placement_strategy=SPREAD``); then the worker
    node dies and training resumes from its last checkpoint with both workers on the head."""
    from pulse.train_ray.synthetic import heart_rate_rows, write_instruction_parquet

    head, worker = cluster.nodes[0], cluster.nodes[-1]
    data, storage = f"{s3_bucket}/hr/train", f"{s3_bucket}/train"
    write_instruction_parquet(heart_rate_rows(160, seed=0), data)  # one epoch: 40 steps
    client = job_client(cluster)
    train = pulse_submit(
        cluster, "train", "--config", "configs/train/tiny-cpu.yaml", "--pip", "none", "--no-follow", *S3_ENV,
        f"storage_path={storage}", f"data.train_path={data}", "cpus_per_worker=1", "max_failures=2",
        "placement_strategy=SPREAD", "max_steps=16", "checkpoint_every=4", "global_batch_size=4",
        "micro_batch_size=2", "report_interval_s=0",
    )  # fmt: skip
    # report_interval_s=0 reports every step, so Ray Train's 2-s report collection paces the run
    # (~2 s a step): the node dies mid-run instead of after a 16-step run that takes seconds.
    assert train.returncode == 0, train.stderr[-4000:]
    job_id = submitted_job_id(train.stdout)
    deadline = time.monotonic() + 400
    while time.monotonic() < deadline:
        status = str(client.get_job_status(job_id)).rsplit(".", 1)[-1]
        assert status in {"PENDING", "RUNNING"}, client.get_job_logs(job_id)[-4000:]
        workers = {
            t["node_id"]
            for t in cluster.job_tasks(job_id)
            if "RayTrainWorker" in t["name"] and t["state"] != "FAILED"
        }
        found = [re.search(r"/(checkpoint_\d[^/]*)/", p) for p in io.list_files(f"{storage}/tiny-cpu")]
        checkpoints = {match.group(1) for match in found if match}
        # Two on storage: Ray Train has registered the first by the time the second is uploaded
        # (a kill right after the first upload could beat its registration and restart from scratch).
        if {head.node_id, worker.node_id} <= workers and len(checkpoints) >= 2:
            break
        time.sleep(1)
    else:
        raise TimeoutError(
            f"no checkpoint with workers on both nodes (workers on {workers}):\n"
            f"{client.get_job_logs(job_id)[-4000:]}"
        )
    worker.kill()
    status = wait_for_job(cluster, job_id, timeout=500)
    logs = client.get_job_logs(job_id)
    assert status == "SUCCEEDED", logs[-4000:]
    resumed = re.search(r"resumed_from_step: (-?\d+)", logs)
    assert resumed and int(resumed.group(1)) >= 4, logs[-3000:]
    assert re.search(r"steps: 16\b", logs)
    assert io.list_files(f"{storage}/tiny-cpu/export", "*.safetensors")
