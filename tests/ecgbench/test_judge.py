"""LLM judges against a real local endpoint that answers with malformed and valid JSON."""

from __future__ import annotations

import json

import pytest

from pulse.ecgbench.judge import judge_items, judge_prompt, load_rubrics, parse_judgement
from pulse.ecgbench.load import load_subset
from pulse.ecgbench.runner import EndpointConfig
from tests.ecgbench.chat_server import ChatServer
from tests.ecgbench.conftest import FIXTURES, arena_rows, write_hf_subset

VALID_REPORT = json.dumps(
    {"Diagnosis": {"Score": 8, "Explanation": "."}, "Form": {"Score": 7}, "Rhythm": {"Score": 10}}
)


def test_parse_judgement_rules():
    assert parse_judgement(VALID_REPORT, [])[0] == {"Diagnosis": 8.0, "Form": 7.0, "Rhythm": 10.0}
    assert parse_judgement("{Diagnosis: {Score: 8}}", [])[1].startswith("invalid_judge_json: Expecting")
    assert (
        "missing aspects ['Completeness']"
        in parse_judgement('{"Accuracy": {"Score": 5}}', ["Accuracy", "Completeness"])[1]
    )
    assert "not a number in 0-10" in parse_judgement('{"Accuracy": {"Score": 11}}', ["Accuracy"])[1]


def test_report_judge_retries_then_records_malformed_json(tmp_path):
    gold = load_subset(str(FIXTURES / "ptb_test_report_sample.json"), "ptb-test-report", allow_partial=True)[
        :3
    ]
    preds = [{"id": g["id"], "text": f"report {i}"} for i, g in enumerate(gold)]
    calls: dict[str, int] = {}

    def answer(messages):
        prompt = messages[0]["content"]
        which = next(p["text"] for p in preds if f"\n {p['text']}\n" in prompt)
        calls[which] = calls.get(which, 0) + 1
        if which == "report 0":
            return "{Diagnosis: {Score: 8}"  # never valid
        if which == "report 1" and calls[which] == 1:
            return "Sure! Here is the JSON:"  # valid on the retry
        return VALID_REPORT

    judge = EndpointConfig(name="judge", base_url="http://x/v1", model="gpt-4o", api_key_env=None)
    with ChatServer(answer) as server:
        judge = judge.model_copy(update={"base_url": server.base_url})
        result = judge_items("ptb-test-report", gold, preds, judge, str(tmp_path / "judge"), max_attempts=3)
        assert server.requests[0]["temperature"] == 0.0
        assert server.requests[0]["response_format"] == {"type": "json_object"}
    assert calls == {"report 0": 3, "report 1": 2, "report 2": 1}
    assert result["n"] == 2 and result["judge_errors"] == 1
    assert result["report_score"] == pytest.approx(250 / 3)  # (8 + 7 + 10) / 3 * 10
    rows = [json.loads(x) for x in (tmp_path / "judge" / "judgements.jsonl").read_text().splitlines()]
    assert [r["id"] for r in rows] == [g["id"] for g in gold]  # full ids, all ending in "-0"
    assert rows[0]["error"].startswith("invalid_judge_json") and rows[0]["raw"] == "{Diagnosis: {Score: 8}"
    assert (tmp_path / "judge" / "errors" / "judgements.jsonl").exists()


def test_arena_prompt_judges_turns_one_and_two(tmp_path):
    write_hf_subset(str(tmp_path), "arena", arena_rows())
    gold = load_subset(str(tmp_path), "arena", allow_partial=True)[0]
    pred = {
        "id": gold["id"],
        "text": "a1",
        "predict_convs": [
            {"question": t["question"], "answer": f"a{i}"} for i, t in enumerate(gold["turns"], 1)
        ],
    }
    prompt = judge_prompt(load_rubrics().arena, gold, pred)
    assert "**Question:**\nIs the axis normal?\n\n**Ground Truth Answer:** Yes, the axis is normal." in prompt
    assert "**Model's Response:** a2" in prompt
    assert "Any ST changes?" not in prompt and "a3" not in prompt
