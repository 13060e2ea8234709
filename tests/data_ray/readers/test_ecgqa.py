"""ECG-QA reader on the real bundled PTB-XL-version subset."""

from __future__ import annotations

from pulse.data_ray.readers import read_source
from pulse.data_ray.readers.config import SourceConfig
from pulse.data_ray.readers.ecgqa import mark_missing_records, qa_row, qa_to_table, split_of


def test_bundled_subset_rows_and_splits():
    rows = list(
        read_source(SourceConfig(kind="ecgqa", root="bundled:ecgqa", files=["qa_on_realdata_ptbxl_ids.json"]))
    )
    assert len(rows) == 48 and all(r["error"] is None for r in rows)
    first = rows[0]
    assert first["question_id"] == 2471 and first["ecg_ids"] == [343, 6009]
    assert first["record_ids"] == ["ptbxl/343", "ptbxl/6009"]
    assert first["answer"] == ["qrs duration", "p duration", "rr interval"]
    assert first["split"] == "test" and rows[-1]["split"] == "val"  # from source_file
    single = [r for r in rows if r["question_type"] == "single-verify"]
    assert len(single) == 14 and all(len(r["ecg_ids"]) == 1 for r in single)
    assert qa_to_table(rows).num_rows == 48


def test_native_chunk_layout_and_limit():
    rows = list(read_source(SourceConfig(kind="ecgqa", root="bundled:ecgqa", limit=5)))
    assert len(rows) == 5 and {r["split"] for r in rows} == {"test"}
    assert rows[0]["source_file"] == "ptbxl/template/test/80000.json"


def test_join_marks_questions_whose_ecgs_were_not_ingested():
    rows = [
        qa_row(
            {"question_id": 1, "question": "q?", "answer": ["yes"], "ecg_id": [6009, 343]}, "x/test/1.json"
        )
    ]
    marked = mark_missing_records(rows, {"ptbxl/6009"})
    assert marked[0]["error"] == "missing_record: ptbxl/343 not ingested"
    assert split_of("ptbxl/paraphrased/valid/60000.json") == "val"


def test_malformed_sample_is_an_error_row():
    row = qa_row({"question_id": 3, "question": "q?"}, "ptbxl/template/train/0.json")
    assert row["error"].startswith("bad_qa_row: ") and row["split"] == "train"
