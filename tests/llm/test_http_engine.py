"""The http engine against a real HTTP server on 127.0.0.1 that injects failures.

Checks the failure modes ray.data.llm's HttpRequestProcessorConfig has (design notes §1):
sequential requests per batch, per-actor qps, a crash on a text/plain 500, no
continue-on-error. Each of these tests fails on such a client.
"""

from __future__ import annotations

import asyncio
import itertools
import socket
import sys
import time

import pytest
from ray import cloudpickle

from pulse.llm import HttpChatClient, HttpEngineConfig, apply_llm, generate_local
from pulse.llm.http_engine import backoff_delay, parse_completion, server_message

# Ray workers cannot import test modules by name; ship this module's helpers by value.
cloudpickle.register_pickle_by_value(sys.modules[__name__])


def engine(server, **overrides) -> HttpEngineConfig:
    settings = dict(
        base_url=server.base_url,
        model="stub",
        max_retries=3,
        backoff_base_s=0.01,
        backoff_max_s=0.05,
        timeout_s=5.0,
    )
    settings.update(overrides)
    return HttpEngineConfig(**settings)


def ask(prompt: str, max_tokens: int = 8) -> dict:
    return {"messages": [{"role": "user", "content": prompt}], "sampling_params": {"max_tokens": max_tokens}}


def run(coro):
    return asyncio.run(coro)


async def chat_once(cfg: HttpEngineConfig, request: dict):
    client = HttpChatClient(cfg)
    try:
        return await client.chat(request)
    finally:
        await client.aclose()


@pytest.mark.parametrize("status", [429, 503, 500, 502])
def test_retryable_status_is_retried_until_success(stub_server, status):
    text, error, usage = run(chat_once(engine(stub_server), ask(f"flaky:{status}:2:k{status}")))
    assert error is None
    assert text == f"echo:k{status} after 3"
    assert stub_server.attempts[f"k{status}"] == 3
    assert usage == {"prompt_tokens": 7, "completion_tokens": 3}


def test_final_failures_are_errors_not_exceptions(stub_server):
    cfg = engine(stub_server, max_retries=2)
    _, err_400, _ = run(chat_once(cfg, ask("always:400")))
    _, err_500, _ = run(chat_once(cfg, ask("always:500")))
    _, err_bad, _ = run(chat_once(cfg, ask("malformed")))
    assert err_400 == "http_400: max_tokens is too large"
    assert stub_server.attempts["always:400"] == 1  # a client error is not retried
    assert err_500 == "http_500: Internal Server Error (after 2 retries)"  # text/plain body
    assert stub_server.attempts["always:500"] == 3
    assert err_bad.startswith("malformed_response: IndexError")
    assert stub_server.attempts["malformed"] == 3


def test_timeout_and_connection_refused(stub_server):
    _, err_timeout, _ = run(chat_once(engine(stub_server, timeout_s=0.2, max_retries=1), ask("sleep:1")))
    assert err_timeout.startswith("timeout: ReadTimeout after 0.2s (after 1 retry)")
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        dead_port = sock.getsockname()[1]
    dead = HttpEngineConfig(
        base_url=f"http://127.0.0.1:{dead_port}/v1", model="m", max_retries=1, backoff_base_s=0.01
    )
    _, err_refused, _ = run(chat_once(dead, ask("ok:x")))
    assert err_refused.startswith("connection_error: ConnectError")


def test_request_body_carries_model_sampling_and_extra_body(stub_server):
    stub_server.reset()
    cfg = engine(stub_server, extra_body={"response_format": {"type": "json_object"}})
    request = {
        "messages": [{"role": "user", "content": "ok:body"}],
        "sampling_params": {"max_tokens": 5, "temperature": 0.3, "stop": "\n", "seed": 7},
    }
    assert run(chat_once(cfg, request))[0] == "echo:body"
    body = stub_server.bodies[-1]
    assert body["model"] == "stub"
    assert (body["max_tokens"], body["temperature"], body["stop"], body["seed"]) == (5, 0.3, ["\n"], 7)
    assert "top_p" not in body
    assert body["response_format"] == {"type": "json_object"}


def test_requests_are_concurrent_and_bounded():
    from tests.llm.openai_stub import StubOpenAIServer

    server = StubOpenAIServer(latency_s=0.3).start()
    try:
        cfg = engine(server, max_concurrent_requests=6)
        started = time.monotonic()
        texts = generate_local(cfg, [[{"role": "user", "content": f"ok:{i}"}] for i in range(18)])
        elapsed = time.monotonic() - started
    finally:
        server.stop()
    assert texts == [f"echo:{i}" for i in range(18)]
    assert server.max_in_flight == 6
    assert elapsed < 18 * 0.3 / 2  # sequential would take 5.4 s; 6 at a time about 0.9 s


def test_local_rate_limit(stub_server):
    stub_server.reset()
    cfg = engine(stub_server, qps=20, burst=1)
    generate_local(cfg, [[{"role": "user", "content": f"ok:{i}"}] for i in range(11)])
    span = max(stub_server.arrivals) - min(stub_server.arrivals)
    assert span >= 10 / 20 * 0.7  # unlimited: all 11 arrive within a few ms


def test_dataset_rows_get_text_or_error(ray_session, stub_server):
    """Every row comes out once, in a mix of successes and error rows; nothing crashes."""
    import ray

    prompts = ["ok:a", "always:400", "always:500", "malformed", "flaky:503:1:ds", "ok:b", "raise", "empty"]

    def preprocess(row):
        if row["prompt"] == "raise":
            raise ValueError("no report for this record")
        if row["prompt"] == "empty":
            return {**row, "messages": None}
        return {**row, **ask(row["prompt"])}

    def postprocess(row):
        return {"prompt": row["prompt"], "text": row["generated_text"], "error": row["llm_error"]}

    ds = ray.data.from_items([{"prompt": p} for p in prompts])
    out = apply_llm(ds, engine(stub_server, max_retries=1, batch_size=4), preprocess, postprocess)
    rows = {r["prompt"]: r for r in out.take_all()}
    assert rows["ok:a"]["text"] == "echo:a" and rows["ok:a"]["error"] is None
    assert rows["flaky:503:1:ds"]["text"] == "echo:ds after 2"
    assert rows["always:400"]["error"] == "http_400: max_tokens is too large"
    assert rows["always:500"]["error"] == "http_500: Internal Server Error (after 1 retry)"
    assert rows["malformed"]["error"].startswith("malformed_response")
    assert rows["raise"]["error"].startswith("preprocess_error: ValueError('no report for this record')")
    assert rows["empty"]["error"] == "no_messages: preprocess returned no messages"
    assert all(rows[p]["text"] is None for p in ("always:400", "always:500", "malformed", "raise", "empty"))


def test_dataset_batch_is_concurrent_and_qps_is_global(ray_session):
    """Two actors, one shared qps: the server sees both the concurrency and the global rate."""
    import ray

    from tests.llm.openai_stub import StubOpenAIServer

    server = StubOpenAIServer(latency_s=0.2).start()
    try:
        ds = ray.data.from_items([{"i": i} for i in range(16)], override_num_blocks=2)
        cfg = engine(server, batch_size=8, max_concurrent_requests=8, concurrency=2)
        out = apply_llm(ds, cfg, lambda r: {**r, **ask(f"ok:{r['i']}")}, lambda r: r).take_all()
        assert sorted(r["generated_text"] for r in out) == sorted(f"echo:{i}" for i in range(16))
        assert server.max_in_flight >= 6  # rows of a batch are in flight together

        server.reset()
        ds = ray.data.from_items([{"i": i} for i in range(24)], override_num_blocks=4)
        limited = engine(server, batch_size=6, concurrency=2, qps=8, burst=1)
        apply_llm(ds, limited, lambda r: {**r, **ask(f"ok:{r['i']}")}, lambda r: r).take_all()
    finally:
        server.stop()
    arrivals = sorted(server.arrivals)
    assert len(arrivals) == 24
    # A per-actor qps (ray.data.llm's) would allow 16/s: 24 rows in ~1.4 s, ~16 in a 1 s window.
    # One shared bucket spaces them 1/8 s apart (23/8 = 2.9 s); slack is for first-connection latency.
    assert arrivals[-1] - arrivals[0] >= 2.0
    gaps = sorted(b - a for a, b in itertools.pairwise(arrivals))
    # One bucket spaces arrivals 1/8 s apart; per-actor limiting interleaves two 8/s streams (~1/16 s).
    # The median ignores the one clump an actor's first requests can make while its HTTP client starts.
    assert gaps[len(gaps) // 2] >= 0.1, gaps


def test_backoff_grows_exponentially_with_jitter_and_respects_retry_after():
    for attempt in range(5):
        step = min(10.0, 0.5 * 2**attempt)
        delays = [backoff_delay(attempt, 0.5, 10.0) for _ in range(50)]
        assert all(step / 2 <= d <= step for d in delays)
        assert len(set(delays)) > 1
    assert backoff_delay(0, 0.01, 10.0, retry_after=3.0) == 3.0
    assert backoff_delay(0, 0.01, 2.0, retry_after=30.0) == 2.0


def test_server_message_and_completion_parsing():
    assert server_message('{"error": {"message": "bad model"}}') == "bad model"
    assert server_message('{"detail": "Not Found"}') == "Not Found"
    assert server_message("upstream connect error") == "upstream connect error"
    assert server_message("") == "(empty body)"
    ok = parse_completion('{"choices": [{"message": {"content": "hi"}}], "usage": {"prompt_tokens": 3}}')
    assert (ok.text, ok.error, ok.prompt_tokens, ok.completion_tokens) == ("hi", None, 3, 0)
    assert parse_completion("<html>").error.startswith("malformed_response: JSONDecodeError")
    assert parse_completion('{"choices": [{"message": {"content": null}}]}').error.endswith("not a string")
