from __future__ import annotations

import pytest

from pulse.data_ray.instruct.faithfulness import check_row, contradiction
from pulse.data_ray.instruct.rows import conversation


@pytest.mark.parametrize(
    ("question", "answer", "labels", "expected"),
    [
        (
            "What is the rhythm?",
            "There is no atrial fibrillation; the rhythm is regular.",
            ["AF"],
            "denies AF",
        ),
        ("What is the rhythm?", "Normal sinus rhythm at 75 bpm.", ["AF"], "asserts NSR"),
        ("Rate?", "The ECG shows sinus tachycardia.", ["SB"], "asserts STach"),
        ("Axis?", "Right axis deviation is present.", ["LAD"], "asserts RAD"),
        ("Is there a right bundle branch block?", "No.", ["CRBBB"], "answers no about RBBB"),
        ("Does this ECG show atrial fibrillation?", "Yes, it does.", ["NSR"], "answers yes about AF"),
    ],
)
def test_contradictions_are_caught(question, answer, labels, expected):
    assert expected in (contradiction(question, answer, labels) or "")


@pytest.mark.parametrize(
    ("question", "answer", "labels"),
    [
        (
            "What is the rhythm?",
            "Atrial fibrillation with an irregularly irregular rhythm, not sinus rhythm.",
            ["AF"],
        ),
        ("Rate?", "Sinus bradycardia at about 50 bpm.", ["SB", "TAb"]),
        ("Does this ECG show atrial fibrillation?", "No.", ["NSR"]),
        ("Is there left axis deviation?", "Yes.", ["LAD", "NSR"]),
        ("Describe the ST segments.", "Mild ST depression in V5-V6.", ["STD"]),
    ],
)
def test_consistent_answers_pass(question, answer, labels):
    assert contradiction(question, answer, labels) is None


def test_check_row_marks_the_turn_and_skips_unlabelled_rows():
    conv = conversation(
        "What is the rhythm?", "Atrial fibrillation.", "Is it sinus?", "No, there is no sinus rhythm..."
    )
    row = {"id": "x", "conversations": conv, "labels_std": ["NSR"], "error": None}
    result = check_row(row)
    assert result["error"].startswith("unfaithful: turn 0")
    assert check_row({**row, "labels_std": []})["error"] is None
