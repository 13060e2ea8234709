"""Property-based fuzzing of ``POST /v1/chat/completions`` over real HTTP against a tiny random model.

Bodies are drawn around the request schema: valid requests, every field replaced by any JSON
value, broken image URLs, unknown roles and extra keys, plus raw byte soup. Whatever arrives,
the answer is a 2xx or a 4xx with an OpenAI error body, never a 5xx, and the replica keeps
answering. ``PULSE_FUZZ_EXAMPLES`` sets the case count (default 120); the count that ran is
printed (``pytest -s``) and checked.
"""

from __future__ import annotations

import json
import os

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.serve.serve_testlib import data_url, make_config, png_bytes, running

MODEL = "pulse-tiny"
API_KEY = "sk-fuzz-0123456789"
EXAMPLES = int(os.environ.get("PULSE_FUZZ_EXAMPLES", "120"))
CASES = {"run": 0, "2xx": 0, "4xx": 0}


@pytest.fixture(scope="module")
def endpoint(ray_session, tiny_llava_dir, monkeypatch_module):
    monkeypatch_module.setenv("PULSE_FUZZ_KEY", API_KEY)
    cfg = make_config(
        tiny_llava_dir,
        app_name="pulse-fuzz",
        auth={"api_key_env": "PULSE_FUZZ_KEY"},
        limits={
            "max_body_bytes": 200_000,
            "max_image_bytes": 50_000,
            "max_image_pixels": 200 * 200,
            "max_images": 2,
            "max_tokens_cap": 4,
            "default_max_tokens": 2,
            "max_messages": 8,
            "request_timeout_s": 30,
        },
    )
    with running(cfg) as url:
        yield url


@pytest.fixture(scope="module")
def monkeypatch_module():
    with pytest.MonkeyPatch.context() as patch:
        yield patch


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)
IMAGE_URLS = st.sampled_from(
    [
        data_url(png_bytes()),
        data_url(png_bytes(seed=1), "image/jpeg"),
        "data:image/png;base64,@@@",
        "data:image/png;base64,",
        "data:text/plain;base64,aGk=",
        data_url(b"not an image"),
        "http://[::1",
        "http://exa mple.org/x.png",
        "https://127.0.0.1:99999/x",
        "file:///etc/passwd",
        "",
    ]
) | st.text(max_size=30)
PART = st.one_of(
    st.fixed_dictionaries({"type": st.just("text"), "text": st.text(max_size=40)}),
    st.fixed_dictionaries(
        {"type": st.just("image_url"), "image_url": st.fixed_dictionaries({"url": IMAGE_URLS})}
    ),
    st.fixed_dictionaries({"type": st.sampled_from(["image_url", "text", "audio"]), "image_url": JSON}),
    JSON,
)
MESSAGE = st.fixed_dictionaries(
    {
        "role": st.sampled_from(["user", "user", "assistant", "system", "tool", ""]) | JSON,
        "content": st.text(max_size=40) | st.lists(PART, max_size=3) | JSON,
    }
)
OPTIONAL = {
    "max_tokens": st.integers(-2, 6) | JSON,
    "max_completion_tokens": st.integers(0, 6) | JSON,
    "temperature": st.floats(-1, 3) | JSON,
    "top_p": st.floats(-0.5, 1.5) | JSON,
    "seed": st.integers() | JSON,
    "stop": st.text(max_size=3) | st.lists(st.text(max_size=3), max_size=6) | JSON,
    "stream": st.booleans() | JSON,
    "stream_options": st.fixed_dictionaries({"include_usage": st.booleans() | JSON}) | JSON,
    "n": st.integers(0, 3) | JSON,
    "user": JSON,
    "logprobs": JSON,
}
REQUEST = st.fixed_dictionaries(
    {
        "model": st.sampled_from([MODEL, MODEL, "gpt-4o", ""]) | JSON,
        "messages": st.lists(MESSAGE, max_size=4) | JSON,
    },
    optional=OPTIONAL,
)
# Valid requests, so the 2xx side (generation, streaming, usage) is fuzzed too.
SAFE_TEXT = st.text(max_size=30).filter(lambda t: "<image>" not in t)
VALID_USER = st.fixed_dictionaries(
    {
        "role": st.just("user"),
        "content": SAFE_TEXT
        | st.lists(
            st.one_of(
                st.fixed_dictionaries({"type": st.just("text"), "text": SAFE_TEXT}),
                st.just({"type": "image_url", "image_url": {"url": data_url(png_bytes())}}),
            ),
            min_size=1,
            max_size=3,
        ),
    }
)
VALID_TURN = st.tuples(
    VALID_USER, st.fixed_dictionaries({"role": st.just("assistant"), "content": SAFE_TEXT})
)
VALID = st.fixed_dictionaries(
    {
        "model": st.just(MODEL),
        "messages": st.tuples(st.lists(VALID_TURN, max_size=1), VALID_USER).map(
            lambda t: [m for turn in t[0] for m in turn] + [t[1]]
        ),
    },
    optional={
        "max_tokens": st.integers(1, 4),
        "temperature": st.floats(0, 2),
        "top_p": st.floats(0.01, 1),
        "seed": st.integers(-(2**63), 2**63 - 1),
        "stop": st.lists(st.text(min_size=1, max_size=3), max_size=4),
        "stream": st.booleans(),
        "stream_options": st.fixed_dictionaries({"include_usage": st.booleans()}),
        "user": st.text(max_size=10),
    },
)
# A valid request with one field (known or new) replaced by any JSON value.
MUTATED = st.tuples(VALID, st.sampled_from([*OPTIONAL, "model", "messages", "extra"]), JSON).map(
    lambda t: {**t[0], t[1]: t[2]}
)
BODY = st.one_of(
    VALID.map(lambda r: json.dumps(r).encode()),
    MUTATED.map(lambda r: json.dumps(r).encode()),
    REQUEST.map(lambda r: json.dumps(r).encode()),
    REQUEST.map(lambda r: json.dumps(r).encode()[: len(json.dumps(r)) // 2]),  # truncated
    JSON.map(lambda v: json.dumps(v).encode()),
    st.binary(max_size=200),
)


def check_answer(resp: httpx.Response) -> None:
    assert resp.status_code < 500, (resp.status_code, resp.text[:500])
    if resp.status_code >= 400:
        error = resp.json()["error"]
        assert set(error) == {"message", "type", "param", "code"} and error["message"], error
        return
    if resp.headers["content-type"].startswith("text/event-stream"):
        events = [line[6:] for line in resp.text.splitlines() if line.startswith("data: ")]
        assert events[-1] == "[DONE]", events[-3:]
        assert all("error" not in json.loads(e) for e in events[:-1]), events
    else:
        assert resp.json()["choices"][0]["message"]["role"] == "assistant"


def test_any_body_gets_a_2xx_or_an_openai_4xx_and_the_replica_keeps_answering(endpoint):
    url = endpoint + "/chat/completions"
    headers = {"Authorization": f"Bearer {API_KEY}", "Content-Type": "application/json"}

    with httpx.Client(timeout=120) as http:

        @settings(
            max_examples=EXAMPLES,
            deadline=None,
            derandomize=True,
            database=None,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
        )
        @given(BODY)
        def one_case(body: bytes) -> None:
            resp = http.post(url, content=body, headers=headers)
            CASES["run"] += 1
            CASES["2xx" if resp.status_code < 300 else "4xx"] += 1
            check_answer(resp)

        one_case()
        print(f"\nfuzz: {CASES['run']} cases, {CASES['2xx']} 2xx, {CASES['4xx']} 4xx, 0 5xx")
        assert CASES["run"] >= EXAMPLES
        assert CASES["2xx"] > 0 and CASES["4xx"] > 0, CASES  # both sides of the schema were reached
        ok = {"model": MODEL, "messages": [{"role": "user", "content": "Hi"}], "max_tokens": 2}
        assert http.post(url, json=ok, headers=headers).status_code == 200
        assert http.get(endpoint.removesuffix("/v1") + "/health").status_code == 200
