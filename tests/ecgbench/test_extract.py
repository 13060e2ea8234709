"""Extraction rules in both modes, on hand-built answers (quirks of the published scorer included)."""

from __future__ import annotations

import pytest

from pulse.ecgbench import extract
from pulse.ecgbench.subsets import SUBSETS

CODE15 = SUBSETS["code15-test"].labels
PTB = SUBSETS["ptb-test"].labels
CPSC = SUBSETS["cpsc-test"].labels


def test_label_substring_quirk_vs_token_boundaries():
    assert extract.labels_in_text("ABNORMAL ECG", ["NORM"], "paper") == ["NORM"]
    assert extract.labels_in_text("ABNORMAL ECG", ["NORM"], "strict") == []
    assert extract.labels_in_text("NORMAL sinus rhythm", PTB, "paper") == ["NORM"]
    assert extract.labels_in_text("NORMAL sinus rhythm", PTB, "strict") == []
    # case-sensitive in both modes
    assert extract.labels_in_text("norm; mi", PTB, "paper") == []
    assert extract.labels_in_text("I-AVB;RBBB", CPSC, "strict") == ["I-AVB", "RBBB"]
    # label-space order, not text order
    assert extract.labels_in_text("HYP; NORM", PTB, "paper") == ["NORM", "HYP"]
    # "ST" is sinus tachycardia in CODE-15%; "ST-segment" is not it in strict mode
    assert extract.labels_in_text("ST-segment depression", CODE15, "paper") == ["ST"]
    assert extract.labels_in_text("ST-segment depression", CODE15, "strict") == []


def test_code15_gold_rule():
    assert extract.code15_gold_labels("NORM", CODE15, "paper") == ["NORM"]
    assert extract.code15_gold_labels("ABNORMAL", CODE15, "paper") == ["ABNORMAL"]
    assert extract.code15_gold_labels("RBBB, 1dAVb", CODE15, "paper") == ["1dAVb", "RBBB"]
    # only an exact value is a binary item
    assert extract.code15_gold_labels("NORM ", CODE15, "paper") == []
    assert extract.code15_gold_labels("NORM ", CODE15, "strict") == ["NORM"]


@pytest.mark.parametrize(
    ("text", "paper", "strict"),
    [
        ("NORM", ["NORM"], ["NORM"]),
        ("ABNORMAL", ["ABNORMAL"], ["ABNORMAL"]),
        ("The ECG looks NORM. Answer: ABNORMAL, RBBB", ["ABNORMAL", "RBBB"], ["ABNORMAL", "RBBB"]),
        ("ABNORMAL at first glance. Answer: NORM", ["NORM"], ["NORM"]),
        ("NORMAL sinus rhythm", ["NORM"], []),
        ("Abnormal ECG with 1dAVb", ["1dAVb"], ["1dAVb"]),
        ("NORM and ABNORMAL", ["ABNORMAL"], ["ABNORMAL"]),
        ("NORM; STable", ["NORM", "ST"], ["NORM"]),
    ],
)
def test_code15_prediction_rule(text, paper, strict):
    assert extract.code15_pred_labels(text, CODE15, "paper") == paper
    assert extract.code15_pred_labels(text, CODE15, "strict") == strict


QA_PROMPT = (
    "Question: Is there evidence of left ventricular hypertrophy?\n"
    "Options: no, not sure, yes\n"
    "Only answer based on the given Options without any explanation."
)


def test_ecgqa_candidates_and_substring_collision():
    paper = extract.ecgqa_candidates(QA_PROMPT, "paper")
    assert paper == ["no", "not sure", "yes"]
    assert extract.ecgqa_predicted("not sure", paper, "paper") == ["no", "not sure"]
    assert not extract.ecgqa_correct(
        extract.ecgqa_predicted("not sure", paper, "paper"), ["not sure"], "paper"
    )
    strict = extract.ecgqa_candidates(QA_PROMPT, "strict")
    assert extract.ecgqa_predicted("Not sure.", strict, "strict") == ["not sure"]
    assert extract.ecgqa_correct(["not sure"], ["not sure"], "strict")
    assert extract.ecgqa_predicted("None of them", strict, "strict") == []


def test_ecgqa_other_closing_sentence_stays_glued_in_paper_mode():
    prompt = "Question: Which leads?\nOptions: no, yes\nAnswer briefly."
    assert extract.ecgqa_candidates(prompt, "paper") == ["no", "yes\nAnswer briefly."]
    assert extract.ecgqa_candidates(prompt, "strict") == ["no", "yes"]


def test_ecgqa_uppercase_candidates_never_match_in_paper_mode():
    cands = ["lead I", "lead aVF"]
    assert extract.ecgqa_predicted("lead aVF", cands, "paper") == []
    assert extract.ecgqa_predicted("lead aVF", cands, "strict") == ["lead aVF"]
    # set equality, order-free
    assert extract.ecgqa_correct(["yes", "no"], ["no", "yes"], "paper")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("C", "C"),  # rule 1
        (" C", None),  # rule 1 is an exact comparison; no other rule fires
        ("I think B. is wrong and A. is right", "A"),  # rule 2 walks A..H, not text position
        ("E.g. the answer is C", "E"),  # rule 2 fires on "E."
        ("The correct option is D", "D"),  # rule 3
        ("The correct option is (D). Answer: D", None),  # rule 3 decides even when it yields None
        ("Answer: the options C and B", "B"),  # rule 4: alphabetically first after last Answer:
        ("Answer: H. Answer: none", "H"),  # rule 2 ("H.") fires before rule 4
        ("Answer: none", None),
        ("no idea", None),
    ],
)
def test_mcq_paper_rule_order(text, expected):
    assert extract.extract_choice(text, "paper") == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("(B)", "B"),
        (" C ", "C"),
        ("The answer is C.", "C"),
        ("E.g. the answer is C", "C"),
        ("Answer: (D) Sinus rhythm", "D"),
        ("A. Sinus rhythm with first-degree AV block", "A"),
        ("the answer is a sinus rhythm", None),
        ("Options A. and B. both fit", None),
        ("I cannot tell from this image", None),
        ("E", None),  # outside the 4 MMMU choices
    ],
)
def test_mcq_strict(text, expected):
    assert extract.extract_choice(text, "strict", ("A", "B", "C", "D")) == expected


def test_unknown_mode_is_an_error():
    with pytest.raises(ValueError, match="mode must be one of"):
        extract.check_mode("lenient")
