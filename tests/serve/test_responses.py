"""The answer bodies: an OpenAI completion, stream chunks and the model list."""

from __future__ import annotations

from pulse.serve.config import LimitsConfig
from pulse.serve.protocol import parse_chat_request
from pulse.serve.responses import chunk_body, completion_body, models_body


def _request():
    body = {"model": "pulse-7b", "messages": [{"role": "user", "content": "hi"}]}
    return parse_chat_request(body, LimitsConfig(), ["pulse-7b"])


def test_completion_chunk_and_model_list_bodies():
    req = _request()
    full = completion_body(req, "sinus rhythm", "stop", 10, 3)
    assert full["choices"][0]["message"] == {"role": "assistant", "content": "sinus rhythm"}
    assert full["usage"] == {"prompt_tokens": 10, "completion_tokens": 3, "total_tokens": 13}
    assert full["id"] == req.request_id and full["model"] == "pulse-7b"
    chunk = chunk_body(req, {"content": "si"})
    assert chunk["object"] == "chat.completion.chunk" and chunk["choices"][0]["delta"] == {"content": "si"}
    assert "usage" not in chunk and chunk_body(req, {}, "stop", {"total_tokens": 1})["usage"] == {
        "total_tokens": 1
    }
    listed = models_body(["a", "b"], created=7)
    assert [m["id"] for m in listed["data"]] == ["a", "b"] and listed["data"][0]["created"] == 7
