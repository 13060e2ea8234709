from __future__ import annotations

import pytest

from pulse.data_ray.instruct.config import JudgeConfig
from pulse.data_ray.instruct.judge import JudgePrompts, MalformedVerdict, generator_kind, parse_verdict
from pulse.data_ray.instruct.rows import conversation

GOOD = (
    '{"relevance": {"score": 5, "reason": "on topic"}, "clarity": {"score": 4, "reason": "clear"},'
    ' "answerability": {"score": 3, "reason": "visible on the ECG"}, "consistent": true}'
)


def judged_row(**overrides) -> dict:
    row = {
        "id": "ptbxl/6000#synth:0",
        "record_id": "ptbxl/6000",
        "split": "train",
        "shard": 0,
        "source": "ptbxl",
        "task": "rhythm",
        "qtype": "open",
        "generator": "synthesis-v1:transformers/tiny",
        "judge_score": None,
        "judge_reason": None,
        "error": None,
        "labels_std": ["NSR"],
        "superclasses": ["NORM"],
        "context": "sinus rhythm. normal ecg.",
        "request": "single|open-ended|rhythm",
        "conversations": conversation("What is the rhythm?", "Sinus rhythm."),
    }
    return {**row, **overrides}


def test_parse_good_verdicts():
    score, reason, consistent = parse_verdict(GOOD)
    assert score == pytest.approx(4.0) and consistent is True
    assert reason == "relevance: on topic; clarity: clear; answerability: visible on the ECG"
    fenced = "Here is my verdict:\n```json\n" + GOOD.replace('"score": 3', '"score": "2"') + "\n```"
    assert parse_verdict(fenced)[0] == pytest.approx(11 / 3)
    flat = '{"Relevance": 5, "Clarity": 5, "Answerability": 5}'
    assert parse_verdict(flat) == (5.0, "", None)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("What a fascinating topic!", "no JSON object"),
        ('{"relevance": 5, "clarity": 4', "no JSON object"),
        ('{"relevance": 5, clarity: 4}', "invalid JSON"),
        ('{"relevance": 5, "clarity": 4}', "missing 'answerability'"),
        ('{"relevance": 7, "clarity": 4, "answerability": 4}', "not a number in 0-5"),
        ('{"relevance": "high", "clarity": 4, "answerability": 4}', "not a number"),
        ('{"relevance": true, "clarity": 4, "answerability": 4}', "not a number in 0-5"),
        ("", "no JSON object"),
        (None, "no JSON object"),
    ],
)
def test_malformed_verdicts_raise_with_a_reason(text, message):
    with pytest.raises(MalformedVerdict, match=message):
        parse_verdict(text)


def test_postprocess_threshold_unfaithful_and_malformed():
    prompts = JudgePrompts(JudgeConfig(threshold=3.5))
    kept = prompts.postprocess({**judged_row(), "generated_text": GOOD, "llm_error": None})
    assert kept["error"] is None and kept["judge_score"] == pytest.approx(4.0)
    assert "messages" not in kept and "generated_text" not in kept
    low = prompts.postprocess(
        {**judged_row(), "generated_text": GOOD.replace('"score": 5', '"score": 1'), "llm_error": None}
    )
    assert low["error"] == "judge_below_threshold: 2.67 < 3.5" and low["judge_score"] == pytest.approx(8 / 3)
    unfaithful = prompts.postprocess(
        {**judged_row(), "generated_text": GOOD.replace("true", "false"), "llm_error": None}
    )
    assert unfaithful["error"].startswith("judge_unfaithful:")
    broken = prompts.postprocess({**judged_row(), "generated_text": "Score: 4", "llm_error": None})
    assert broken["error"].startswith("judge_malformed: no JSON object")
    failed = prompts.postprocess(
        {**judged_row(), "generated_text": None, "llm_error": "http_503: overloaded"}
    )
    assert failed["error"] == "judge_malformed: engine failed (http_503: overloaded)"


def test_preprocess_puts_report_labels_and_turns_in_the_prompt_and_samples_on_retry():
    first = JudgePrompts(JudgeConfig(), attempt=0).preprocess(judged_row())
    text = first["messages"][-1]["content"]
    assert (
        "sinus rhythm. normal ecg." in text
        and "Question: What is the rhythm?" in text
        and "<image>" not in text
    )
    assert "Labels: sinus rhythm" in text  # NSR rendered as a readable label
    assert first["sampling_params"]["temperature"] == 0.0
    retry = JudgePrompts(JudgeConfig(), attempt=1).preprocess(judged_row())
    assert retry["sampling_params"]["temperature"] >= 0.7 and retry["sampling_params"]["seed"] == 1


def test_generator_kind():
    assert generator_kind(judged_row()) == "synthesis"
    assert generator_kind(judged_row(request="multi_turn")) == "multi_turn"
    assert generator_kind(judged_row(request=None, generator="template:templates-v1")) == "templates"
    assert generator_kind(judged_row(request=None, generator="report:synthesis-v1")) == "report"
