"""The runner against a real local OpenAI-compatible server, through Ray Data and pulse.llm."""

from __future__ import annotations

import json

import pytest

from pulse.ecgbench.load import load_subset
from pulse.ecgbench.runner import EndpointConfig, MissingImageError, data_url, run_items
from pulse.ecgbench.score import read_predictions, score_items
from pulse.errors import REASONS, error_reason
from tests.ecgbench.chat_server import ChatServer, question_of
from tests.ecgbench.conftest import arena_rows, mcq_rows, write_hf_subset


def _endpoint(server: ChatServer, **kw) -> EndpointConfig:
    return EndpointConfig(name="local", base_url=server.base_url, model="m", api_key_env=None, **kw)


def _lines(path) -> list[dict]:
    return [json.loads(x) for x in open(path).read().splitlines()]


@pytest.fixture
def mcq_items(tmp_path):
    rows = mcq_rows("csn", ["A. x", "B. y", "C. z", "D. w"])
    for i, row in enumerate(rows):  # distinguishable questions
        row["conversations"][0]["value"] += f"\n(item {i})"
    write_hf_subset(str(tmp_path / "bench"), "csn-test-no-cot", rows)
    return load_subset(str(tmp_path / "bench"), "csn-test-no-cot", allow_partial=True)


def test_single_turn_layout_image_and_resume_after_interruption(ray_session, tmp_path, mcq_items):
    fail = {"on": True}

    def answer(messages):
        q = question_of(messages)
        if "(item 3)" in q and fail["on"]:
            return (503, "overloaded")
        return "ABCD"[int(q.rsplit("(item ", 1)[1][0])]

    out = tmp_path / "runs" / "csn.jsonl"
    # an interrupted earlier run left answers for items 0 and 1
    out.parent.mkdir()
    out.write_text(
        "".join(
            json.dumps({"question_id": f"csn-{i}", "text": "ABCD"[i], "metadata": {}}) + "\n"
            for i in range(2)
        )
    )
    with ChatServer(answer) as server:
        run_items(mcq_items, _endpoint(server, max_retries=1, backoff_base_s=0.0), str(out), progress=False)
        assert len(server.requests) == 3  # item 2 once, item 3 twice (one retry)
        first = server.requests[0]
        assert first["temperature"] == 0.0 and first["max_tokens"] == 1024
        parts = first["messages"][0]["content"]
        assert parts[0]["image_url"]["url"] == data_url(mcq_items[2]["image"])
        assert parts[0]["image_url"]["url"].startswith("data:image/png;base64,")
        rows = _lines(out)
        assert [r["question_id"] for r in rows] == ["csn-0", "csn-1", "csn-2", "csn-3"]
        assert (
            rows[2]["text"] == "C"
            and rows[2]["model_id"] == "local"
            and rows[2]["prompt"].startswith("Which")
        )
        assert rows[3]["metadata"]["error"].startswith("http_503: overloaded")
        assert _lines(tmp_path / "runs" / "errors" / "csn.jsonl")[0]["question_id"] == "csn-3"

        fail["on"] = False
        run_items(mcq_items, _endpoint(server), str(out), progress=False)
        assert len(server.requests) == 4  # only the failed item was asked again
    assert not (tmp_path / "runs" / "errors" / "csn.jsonl").exists()
    result = score_items("csn-test-no-cot", mcq_items, read_predictions(str(out)), "strict")
    assert result["accuracy"] == pytest.approx(100.0) and result["error_rows"] == 0


def test_arena_multi_turn_carries_own_answers_and_image_once(ray_session, tmp_path):
    write_hf_subset(str(tmp_path / "bench"), "arena", arena_rows())
    items = load_subset(str(tmp_path / "bench"), "arena", allow_partial=True)

    def answer(messages):
        return f"my answer {sum(m['role'] == 'user' for m in messages)}"

    out = tmp_path / "arena.jsonl"
    with ChatServer(answer) as server:
        run_items(items, _endpoint(server), str(out), progress=False)
        third = server.requests[2]["messages"]
    assert [m["role"] for m in third] == ["user", "assistant", "user", "assistant", "user"]
    assert third[1]["content"] == "my answer 1" and third[3]["content"] == "my answer 2"
    images = [
        p for m in third if isinstance(m["content"], list) for p in m["content"] if p["type"] == "image_url"
    ]
    assert len(images) == 1 and third[0]["content"][0]["type"] == "image_url"
    row = _lines(out)[0]
    assert [c["answer"] for c in row["predict_convs"]] == ["my answer 1", "my answer 2", "my answer 3"]
    assert row["golden_convs"][1]["answer"] == "Yes, the axis is normal."


def test_image_problems_refuse_or_become_error_rows_with_shared_reasons(tmp_path):
    turns = [{"question": "q", "answer": "NORM"}]
    item = {
        "id": "x",
        "subset": "cpsc-test",
        "image": None,
        "question": "q",
        "answer": "NORM",
        "turns": turns,
    }
    endpoint = EndpointConfig(name="local", base_url="http://127.0.0.1:9/v1", model="m", api_key_env=None)
    out = tmp_path / "x.jsonl"
    with pytest.raises(MissingImageError, match=r"cpsc-test: 1 of 1 items have no image \(first: \['x'\]\)"):
        run_items([{**item, "image_path": None}], endpoint, str(out), progress=False)
    assert not out.exists()

    # an image path that is gone: this item's error row (nothing is sent, so no endpoint is needed)
    run_items([{**item, "image_path": str(tmp_path / "gone.png")}], endpoint, str(out), progress=False)
    error = _lines(out)[0]["metadata"]["error"]
    assert error.startswith("missing_image: FileNotFoundError") and error_reason(error) in REASONS
    assert _lines(tmp_path / "errors" / "x.jsonl")[0]["question_id"] == "x"
