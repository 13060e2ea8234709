"""CinC-2021 reader on real bundled CPSC 2018, G12EC, Chapman-Shaoxing and Ningbo records."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import scipy.io

from pulse.data_ray.readers import cinc2021, read_source
from pulse.data_ray.readers.config import BUNDLED_ROOT, SourceConfig
from pulse.schema import STANDARD_LEADS

RECORDS = BUNDLED_ROOT / "cinc2021" / "records"


@pytest.fixture(scope="module")
def rows() -> dict[str, dict]:
    return {r["record_id"]: r for r in read_source(SourceConfig(kind="cinc2021", root="bundled:cinc2021"))}


def test_member_datasets_by_record_name():
    assert cinc2021.member_dataset("A0689") == "cpsc2018"
    assert cinc2021.member_dataset("E07500") == "g12ec"
    assert cinc2021.member_dataset("JS01048") == "chapman"
    assert cinc2021.member_dataset("JS20000") == "ningbo"
    assert cinc2021.member_dataset("HR06000") == "ptbxl"
    assert cinc2021.member_dataset("S0001") is None


def test_reads_every_non_ptbxl_record_including_the_11_repaired_georgia_headers(rows):
    assert len(rows) == 100 and all(r["error"] is None for r in rows.values())
    assert not any(k.startswith("ptbxl/") for k in rows)
    repaired = [k for k, r in rows.items() if "header_fixes" in json.loads(r["extra"])]
    assert len(repaired) == 11 and all(k.startswith("g12ec/") for k in repaired)
    e = rows["g12ec/E09657"]
    assert e["labels_std"] == ["AF", "LIs", "TAb", "LVH"] and e["sex"] == "F" and e["age"] == 66


def test_chapman_record_labels_lead_order_and_millivolts(rows):
    r = rows["chapman/JS01048"]
    assert r["dataset"] == "chapman" and r["labels"] == ["426177001"] and r["labels_std"] == ["SB"]
    assert r["age"] == 56 and r["sex"] == "F" and r["split"] in {"train", "val", "test"}
    assert r["lead_names"] == list(STANDARD_LEADS) and r["fs"] == 500
    val = scipy.io.loadmat(RECORDS / "JS01048.mat")["val"]
    np.testing.assert_allclose(r["signal"], val / 1000.0, atol=1e-6)  # header gain 1000/mV
    assert 0.2 < np.ptp(r["signal"][1]) < 5  # lead II spans a physiological range in mV


def test_cpsc_multilabel_and_variable_length(rows):
    r = rows["cpsc2018/A1041"]
    assert r["labels_std"] == ["AF", "LBBB"] and r["n_samples"] == 8500


def test_dataset_filter_and_opt_in_ptbxl():
    ningbo = list(
        read_source(SourceConfig(kind="cinc2021", root="bundled:cinc2021", datasets=["ningbo"], limit=3))
    )
    assert [r["dataset"] for r in ningbo] == ["ningbo"] * 3
    hr = list(
        read_source(SourceConfig(kind="cinc2021", root="bundled:cinc2021", datasets=["ptbxl"], limit=1))
    )
    assert (
        hr[0]["record_id"] == "ptbxl/3961" and hr[0]["labels_std"] == ["NSR"] and hr[0]["superclasses"] == []
    )


def test_corrupt_records_become_error_rows(tmp_path):
    for name in ("JS01048", "JS01560", "A0689"):
        for ext in ("hea", "mat"):
            shutil.copy(RECORDS / f"{name}.{ext}", tmp_path / f"{name}.{ext}")
    (tmp_path / "JS01560.mat").unlink()
    data = (tmp_path / "A0689.mat").read_bytes()
    (tmp_path / "A0689.mat").write_bytes(data[:1000])
    rows = {r["record_id"]: r for r in read_source(SourceConfig(kind="cinc2021", root=str(tmp_path)))}
    assert rows["chapman/JS01048"]["error"] is None
    assert rows["chapman/JS01560"]["error"].startswith("missing_file: ")
    assert rows["cpsc2018/A0689"]["error"].startswith("truncated_signal: ")
    assert rows["cpsc2018/A0689"]["signal"].size == 0
