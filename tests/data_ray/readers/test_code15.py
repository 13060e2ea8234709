"""CODE-15% reader on SYNTHETIC schema-exact files (no public sample exists; see conftest)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from pulse.data_ray.readers import code15, plan_source, read_source
from pulse.data_ray.readers.config import SourceConfig


@pytest.fixture(scope="module")
def rows(code15_root) -> dict[str, dict]:
    cfg = SourceConfig(kind="code15", root=str(code15_root), chunk_size=2)
    return {r["record_id"]: r for r in read_source(cfg)}


def test_rows_are_located_by_the_part_exam_id_not_csv_order(rows, code15_root):
    import h5py

    with h5py.File(code15_root / "exams_part0.hdf5", "r") as handle:
        row = list(handle["exam_id"][:]).index(101)
        expected = handle["tracings"][row].T[:, 48:4048]
    assert set(rows) == {"code15/101", "code15/102", "code15/103", "code15/105", "code15/999"}
    r = rows["code15/101"]
    assert r["error"] is None and r["fs"] == 400 and r["n_samples"] == 4000
    np.testing.assert_array_equal(r["signal"], expected)
    assert r["labels"] == ["AF"] and r["labels_std"] == ["AF"] and r["sex"] == "M" and r["age"] == 41


def test_padding_is_stripped_and_labels_mapped(rows):
    r = rows["code15/102"]
    assert r["n_samples"] == 2800 and json.loads(r["extra"])["padding_stripped"] == [648, 648]
    assert r["labels"] == ["1dAVb", "RBBB"] and r["labels_std"] == ["IAVB", "RBBB"] and r["sex"] == "F"
    assert rows["code15/103"]["labels"] == ["normal_ecg"] and rows["code15/103"]["labels_std"] == ["NSR"]


def test_split_follows_patient(rows):
    assert rows["code15/101"]["split"] == rows["code15/102"]["split"]  # both patient 7


def test_bad_rows(rows):
    assert rows["code15/105"]["error"].startswith("constant_signal: ")
    assert rows["code15/999"]["error"].startswith("bad_metadata: ")


def test_plan_chunks_and_limit(code15_root):
    units = plan_source(SourceConfig(kind="code15", root=str(code15_root), chunk_size=2, limit=3))
    assert [len(u["exams"]) for u in units] == [2, 1]
    assert [e["exam_id"] for u in units for e in u["exams"]] == [103, 101, 105]


def test_strip_padding_keeps_an_all_zero_signal():
    zeros = np.zeros((12, 10))
    assert code15.strip_padding(zeros)[0].shape == (12, 10)
