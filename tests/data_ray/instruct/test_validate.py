from __future__ import annotations

import pytest

from pulse.data_ray.instruct.rows import conversation
from pulse.data_ray.instruct.validate import answer_letter, parse_options, validate_row

MCQ = "Which finding?\nA. Atrial fibrillation\nB. Sinus rhythm\nC. Left bundle branch block"


def row(qtype: str, conversations: list[dict]) -> dict:
    return {"id": "r#1", "qtype": qtype, "conversations": conversations, "error": None}


def reason(result: dict) -> str | None:
    return result["error"].split(":")[0] if result["error"] else None


@pytest.mark.parametrize(
    "answer",
    [
        "B",
        "(B)",
        "B.",
        "The rhythm is regular with P waves.\nTherefore, we choose B. Sinus rhythm",
        "Answer: B",
        "It is sinus rhythm.",
    ],
)
def test_mcq_answers_that_name_an_option_pass(answer):
    assert validate_row(row("mcq", conversation(MCQ, answer)))["error"] is None


@pytest.mark.parametrize("answer", ["F", "None of these", "It could be anything."])
def test_mcq_answer_outside_the_options_fails(answer):
    assert reason(validate_row(row("mcq", conversation(MCQ, answer)))) == "invalid_mcq"


def test_mcq_needs_lettered_options():
    assert reason(validate_row(row("mcq", conversation("Which finding? AF or SR?", "A")))) == "invalid_mcq"
    assert parse_options(MCQ) == {
        "A": "Atrial fibrillation",
        "B": "Sinus rhythm",
        "C": "Left bundle branch block",
    }
    assert answer_letter("Left bundle branch block", parse_options(MCQ)) == "C"


def test_fill_needs_exactly_one_blank():
    assert validate_row(row("fill", conversation("The rhythm is ____.", "AF")))["error"] is None
    assert (
        reason(validate_row(row("fill", conversation("The rhythm is ____ at ____ bpm.", "AF"))))
        == "invalid_fill"
    )
    assert reason(validate_row(row("fill", conversation("What is the rhythm?", "AF")))) == "invalid_fill"


def test_roles_image_token_and_multi_turn():
    good = conversation("Q1", "A1", "Q2", "A2")
    assert validate_row(row("multi-turn", good))["error"] is None
    assert reason(validate_row(row("multi-turn", conversation("Q1", "A1")))) == "invalid_multi_turn"
    swapped = [good[0], {"from": "human", "value": "again"}, *good[2:]]
    assert reason(validate_row(row("multi-turn", swapped))) == "invalid_roles"
    no_token = [{"from": "human", "value": "Q"}, {"from": "gpt", "value": "A"}]
    assert reason(validate_row(row("open", no_token))) == "invalid_image_token"
    twice = conversation("Q", "A", "<image>\nQ2", "A2")
    assert reason(validate_row(row("multi-turn", twice))) == "invalid_image_token"
    assert reason(validate_row(row("open", conversation("Q", "   ")))) == "empty_turn"
    assert reason(validate_row(row("open", conversation("Q", "A", "Q2")))) == "invalid_roles"


def test_rows_already_in_error_keep_their_first_error():
    bad = {**row("fill", conversation("no blank", "x")), "error": "llm_timeout: 120 s"}
    assert validate_row(bad)["error"] == "llm_timeout: 120 s"
