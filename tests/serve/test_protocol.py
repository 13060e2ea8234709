"""Request validation: each protocol or limit violation is an APIError naming what was wrong."""

from __future__ import annotations

import pytest

from pulse.serve.config import LimitsConfig
from pulse.serve.protocol import (
    APIError,
    json_depth_ok,
    parse_chat_request,
    parse_json_body,
)

LIMITS = LimitsConfig(max_images=2, max_tokens_cap=64, default_max_tokens=16, max_messages=4)
IMG = {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}}


def parse(**changes):
    payload = {"model": "m", "messages": [{"role": "user", "content": [IMG, {"type": "text", "text": "Q?"}]}]}
    payload.update(changes)
    return parse_chat_request(payload, LIMITS, ["m"])


def test_valid_request_becomes_template_messages_and_image_list():
    req = parse(stop="###", temperature=0.5, seed=3, user="ignored-extra-field")
    assert req.messages == [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "Q?"}]}]
    assert req.image_urls == ["data:image/png;base64,AAAA"]
    assert (req.max_tokens, req.stop, req.temperature, req.seed) == (16, ["###"], 0.5, 3)
    assert req.request_id.startswith("chatcmpl-")


def test_the_request_id_is_serves_when_it_is_sane():
    from pulse.serve.protocol import new_request_id

    assert new_request_id("3f2a-b.c:d_e") == "chatcmpl-3f2a-b.c:d_e"
    for odd in (None, "", "x" * 129, "a b", "id\n"):
        made = new_request_id(odd)
        assert made.startswith("chatcmpl-") and len(made) == len("chatcmpl-") + 24


def test_max_completion_tokens_is_honoured():
    assert parse(max_completion_tokens=20).max_tokens == 20


@pytest.mark.parametrize(
    ("changes", "status", "fragment", "param"),
    [
        ({"model": "other"}, 404, "does not exist", "model"),
        ({"max_tokens": 65}, 400, "cap of 64", "max_tokens"),
        ({"max_tokens": 0}, 400, "max_tokens", "max_tokens"),
        ({"temperature": 3}, 400, "temperature", "temperature"),
        ({"messages": []}, 400, "messages", "messages"),
        ({"messages": [{"role": "user", "content": [IMG, IMG, IMG]}]}, 400, "Too many images", "messages"),
        ({"messages": [{"role": "user", "content": "hi"}] * 5}, 400, "Too many messages", "messages"),
        ({"messages": [{"role": "assistant", "content": "hi"}]}, 400, "last message", "messages"),
        (
            {"messages": [{"role": "assistant", "content": [IMG]}, {"role": "user", "content": "x"}]},
            400,
            "only accepted in user",
            "messages.0",
        ),
        ({"messages": [{"role": "user", "content": [{"type": "audio"}]}]}, 400, "messages.0.content", None),
        ({"stop": ["a", "b", "c", "d", "e"]}, 400, "stop", "stop"),
        ({"n": 2}, 400, "n", "n"),
    ],
)
def test_violations_raise_api_errors(changes, status, fragment, param):
    with pytest.raises(APIError) as info:
        parse(**changes)
    assert info.value.status == status
    assert fragment in info.value.message
    if param is not None:
        assert info.value.param == param


def test_non_object_body_is_rejected():
    with pytest.raises(APIError, match="JSON object"):
        parse_chat_request([1, 2], LIMITS, ["m"])


def test_error_body_is_openai_shaped():
    body = APIError(413, "too big", code="body_too_large").body()
    assert body == {
        "error": {
            "message": "too big",
            "type": "invalid_request_error",
            "param": None,
            "code": "body_too_large",
        }
    }


# --- pathological bodies and wrong-typed optional fields: always a 400, never a crash ------------


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        (b"[" * 100_000 + b"]" * 100_000, "nested too deeply"),
        (b'{"a": ' + b"[" * 40 + b"]" * 40 + b"}", "nested deeper than"),
        (b'{"model": "m", "seed": ' + b"9" * 5000 + b"}", "Malformed JSON"),
        (b'{"temperature": NaN}', "NaN is not valid JSON"),
        (b'{"temperature": -Infinity}', "Infinity is not valid JSON"),
        (b'{"model": "\xff\xfe"}', "Malformed JSON"),
    ],
)
def test_pathological_json_is_a_400_invalid_json(body, fragment):
    with pytest.raises(APIError) as info:
        parse_json_body(body)
    assert info.value.status == 400 and info.value.code == "invalid_json"
    assert fragment in info.value.message


def test_json_depth_check_is_iterative_and_exact():
    assert json_depth_ok([[[]]], limit=3) and not json_depth_ok([[[[]]]], limit=3)
    deep: list = []
    for _ in range(50_000):  # deeper than any recursion limit
        deep = [deep]
    assert not json_depth_ok(deep)


@pytest.mark.parametrize(
    ("changes", "param"),
    [
        ({"stream_options": "yes"}, "stream_options"),
        ({"stream_options": {"include_usage": [1]}}, "stream_options.include_usage"),
        ({"temperature": 1e308 * 10}, "temperature"),
        ({"temperature": float("nan")}, "temperature"),
        ({"top_p": 0}, "top_p"),
        ({"seed": 2**64}, "seed"),
        ({"seed": -(2**63) - 1}, "seed"),
        ({"max_tokens": 0}, "max_tokens"),
        ({"max_tokens": 10**30}, "max_tokens"),
        ({"stop": [1, 2]}, "stop.str"),
        ({"n": 2}, "n"),
        ({"messages": "hi"}, "messages"),
    ],
)
def test_wrong_typed_or_out_of_range_fields_are_a_400_naming_the_field(changes, param):
    with pytest.raises(APIError) as info:
        parse(**changes)
    assert info.value.status == 400
    assert (info.value.param or "").startswith(param), info.value.param


def test_stream_options_include_usage_is_parsed():
    assert parse(stream=True, stream_options={"include_usage": True}).include_usage
    assert not parse(stream=True, stream_options=None).include_usage


def test_the_reserved_image_token_in_text_is_refused():
    with pytest.raises(APIError, match="reserved token"):
        parse(messages=[{"role": "user", "content": "look: <image>"}])


def test_a_huge_unknown_model_name_is_not_echoed_back():
    with pytest.raises(APIError) as info:
        parse(model="x" * 100_000)
    assert info.value.status == 404 and len(info.value.message) < 300


def test_a_temperature_too_close_to_zero_to_sample_with_is_greedy():
    assert parse(temperature=1e-300).temperature == 0.0
    assert parse(temperature=0.5).temperature == 0.5
