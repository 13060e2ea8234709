"""Fixtures for the multi-node tests: a real two-node Ray started (and stopped) by this session."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from multinode import LocalMultiNodeCluster

REPO = Path(__file__).resolve().parents[2]
WORKER_GROUP = "pulse_cpu"


@pytest.fixture(scope="session")
def two_node_cluster():
    """Head (3 CPUs) + a "worker group" node (2 CPUs, custom resource ``pulse_cpu``), token auth on."""
    cluster = LocalMultiNodeCluster(auth_token=f"pulse-test-{uuid.uuid4().hex}")
    try:
        cluster.start_head(num_cpus=3)
        cluster.add_worker("worker", num_cpus=2, resources={WORKER_GROUP: 2})
        yield cluster
    finally:
        cluster.shutdown()


def pulse_submit(
    cluster: LocalMultiNodeCluster, *args: str, timeout: float = 600
) -> subprocess.CompletedProcess:
    """Run the real ``pulse submit`` CLI against the cluster (token from RAY_AUTH_TOKEN)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RAY_ADDRESS", "RAY_AUTH"))}
    env["RAY_AUTH_TOKEN"] = cluster.auth_token or ""
    command = [sys.executable, "-m", "pulse.cli", "submit", *args, "--address", cluster.dashboard_url]
    return subprocess.run(command, capture_output=True, text=True, timeout=timeout, env=env, cwd=REPO)


def job_client(cluster: LocalMultiNodeCluster):
    from ray.job_submission import JobSubmissionClient

    return JobSubmissionClient(cluster.dashboard_url, headers=cluster.headers())


def wait_for_job(cluster: LocalMultiNodeCluster, job_id: str, timeout: float = 400) -> str:
    client = job_client(cluster)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status = str(client.get_job_status(job_id)).rsplit(".", 1)[-1]
        if status in {"SUCCEEDED", "FAILED", "STOPPED"}:
            return status
        time.sleep(1)
    raise TimeoutError(f"job {job_id} still running after {timeout}s:\n{client.get_job_logs(job_id)[-4000:]}")
