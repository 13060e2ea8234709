"""A request past its deadline gets an HTTP 504 with an OpenAI error body (and the replica lives on);
Serve's and pulse's own Prometheus metrics are scraped from the node's metrics endpoint."""

from __future__ import annotations

import time

import httpx
import openai
import pytest
import ray

from tests.serve.serve_testlib import image_message, make_config, running

MODEL = "pulse-tiny"
REQUEST_TIMEOUT_S = 0.3


@pytest.fixture(scope="module")
def endpoint(ray_session, tiny_llava_dir):
    cfg = make_config(
        tiny_llava_dir,
        app_name="pulse-timeouts",
        limits={"request_timeout_s": REQUEST_TIMEOUT_S, "max_tokens_cap": 800},
    )
    with running(cfg) as url:
        yield url


def test_a_request_past_its_deadline_is_a_504_and_the_app_stays_up(endpoint, ecg_data_url):
    client = openai.OpenAI(base_url=endpoint, api_key="unused", max_retries=0, timeout=120)
    started = time.monotonic()
    with pytest.raises(openai.APIStatusError) as caught:
        # 800 tokens (the tiny model does not stop early on this prompt) take seconds: past the deadline.
        client.chat.completions.create(
            model=MODEL, messages=[image_message("Long answer", ecg_data_url)], max_tokens=800
        )
    elapsed = time.monotonic() - started
    assert caught.value.status_code == 504
    error = caught.value.body
    assert error["type"] == "timeout" and "timed out" in error["message"], error
    assert elapsed < 30, f"the deadline was not enforced ({elapsed:.1f}s)"
    assert [m.id for m in client.models.list().data] == [MODEL]
    assert httpx.get(endpoint.removesuffix("/v1") + "/health", timeout=30).status_code == 200


def scrape_metrics() -> str:
    """Every node's Prometheus text (this session's Ray has one node)."""
    texts = []
    for node in ray.nodes():
        if node["Alive"] and node.get("MetricsExportPort"):
            url = f"http://{node['NodeManagerAddress']}:{node['MetricsExportPort']}/metrics"
            texts.append(httpx.get(url, timeout=10).text)
    return "\n".join(texts)


def test_serve_and_pulse_metrics_are_exported(endpoint, ecg_data_url):
    client = openai.OpenAI(base_url=endpoint, api_key="unused", max_retries=0, timeout=120)
    client.chat.completions.create(model=MODEL, messages=[image_message("Hi", ecg_data_url)], max_tokens=2)
    wanted = ("ray_pulse_requests", "ray_pulse_request_latency_ms", "ray_serve_num_http_requests")
    deadline, text = time.monotonic() + 90, ""
    while time.monotonic() < deadline:  # metrics are pushed to the agent every few seconds
        text = scrape_metrics()
        if all(name in text for name in wanted):
            break
        time.sleep(2)
    missing = [name for name in wanted if name not in text]
    assert not missing, f"missing metrics {missing}"
    ok_requests = [
        line
        for line in text.splitlines()
        if line.startswith("ray_pulse_requests") and f'model="{MODEL}"' in line and 'status="200"' in line
    ]
    assert ok_requests and float(ok_requests[0].rsplit(" ", 1)[-1]) >= 1


def test_the_endpoints_own_metrics_route_counts_answers_by_status(endpoint, ecg_data_url):
    """``GET /metrics``: this ingress replica's Prometheus text, answered without waiting behind generation."""
    client = openai.OpenAI(base_url=endpoint, api_key="unused", max_retries=0, timeout=120)
    client.chat.completions.create(model=MODEL, messages=[image_message("Hi", ecg_data_url)], max_tokens=2)
    with pytest.raises(openai.BadRequestError):
        client.chat.completions.create(
            model=MODEL, messages=[image_message("Hi", ecg_data_url)], max_tokens=801
        )
    resp = httpx.get(endpoint.removesuffix("/v1") + "/metrics", timeout=30)
    assert resp.status_code == 200 and resp.headers["content-type"].startswith("text/plain; version=0.0.4")
    samples = dict(
        line.rsplit(" ", 1) for line in resp.text.splitlines() if line and not line.startswith("#")
    )
    by_status = {
        name.split('status="')[1].split('"')[0]: float(value)
        for name, value in samples.items()
        if name.startswith("pulse_requests_total{") and f'model="{MODEL}"' in name
    }
    assert by_status.get("200", 0) >= 1 and by_status.get("400", 0) >= 1, by_status
    completion = [
        float(v) for k, v in samples.items() if k.startswith("pulse_tokens_total{") and "completion" in k
    ]
    assert completion and completion[0] >= 2
    assert any(k.startswith("pulse_request_latency_seconds_bucket{") and 'le="+Inf"' in k for k in samples)
