"""A real two-node Ray cluster on one machine, started and stopped by exactly this process.

Each node is ``ray start --block`` launched with ``start_new_session=True``, so every Ray
process of that node (GCS, raylet, dashboard, agents, workers) shares one session id that
no other Ray on the host has. Killing a node means SIGKILL to exactly those processes;
``ray stop`` is never used because it kills every Ray on the machine, including other
users'. All ports are private (picked free by the OS), worker ports are OS-assigned, and
each node has its own short temp dir, so neither ``ray_current_cluster`` nor the default
dashboard-agent port of another Ray instance can interfere.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field

import psutil
import requests

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

# GCS notices a killed node within ~5-15 s instead of the default ~30 s (a dead raylet refuses the
# check at once); the 3 s per-check timeout keeps a raylet that is merely busy (2 training workers
# on 2 cores) from being declared dead. A raylet on a loaded host may wait minutes (not seconds)
# for its dashboard agent before giving up.
NODE_ENV = {
    "RAY_agent_register_timeout_ms": "300000",
    "RAY_raylet_start_wait_time_s": "300",
    "RAY_health_check_initial_delay_ms": "1000",
    "RAY_health_check_period_ms": "1000",
    "RAY_health_check_timeout_ms": "3000",
    "RAY_health_check_failure_threshold": "5",
}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class RayNode:
    """One ``ray start --block`` process and the session it leads."""

    name: str
    process: subprocess.Popen
    temp_dir: str
    resources: dict[str, float]
    log_path: str
    node_id: str | None = None

    def session_pids(self) -> set[int]:
        """Every live process started for this node (its session, plus descendants that left it)."""
        pids = set()
        for proc in psutil.process_iter(["pid"]):
            try:
                if os.getsid(proc.pid) == self.process.pid:
                    pids.add(proc.pid)
            except (ProcessLookupError, PermissionError):
                continue
        try:
            root = psutil.Process(self.process.pid)
            pids.update(child.pid for child in root.children(recursive=True))
            pids.add(root.pid)
        except psutil.NoSuchProcess:
            pass
        return pids

    def kill(self) -> None:
        """SIGKILL this node's processes only (the node dies as if its VM vanished)."""
        for _ in range(3):  # a worker may be forking while we kill
            pids = self.session_pids()
            if not pids:
                break
            for pid in pids:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            time.sleep(0.3)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(timeout=10)

    def alive(self) -> bool:
        return self.process.poll() is None


@dataclass
class LocalMultiNodeCluster:
    """Head + worker nodes on 127.0.0.1 with private ports; ``auth_token`` turns on token auth."""

    auth_token: str | None = None
    nodes: list[RayNode] = field(default_factory=list)
    gcs_address: str | None = None
    dashboard_url: str | None = None
    root: str = field(default_factory=lambda: tempfile.mkdtemp(prefix="pmn-", dir="/tmp"))

    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("RAY_ADDRESS", "RAY_AUTH"))}
        env.update(NODE_ENV, RAY_USAGE_STATS_ENABLED="0", PYTHONUNBUFFERED="1")
        if self.auth_token:
            env.update(RAY_AUTH_MODE="token", RAY_AUTH_TOKEN=self.auth_token)
        else:
            env["RAY_AUTH_MODE"] = "disabled"
        return env

    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.auth_token}"} if self.auth_token else {}

    def _start(self, name: str, args: list[str], num_cpus: int, resources: dict[str, float]) -> RayNode:
        temp_dir = tempfile.mkdtemp(prefix=f"{name}-", dir=self.root)
        log_path = temp_dir + ".log"
        agent_ports = {
            "dashboard_agent_listen_port": free_port(),
            "metrics_agent_port": free_port(),
            "metrics_export_port": free_port(),
            "runtime_env_agent_port": free_port(),
        }
        command = [
            sys.executable,
            os.path.join(os.path.dirname(os.path.abspath(__file__)), "ray_start.py"),
            "start",
            "--block",
            "--node-ip-address=127.0.0.1",
            f"--num-cpus={num_cpus}",
            f"--resources={json.dumps(resources)}",
            f"--temp-dir={temp_dir}",
            "--object-store-memory=300000000",
            f"--node-manager-port={free_port()}",
            f"--object-manager-port={free_port()}",
            f"--dashboard-agent-listen-port={agent_ports['dashboard_agent_listen_port']}",
            f"--dashboard-agent-grpc-port={agent_ports['metrics_agent_port']}",
            f"--runtime-env-agent-port={agent_ports['runtime_env_agent_port']}",
            f"--metrics-export-port={agent_ports['metrics_export_port']}",
            "--min-worker-port=0",
            "--max-worker-port=0",
            "--disable-usage-stats",
            *args,
        ]
        with open(log_path, "w") as log:
            process = subprocess.Popen(
                command, stdout=log, stderr=subprocess.STDOUT, env=self.env(), start_new_session=True
            )
        node = RayNode(name, process, temp_dir, resources, log_path)
        threading.Thread(target=_prepublish_agent_ports, args=(node, agent_ports), daemon=True).start()
        self.nodes.append(node)
        return node

    def start_head(self, num_cpus: int, resources: dict[str, float] | None = None) -> RayNode:
        return self._with_retry(lambda: self._start_head(num_cpus, resources))

    def add_worker(self, name: str, num_cpus: int, resources: dict[str, float]) -> RayNode:
        return self._with_retry(lambda: self._add_worker(name, num_cpus, resources))

    def _with_retry(self, start, attempts: int = 5) -> RayNode:
        """On a loaded host ``ray start`` itself can time out talking to a fresh GCS; try once more."""
        for attempt in range(attempts):
            try:
                return start()
            except (RuntimeError, TimeoutError):
                failed = self.nodes.pop()
                failed.kill()
                shutil.rmtree(failed.temp_dir, ignore_errors=True)
                if attempt == attempts - 1:
                    raise
        raise AssertionError("unreachable")

    def _start_head(self, num_cpus: int, resources: dict[str, float] | None) -> RayNode:
        gcs_port, dashboard_port = free_port(), free_port()
        node = self._start(
            "head",
            [
                "--head",
                f"--port={gcs_port}",
                "--include-dashboard=true",
                "--dashboard-host=127.0.0.1",
                f"--dashboard-port={dashboard_port}",
                f"--ray-client-server-port={free_port()}",
            ],
            num_cpus,
            resources or {},
        )
        self.gcs_address = f"127.0.0.1:{gcs_port}"
        self.dashboard_url = f"http://127.0.0.1:{dashboard_port}"
        self._wait_for_node(node, timeout=300)
        return node

    def _add_worker(self, name: str, num_cpus: int, resources: dict[str, float]) -> RayNode:
        node = self._start(name, [f"--address={self.gcs_address}"], num_cpus, resources)
        self._wait_for_node(node, timeout=300)
        return node

    def alive_nodes(self) -> list[dict]:
        response = requests.get(
            f"{self.dashboard_url}/api/v0/nodes", params={"limit": 100}, headers=self.headers(), timeout=10
        )
        response.raise_for_status()
        return [n for n in response.json()["data"]["result"]["result"] if n["state"] == "ALIVE"]

    def _wait_for_node(self, node: RayNode, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not node.alive():
                raise RuntimeError(f"ray start for {node.name} exited:\n{_tail(node.log_path)}")
            crashed = _raylet_crash(node.temp_dir)
            if crashed:
                # e.g. the raylet gives its dashboard agent a fixed ~15 s to start, too short on a loaded host
                raise RuntimeError(f"raylet of {node.name} crashed during startup: {crashed}")
            try:
                for info in self.alive_nodes():
                    if info["node_id"] not in {n.node_id for n in self.nodes} and _matches(info, node):
                        node.node_id = info["node_id"]
                        return
            except (requests.RequestException, KeyError, ValueError):
                pass
            time.sleep(1)
        raise TimeoutError(f"{node.name} did not join within {timeout}s:\n{_tail(node.log_path)}")

    def job_tasks(self, submission_id: str) -> list[dict]:
        """Tasks of one submitted job from the state API (each has ``node_id``, ``state``, ``name``)."""
        ray_job_id = job_client(self).get_job_info(submission_id).job_id  # the driver's Ray job id
        if not ray_job_id:
            return []
        response = requests.get(
            f"{self.dashboard_url}/api/v0/tasks",
            params={
                "limit": 10000,
                "filter_keys": "job_id",
                "filter_predicates": "=",
                "filter_values": ray_job_id,
                "detail": "1",
            },
            headers=self.headers(),
            timeout=30,
        )
        response.raise_for_status()
        return response.json()["data"]["result"]["result"]

    def shutdown(self) -> None:
        for node in reversed(self.nodes):
            node.kill()
        shutil.rmtree(self.root, ignore_errors=True)


def _matches(info: dict, node: RayNode) -> bool:
    if node.name == "head":
        return bool(info.get("is_head_node"))
    totals = info.get("resources_total", {})
    return all(totals.get(key) == value for key, value in node.resources.items())


def _prepublish_agent_ports(node: RayNode, ports: dict[str, int], timeout: float = 300) -> None:
    """Write the agents' port files as soon as the raylet names its node id.

    The raylet waits a fixed ~15 s for the dashboard agent to publish its ports; on a heavily
    loaded host the agent (a Python process) may still be importing by then and the raylet
    aborts. The ports are fixed by this harness, so it publishes the same values early; the
    agent later binds exactly these ports and rewrites the same files.
    """
    from ray._raylet import persist_port

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and node.alive():
        session = os.path.realpath(os.path.join(node.temp_dir, "session_latest"))
        raylet_log = os.path.join(session, "logs", "raylet.out")
        if os.path.isfile(raylet_log):
            with open(raylet_log, errors="replace") as log:
                match = re.search(r"Initializing NodeManager node_id=([0-9a-f]+)", log.read())
            if match:
                for name, port in ports.items():
                    persist_port(session, match.group(1), name, port)
                return
        time.sleep(0.2)


def _raylet_crash(temp_dir: str) -> str | None:
    for root, _, files in os.walk(temp_dir):
        if "raylet.out" in files:
            with open(os.path.join(root, "raylet.out"), errors="replace") as log:
                for line in log:
                    if "Check failed" in line:
                        return line.strip()[-300:]
    return None


def _tail(path: str, chars: int = 3000) -> str:
    with open(path) as log:
        return log.read()[-chars:]


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
