"""Benchmark items from pulse's own records + images (no Ray: plain Parquet in, items out)."""

from __future__ import annotations

import json

from pulse.cli import main as pulse_main
from pulse.ecgbench.load import item_image_bytes, load_subset, subset_spec
from pulse.ecgbench.own_items import build_items
from pulse.ecgbench.score import score_items
from tests.ecgbench.conftest import MANY, own_record, write_own_inputs


def test_close_ended_for_small_label_spaces_and_mcq_for_large(tmp_path):
    records = [
        own_record("ptbxl/1", "ptbxl", "test", superclasses=["NORM"]),
        own_record("ptbxl/2", "ptbxl", "train", superclasses=["MI", "STTC"]),
        own_record("ptbxl/3", "ptbxl", "test", superclasses=[]),  # no labels: skipped
        own_record("ptbxl/4", "ptbxl", "test", superclasses=["CD"], error="bad_header: x"),  # error: skipped
        *[own_record(f"ningbo/{i}", "ningbo", "train", labels_std=[label]) for i, label in enumerate(MANY)],
        own_record("ningbo/t", "ningbo", "test", labels_std=["L03"]),
        own_record("ningbo/noimg", "ningbo", "test", labels_std=["L04"]),  # no image: skipped
    ]
    ids = {r["record_id"] for r in records} - {"ningbo/noimg"}
    items, subsets = build_items(*write_own_inputs(tmp_path, records, ids), split="test", seed=0)

    assert [item["id"] for item in items] == ["ningbo/t", "ptbxl/1"]
    ptb = next(i for i in items if i["id"] == "ptbxl/1")
    assert ptb["answer"] == "NORM" and "\nMI, NORM, STTC\n" in ptb["question"]  # label space from ok records
    assert subsets["own-ptbxl"].kind == "multilabel"
    mcq = next(i for i in items if i["id"] == "ningbo/t")
    assert subsets["own-ningbo"].kind == "mcq"
    options = [line for line in mcq["question"].splitlines() if line[:2] in {f"{c}." for c in "ABCDEFGH"}]
    assert len(options) == 8 and any(line.endswith(" L03") for line in options)
    letter = mcq["answer"][0]
    assert f"{letter}. L03" in mcq["question"] and mcq["answer"] == f"{letter}. L03"

    again, _ = build_items(str(tmp_path / "ingest"), str(tmp_path / "render"), split="test", seed=0)
    assert again[0]["question"] == mcq["question"]  # seeded

    right = score_items(subsets["own-ningbo"], [mcq], [{"question_id": "ningbo/t", "text": letter}])
    wrong_letter = "A" if letter != "A" else "B"
    wrong = score_items(subsets["own-ningbo"], [mcq], [{"question_id": "ningbo/t", "text": wrong_letter}])
    assert right["accuracy"] == 100.0 and wrong["accuracy"] == 0.0


def test_items_command_writes_images_that_the_loader_resolves(tmp_path, capsys):
    records = [
        own_record("ptbxl/1", "ptbxl", "test", superclasses=["NORM"]),
        own_record("ptbxl/2", "ptbxl", "train", superclasses=["MI", "STTC"]),
        own_record("ptbxl/3", "ptbxl", "test", superclasses=["MI"]),
    ]
    records_dir, images_dir = write_own_inputs(tmp_path, records, {"ptbxl/1", "ptbxl/3"})
    out = tmp_path / "bench"
    argv = ["ecgbench", "items", "--records", records_dir, "--images", images_dir]
    assert pulse_main([*argv, "--out", str(out)]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["items"] == 2 and printed["next"].startswith("pulse ecgbench run --subset own-ptbxl")

    assert (out / "images" / "own-ptbxl" / "ptbxl_1.png").read_bytes() == b"\x89PNG-ptbxl/1"
    rows = json.loads((out / "own-ptbxl.json").read_text())
    assert rows[0]["image"] == "images/own-ptbxl/ptbxl_1.png" and rows[0]["subset"] == "own-ptbxl"
    items = load_subset(str(out), "own-ptbxl")  # the manifest's size is enforced, like a published one
    built, _ = build_items(records_dir, images_dir)
    assert [i["id"] for i in items] == ["ptbxl/1", "ptbxl/3"]
    assert [i["question"] for i in items] == [i["question"] for i in built]
    assert [i["answer"] for i in items] == ["NORM", "MI"]
    assert [item_image_bytes(i) for i in items] == [b"\x89PNG-ptbxl/1", b"\x89PNG-ptbxl/3"]
    spec = subset_spec(str(out), "own-ptbxl")
    assert (spec.kind, spec.labels, spec.size) == ("multilabel", ("MI", "NORM", "STTC"), 2)
    preds = [{"question_id": "ptbxl/1", "text": "NORM"}, {"question_id": "ptbxl/3", "text": "MI"}]
    assert score_items(spec, items, preds, "strict")["f1"] == 100.0

    assert pulse_main([*argv, "--out", str(tmp_path / "items.jsonl")]) == 2
    assert "--out " + str(tmp_path / "items.jsonl") + ": give a folder" in capsys.readouterr().err
