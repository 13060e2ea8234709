from __future__ import annotations

import pytest

from pulse.data_ray.instruct.faithfulness import check_row
from pulse.data_ray.instruct.templates import LETTERS, TemplateBook, class_set_answer, template_rows
from pulse.data_ray.instruct.validate import parse_options, validate_row

BOOK_PATH = "build/prompts/templates-v1.yaml"


@pytest.fixture(scope="module")
def book() -> TemplateBook:
    return TemplateBook(BOOK_PATH)


def record(record_id: str, dataset: str, labels: list[str], supers: list[str] | None = None) -> dict:
    return {
        "record_id": record_id,
        "dataset": dataset,
        "split": "train",
        "shard": 0,
        "labels_std": labels,
        "superclasses": supers or [],
    }


def by_key(rows: list[dict]) -> dict[str, dict]:
    return {row["id"].split("#", 1)[1]: row for row in rows}


def answer(row: dict) -> str:
    return row["conversations"][1]["value"]


def test_cpsc_record_gets_ecgbench_style_questions(book):
    rows = by_key(template_rows(record("cpsc2018/A1041", "cpsc2018", ["AF", "LBBB"]), book))
    assert answer(rows["yn:AF"]) == "yes" and answer(rows["yn:LBBB"]) == "yes"
    negatives = [k for k, r in rows.items() if k.startswith("yn:") and answer(r) == "no"]
    assert len(negatives) == 2
    assert not {"yn:CLBBB", "yn:AF", "yn:LBBB"} & set(negatives)  # equivalents of present labels are blocked
    cpsc = rows["classes:cpsc9"]
    question = cpsc["conversations"][0]["value"]
    assert question.startswith("<image>\nYou are provided with an ECG signal image.")
    assert "I-AVB(First-degree atrioventricular block)" in question
    assert answer(cpsc) == "AF; LBBB"
    assert answer(rows["normal"]) == "ABNORMAL"


def test_mcq_has_eight_options_and_a_letter_naming_a_present_label(book):
    rec = record("g12ec/E01137", "g12ec", ["SB", "TAb"])
    mcq = by_key(template_rows(rec, book))["mcq"]
    options = parse_options(mcq["conversations"][0]["value"])
    assert sorted(options) == list(LETTERS)
    letter = answer(mcq)
    assert letter in LETTERS and len(letter) == 1
    assert options[letter].lower() in {"sinus bradycardia", "t-wave abnormality"}
    others = {v.lower() for k, v in options.items() if k != letter}
    assert not others & {"sinus bradycardia", "t-wave abnormality", "bradycardia"}


def test_rows_are_seeded_per_record(book):
    rec = record("chapman/JS01048", "chapman", ["SB"])
    assert template_rows(rec, book, seed=1) == template_rows(rec, book, seed=1)
    assert template_rows(rec, book, seed=1) != template_rows(rec, book, seed=2)


def test_rhythm_rate_and_fill_questions_from_labels(book):
    rows = by_key(template_rows(record("chapman/JS01048", "chapman", ["SB"]), book))
    assert answer(rows["rate"]) == "slow"
    assert answer(rows["rhythm:fill"]) == "sinus bradycardia"
    assert rows["rhythm:fill"]["qtype"] == "fill" and rows["rhythm:open"]["task"] == "rhythm"
    rows = by_key(template_rows(record("g12ec/E1", "g12ec", ["SB", "STach"]), book))
    assert "rate" not in rows  # conflicting rate labels: no rate question


def test_ptbxl_superclasses_and_code15_conduction(book):
    rows = by_key(template_rows(record("ptbxl/1", "ptbxl", ["NSR", "QAb"], ["MI", "STTC"]), book))
    assert answer(rows["classes:ptbxl_super"]) == "MI; STTC"
    spec = book.spec["class_sets"]["code15_conduction"]
    assert class_set_answer({"labels_std": ["IAVB", "STach"]}, spec) == "1dAVb; ST"
    assert class_set_answer({"labels_std": ["NSR"]}, spec) == "NORM"


def test_every_template_row_is_valid_and_faithful(book):
    for labels in (["AF", "LBBB"], ["SB"], ["NSR"], ["STach", "LAD", "PAC"], ["RBBB", "TAb"]):
        for dataset in ("cpsc2018", "g12ec", "chapman", "code15", "ptbxl"):
            for row in template_rows(record(f"{dataset}/x", dataset, labels, ["NORM"]), book):
                assert validate_row(row)["error"] is None, row
                assert check_row(row)["error"] is None, row


def test_unlabelled_record_gets_no_rows(book):
    assert template_rows(record("g12ec/E2", "g12ec", []), book) == []
