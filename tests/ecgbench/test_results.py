"""The results folder and the nothing-scored rule (pure: no Ray, no server)."""

from __future__ import annotations

import json
import math
import random

import pytest

from pulse.ecgbench.results import nothing_scored, score_both_modes, write_results
from pulse.ecgbench.subsets import get_subset


@pytest.mark.parametrize(
    ("subset", "result", "reason"),
    [
        ("cpsc-test", {"n": 0}, "no prediction matched a gold item"),
        ("cpsc-test", {"n": 3, "error_rows": 3, "auc": 50.0, "f1": 0.0}, "all 3 predictions are error rows"),
        ("cpsc-test", {"n": 3, "auc": None, "f1": math.nan, "hamming_loss": 10.0}, "auc/f1 null"),
        ("cpsc-test", {"n": 3, "auc": None, "f1": 0.0, "hamming_loss": 10.0}, None),
        ("csn-test-no-cot", {"n": 2, "error_rows": 1, "accuracy": 0.0}, None),
    ],
)
def test_nothing_scored(subset, result, reason):
    got = nothing_scored(result, get_subset(subset))
    assert got == reason if reason is None else reason in got


def test_per_item_answers_add_up_to_the_score_with_the_paper_fallback(tmp_path):
    gold = [
        {"id": f"g{i}", "question": "q", "answer": a} for i, a in enumerate(["A. x", "B. y", "C. z", "D. w"])
    ]
    preds = [{"question_id": f"g{i}", "text": t} for i, t in enumerate(["A", "?", "??", "D"])]
    rows, answers = score_both_modes(get_subset("csn-test-no-cot"), gold, preds, "paper", "m")
    rng = random.Random(42)
    draws = [rng.choice("ABCDEFGH") for _ in range(2)]
    assert [a["extracted"] for a in answers] == ["A", *draws, "D"]
    assert [a.get("random_fallback", False) for a in answers] == [False, True, True, False]
    assert rows[0]["accuracy"] == pytest.approx(sum(a["correct"] for a in answers) / 4 * 100)
    assert rows[1]["mode"] == "strict" and rows[1]["unparseable"] == 2

    paths = write_results(str(tmp_path), rows, "strict", answers, {"gold": "g"})
    assert sorted(paths) == ["answers", "results_csv", "results_json", "table"]
    assert json.loads((tmp_path / "results.json").read_text())["mode"] == "strict"
    assert "| m | 50.0 |" in (tmp_path / "results.md").read_text()  # strict: two unparsed are wrong
