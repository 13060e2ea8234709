from __future__ import annotations

from pulse.data_ray.instruct.ecgqa import CLOSING, ecgqa_row, template_options
from pulse.data_ray.instruct.validate import validate_row


def qa(**overrides) -> dict:
    row = {
        "question_id": 1709,
        "sample_id": 121697,
        "template_id": 26,
        "question": "Does lead V5 show any static noise?",
        "answer": ["no"],
        "question_type": "single-verify",
        "attribute_type": "noise",
        "record_ids": ["ptbxl/7911"],
        "split": "train",
        "error": None,
    }
    return {**row, **overrides}


def ecgbench_candidates(prompt: str) -> list[str]:
    """The ECGBench scorer's candidate rule: text after the last 'Options:', closing sentence removed."""
    tail = prompt.split("Options:")[-1].replace(CLOSING, "")
    return [c.strip() for c in tail.split(",")]


def test_single_ecg_question_converts_with_scorer_compatible_options():
    row = ecgqa_row(qa(), num_shards=4)
    assert row["error"] is None and validate_row(row)["error"] is None
    assert row["record_id"] == "ptbxl/7911" and row["source"] == "ecgqa" and row["task"] == "feature"
    prompt, gold = row["conversations"][0]["value"], row["conversations"][1]["value"]
    assert ecgbench_candidates(prompt) == template_options()[26]
    predicted = [c for c in ecgbench_candidates(prompt) if c in gold.lower()]
    assert set(predicted) == {"no"}


def test_multi_answer_is_comma_joined():
    options = template_options()[3]
    row = ecgqa_row(
        qa(template_id=3, answer=["myocardial infarction", "st/t change"], attribute_type="scp_code"), 4
    )
    assert row["conversations"][1]["value"] == "myocardial infarction, st/t change"
    assert set(ecgbench_candidates(row["conversations"][0]["value"])) == set(options)


def test_unconvertible_samples_become_error_rows():
    comparison = ecgqa_row(
        qa(record_ids=["ptbxl/343", "ptbxl/6009"], question_type="comparison_irrelevant-query"), 4
    )
    assert comparison["error"].startswith("ecgqa_multi_ecg:")
    assert ecgqa_row(qa(answer=["maybe"]), 4)["error"].startswith("ecgqa_answer_not_in_options:")
    assert ecgqa_row(qa(template_id=99999), 4)["error"].startswith("ecgqa_no_options:")
    assert ecgqa_row(qa(error="missing_record: ptbxl/7911 not ingested"), 4)["error"].startswith(
        "upstream_error:"
    )
