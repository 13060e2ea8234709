"""Benchmark items from pulse's own records + images (no Ray: plain Parquet in, items out)."""

from __future__ import annotations

import pyarrow as pa

from pulse import io
from pulse.ecgbench.own_items import build_items
from pulse.ecgbench.score import score_items
from pulse.schema import IMAGE_SCHEMA, RECORD_SCHEMA

MANY = [f"L{i:02d}" for i in range(12)]  # > 9 labels: MCQ


def _record(record_id: str, dataset: str, split: str, labels_std=(), superclasses=(), error=None) -> dict:
    row = {name: None for name in RECORD_SCHEMA.names}
    row.update(
        record_id=record_id,
        dataset=dataset,
        split=split,
        lead_names=[],
        signal=[],
        labels=list(labels_std),
        labels_std=list(labels_std),
        superclasses=list(superclasses),
        error=error,
    )
    return row


def _write(tmp_path, records: list[dict], with_image: set[str]) -> tuple[str, str]:
    records_dir, images_dir = str(tmp_path / "ingest"), str(tmp_path / "render")
    io.write_parquet(
        pa.Table.from_pylist(records, schema=RECORD_SCHEMA), io.join(records_dir, "records", "a.parquet")
    )
    images = [
        {"record_id": r, "image": b"\x89PNG-" + r.encode(), "image_format": "png", "leads": [], "error": None}
        for r in sorted(with_image)
    ]
    io.write_parquet(
        pa.Table.from_pylist(images, schema=IMAGE_SCHEMA), io.join(images_dir, "images", "a.parquet")
    )
    return records_dir, images_dir


def test_close_ended_for_small_label_spaces_and_mcq_for_large(tmp_path):
    records = [
        _record("ptbxl/1", "ptbxl", "test", superclasses=["NORM"]),
        _record("ptbxl/2", "ptbxl", "train", superclasses=["MI", "STTC"]),
        _record("ptbxl/3", "ptbxl", "test", superclasses=[]),  # no labels: skipped
        _record("ptbxl/4", "ptbxl", "test", superclasses=["CD"], error="bad_header: x"),  # error: skipped
        *[_record(f"ningbo/{i}", "ningbo", "train", labels_std=[label]) for i, label in enumerate(MANY)],
        _record("ningbo/t", "ningbo", "test", labels_std=["L03"]),
        _record("ningbo/noimg", "ningbo", "test", labels_std=["L04"]),  # no image: skipped
    ]
    ids = {r["record_id"] for r in records} - {"ningbo/noimg"}
    items, subsets = build_items(*_write(tmp_path, records, ids), split="test", seed=0)

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
