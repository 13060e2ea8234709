from __future__ import annotations

from pulse.data_ray.instruct.dedupe import drop_near_duplicates, jaccard, shingles
from pulse.data_ray.instruct.rows import conversation


def row(key: str, question: str, answer: str, score: float | None = None) -> dict:
    return {
        "id": f"r#{key}",
        "conversations": conversation(question, answer),
        "judge_score": score,
        "error": None,
    }


def test_near_duplicates_within_a_record_are_dropped_keeping_the_better_row():
    rows = [
        row(
            "b", "What is the heart rhythm shown in this ECG image?", "The rhythm is sinus bradycardia.", 3.0
        ),
        row(
            "a", "What is the heart rhythm shown in this ECG image ?", "The rhythm is sinus bradycardia!", 4.5
        ),
        row("c", "Is the heart rate slow, normal or fast?", "slow", 4.0),
    ]
    out = {r["id"]: r for r in drop_near_duplicates(rows, threshold=0.85)}
    assert out["r#a"]["error"] is None and out["r#c"]["error"] is None
    assert out["r#b"]["error"] == "near_duplicate: of r#a"


def test_distinct_template_questions_survive_and_order_does_not_matter():
    rows = [
        row("yn:AF", "Does this ECG show atrial fibrillation? Answer yes or no.", "yes"),
        row("yn:SB", "Does this ECG show sinus bradycardia? Answer yes or no.", "no"),
    ]
    assert all(r["error"] is None for r in drop_near_duplicates(rows))
    twins = [row("x", "Describe the ST segment.", "Flat."), row("y", "Describe the ST segment.", "Flat.")]
    first = drop_near_duplicates(twins)
    second = drop_near_duplicates(list(reversed(twins)))
    assert {r["id"]: r["error"] for r in first} == {r["id"]: r["error"] for r in second}
    assert jaccard(shingles("a b c d"), shingles("a b c d")) == 1.0
