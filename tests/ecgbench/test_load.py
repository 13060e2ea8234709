"""Loading both ECGBench layouts (HF Parquet, converted JSON) from local paths and a real S3 server."""

from __future__ import annotations

import json

import pytest

from pulse import io
from pulse.ecgbench.load import SubsetMismatchError, SubsetSizeError, item_image_bytes, load_subset
from tests.ecgbench.conftest import FIXTURES, arena_rows, ecgqa_rows, fixture_rows, png_bytes, write_hf_subset


def test_hf_parquet_layout(tmp_path):
    write_hf_subset(str(tmp_path), "cpsc-test", fixture_rows("cpsc_test_sample.json"))
    items = load_subset(str(tmp_path), "cpsc-test", allow_partial=True)
    assert [i["id"] for i in items] == ["cpsc-A6504", "cpsc-A5802"]
    assert items[0]["answer"] == "NORM"
    assert items[0]["question"].startswith("You are provided with an ECG signal image.")
    assert item_image_bytes(items[0]).startswith(b"\x89PNG")


def test_published_size_is_enforced_with_a_clear_error(tmp_path):
    write_hf_subset(str(tmp_path), "cpsc-test", fixture_rows("cpsc_test_sample.json"))
    with pytest.raises(SubsetSizeError, match=r"cpsc-test: expected the published 2061 items, found 2"):
        load_subset(str(tmp_path), "cpsc-test")


def test_ecgqa_list_values_and_arena_turns(tmp_path):
    write_hf_subset(str(tmp_path), "ecgqa-test", ecgqa_rows())
    write_hf_subset(str(tmp_path), "arena", arena_rows())
    qa = load_subset(str(tmp_path), "ecgqa-test", allow_partial=True)
    assert qa[1]["answer"] == ["not sure"]
    assert qa[0]["question"].startswith("Question: Does this ECG")
    arena = load_subset(str(tmp_path), "arena", allow_partial=True)[0]
    assert [t["question"] for t in arena["turns"]] == [
        "What is the rhythm?",
        "Is the axis normal?",
        "Any ST changes?",
    ]
    assert arena["turns"][1]["answer"] == "Yes, the axis is normal."


def test_converted_json_layout_with_relative_images(tmp_path):
    rows = fixture_rows("code15_test_sample.json")
    (tmp_path / "code15-test.json").write_text(json.dumps(rows))
    io.write_bytes(str(tmp_path / rows[0]["image"]), png_bytes(10))
    items = load_subset(str(tmp_path), "code15-test", allow_partial=True)
    assert len(items) == 6
    assert items[4]["answer"] == "ABNORMAL"
    assert item_image_bytes(items[0]) == png_bytes(10)


def test_report_file_with_singular_conversation_key():
    items = load_subset(str(FIXTURES / "ptb_test_report_sample.json"), "ptb-test-report", allow_partial=True)
    assert items[0]["id"] == "ptb-report-07190_hr-0"
    assert items[0]["question"] == "Please write a clinical report based on this ECG image."
    assert items[1]["answer"].startswith("Sinus arrhythmia.")


def test_both_layouts_from_s3(s3_bucket):
    write_hf_subset(s3_bucket, "cpsc-test", fixture_rows("cpsc_test_sample.json"))
    rows = fixture_rows("code15_test_sample.json")
    io.write_text(f"{s3_bucket}/converted/code15-test.json", json.dumps(rows))
    io.write_bytes(f"{s3_bucket}/converted/{rows[0]['image']}", png_bytes(20))
    cpsc = load_subset(s3_bucket, "cpsc-test", allow_partial=True)
    assert cpsc[1]["id"] == "cpsc-A5802"
    code15 = load_subset(f"{s3_bucket}/converted", "code15-test", allow_partial=True)
    assert code15[0]["image_path"] == f"{s3_bucket}/converted/code15/1109348-0.png"
    assert item_image_bytes(code15[0]) == png_bytes(20)


def test_missing_subset_names_the_layouts(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"mmmu-ecg: no mmmu-ecg/test-00000-of-00001\.parquet"):
        load_subset(str(tmp_path), "mmmu-ecg")


def test_not_found_names_the_download_command(tmp_path):
    root = str(tmp_path / "data" / "ECGBench")
    with pytest.raises(FileNotFoundError) as info:
        load_subset(root, "ptb-test")
    message = str(info.value)
    assert "\n" not in message
    assert f"pulse ecgbench download --local-dir {root}" in message
    assert f"hf download PULSE-ECG/ECGBench --repo-type dataset --local-dir {root}" in message
    with pytest.raises(FileNotFoundError, match=r"own-ptbxl: .*`pulse ecgbench items --out "):
        load_subset(root, "own-ptbxl")


def test_items_of_another_subset_are_refused(tmp_path):
    rows = [{**row, "subset": "own-ptbxl"} for row in fixture_rows("cpsc_test_sample.json")]
    path = tmp_path / "cpsc-test.json"
    path.write_text(json.dumps(rows))
    with pytest.raises(SubsetMismatchError, match=r"2 of 2 items are of subset own-ptbxl, not cpsc-test"):
        load_subset(str(tmp_path), "cpsc-test", allow_partial=True)
    rows[1]["subset"] = "cpsc-test"  # rows that name the asked subset (or none) are fine
    path.write_text(json.dumps(rows[1:]))
    assert len(load_subset(str(path), "cpsc-test", allow_partial=True)) == 1
