"""Overload and failure over real HTTP: a flood at twice the saturation point is shed with 429 +
``Retry-After`` (no 5xx) while ``/health`` stays 200; killing the model replica mid-request is a
503 in the OpenAI format, and mid-stream it ends the stream with an error event and ``[DONE]``.

Saturation here is deliberately tiny (one replica, one ongoing + one queued request) so the
tests run in seconds on 2 cores; ``benchmarks/serve.py --overload`` measures the same at scale.
"""

from __future__ import annotations

import concurrent.futures
import json
import os
import signal
import threading
import time

import httpx
import pytest

from pulse.serve.app import admission_limit
from pulse.serve.errors import failure_error
from pulse.serve.job import deployment_name
from tests.serve.serve_testlib import make_config, running

MODEL = "pulse-tiny"
APP = "pulse-overload"
LONG = 900  # tokens: seconds of generation, and prompt + LONG fits the tiny model's 1024 positions


@pytest.fixture(scope="module")
def cfg(tiny_llava_dir):
    return make_config(
        tiny_llava_dir,
        app_name=APP,
        max_ongoing_requests=1,
        max_queued_requests=1,
        retry_after_s=2,
        limits={"max_tokens_cap": 1000, "request_timeout_s": 120},
    )


@pytest.fixture(scope="module")
def endpoint(ray_session, cfg):
    with running(cfg) as url:
        yield url


def replica_pid() -> int:
    from ray import serve

    handle = serve.get_deployment_handle(deployment_name(MODEL), app_name=APP)
    return handle.stats.remote().result(timeout_s=180)["pid"]


def cpu_ticks(pid: int) -> int:
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])  # utime + stime


def wait_until_busy(pid: int, timeout_s: float = 60) -> None:
    """Until ``pid`` burns at least 30 ms of CPU in a 50 ms window (an idle replica uses ~none)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        before = cpu_ticks(pid)
        time.sleep(0.05)
        if cpu_ticks(pid) - before >= 3 * os.sysconf("SC_CLK_TCK") // 100:
            return
    raise AssertionError("the replica never started generating")


def peak_rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status") as status:
        line = next(line for line in status if line.startswith("VmHWM:"))
    return int(line.split()[1]) / 1024


def wait_healthy(root: str, timeout_s: float = 180) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            if httpx.get(root + "/health", timeout=5).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(1)
    raise AssertionError("the endpoint did not become healthy again")


def ask(endpoint: str, max_tokens: int, stream: bool = False, **kw):
    body = {
        "model": MODEL,
        "messages": [{"role": "user", "content": "Describe this ECG at length."}],
        "max_tokens": max_tokens,
        "stream": stream,
    }
    return httpx.post(endpoint + "/chat/completions", json=body, timeout=180, **kw)


def test_backpressure_errors_become_429():
    from ray.serve.exceptions import BackPressureError

    err = failure_error(BackPressureError(num_queued_requests=3, max_queued_requests=3))
    assert err.status == 429 and err.err_type == "rate_limit_exceeded"


def test_a_flood_at_twice_saturation_is_shed_with_429_and_health_stays_up(endpoint, cfg):
    root = endpoint.removesuffix("/v1")
    saturation = admission_limit(cfg)  # requests one ingress holds: running + queued
    assert saturation == 2
    pid = replica_pid()
    health: list[tuple[int, float]] = []
    flooding = threading.Event()

    metrics: list[tuple[int, float]] = []

    def poll_health():  # /health and /metrics, in turn: neither waits behind generation
        while flooding.is_set():
            for route, polls in (("/health", health), ("/metrics", metrics)):
                started = time.monotonic()
                status = httpx.get(root + route, timeout=30).status_code
                polls.append((status, time.monotonic() - started))
            time.sleep(0.1)

    results: list[tuple[int, float, httpx.Headers, str]] = []

    def one(_):
        started = time.monotonic()
        resp = ask(endpoint, max_tokens=60)
        return resp.status_code, time.monotonic() - started, resp.headers, resp.text

    flooding.set()
    poller = threading.Thread(target=poll_health)
    poller.start()
    try:
        with concurrent.futures.ThreadPoolExecutor(2 * saturation) as pool:
            for _ in range(3):  # three waves of 2x saturation
                results += list(pool.map(one, range(2 * saturation)))
    finally:
        flooding.clear()
        poller.join()
    statuses = [r[0] for r in results]
    accepted = sorted(r[1] for r in results if r[0] == 200)
    shed = [r for r in results if r[0] == 429]
    print(
        f"\noverload: {len(results)} requests at 2x saturation ({2 * saturation} concurrent): "
        f"accepted={len(accepted)} 429={len(shed)} 5xx={sum(s >= 500 for s in statuses)} "
        f"p50={accepted[len(accepted) // 2]:.2f}s p99={accepted[-1]:.2f}s "
        f"peak replica RSS={peak_rss_mb(pid):.0f} MB; /health {len(health)} polls, "
        f"max {max(h[1] for h in health):.2f}s; /metrics {len(metrics)} polls, max {max(m[1] for m in metrics):.2f}s"
    )
    assert not [s for s in statuses if s >= 500], statuses
    assert set(statuses) <= {200, 429}, statuses
    assert shed and len(accepted) >= saturation, statuses
    for _, _, headers, text in shed:
        assert headers["retry-after"] == "2"
        assert json.loads(text)["error"]["type"] == "rate_limit_exceeded"
    assert health and all(status == 200 for status, _ in health), health
    assert metrics and all(status == 200 for status, _ in metrics), metrics
    assert ask(endpoint, max_tokens=2).status_code == 200  # nothing stuck after the flood


def test_killing_the_replica_mid_request_is_a_503(endpoint):
    root = endpoint.removesuffix("/v1")
    wait_healthy(root)
    pid = replica_pid()
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        pending = pool.submit(ask, endpoint, LONG)
        # Kill once the replica is generating: a fixed sleep lost the race on an idle box, where the
        # tiny model writes LONG tokens in about a second. (The replica admits one request at a time,
        # so it cannot be asked; its CPU time says it is busy.)
        wait_until_busy(pid)
        assert not pending.done(), pending.result().text
        os.kill(pid, signal.SIGKILL)
        resp = pending.result()
    assert resp.status_code == 503, resp.text
    error = resp.json()["error"]
    assert error["type"] == "server_error" and "unavailable" in error["message"]
    assert resp.headers.get("retry-after")
    wait_healthy(root)
    assert ask(endpoint, max_tokens=2).status_code == 200


def test_killing_the_replica_mid_stream_ends_with_an_error_event_and_done(endpoint):
    root = endpoint.removesuffix("/v1")
    wait_healthy(root)
    pid = replica_pid()
    body = {
        "model": MODEL,
        "messages": [{"role": "user", "content": "Describe this ECG at length."}],
        "max_tokens": LONG,
        "stream": True,
    }
    events: list[str] = []
    with httpx.stream("POST", endpoint + "/chat/completions", json=body, timeout=180) as resp:
        assert resp.status_code == 200
        for line in resp.iter_lines():
            if not line.startswith("data: "):
                continue
            events.append(line[6:])
            if len(events) == 3:  # role chunk + two content deltas: generation is under way
                os.kill(pid, signal.SIGKILL)
    assert events[-1] == "[DONE]", events[-3:]
    error = json.loads(events[-2])["error"]
    assert error["type"] == "server_error" and error["message"], error
    assert len(events) < LONG  # it did not run to the end
    wait_healthy(root)
