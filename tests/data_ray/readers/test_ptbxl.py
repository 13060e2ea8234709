"""PTB-XL reader on the real bundled records (native records500 converted from CinC HR files)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import scipy.io

from pulse.data_ray.readers import read_source
from pulse.data_ray.readers.config import BUNDLED_ROOT, SourceConfig
from pulse.data_ray.readers.ptbxl import detect_report_lang
from pulse.schema import STANDARD_LEADS


@pytest.fixture(scope="module")
def rows() -> dict[str, dict]:
    cfg = SourceConfig(
        kind="ptbxl", root="bundled:ptbxl", database_csv="ptbxl_database_subset.csv", rate_fallback=True
    )
    return {row["record_id"]: row for row in read_source(cfg)}


def test_reads_all_18_rows_with_official_splits(rows):
    assert len(rows) == 18 and all(r["error"] is None for r in rows.values())
    assert rows["ptbxl/6000"]["split"] == "test"  # strat_fold 10
    assert rows["ptbxl/9739"]["split"] == "train"  # strat_fold 6
    assert json.loads(rows["ptbxl/6000"]["extra"])["strat_fold"] == 10


def test_known_record_labels_superclasses_and_german_report(rows):
    r = rows["ptbxl/6001"]
    assert r["labels"] == ["NST_", "SR"]
    assert r["labels_std"] == ["STC", "NSR"]
    assert r["superclasses"] == ["STTC"]
    assert r["report"] == "sinusrhythmus p-verbreiterung lagetyp normal st & t abnormal, pathologisch"
    assert r["report_lang"] == "de"
    mi = rows["ptbxl/9739"]
    assert mi["superclasses"] == ["MI", "STTC"] and mi["report_lang"] == "en"
    assert mi["age"] is not None and mi["sex"] in {"M", "F"}


def test_signal_is_millivolts_in_standard_order(rows):
    r = rows["ptbxl/6000"]
    assert r["lead_names"] == list(STANDARD_LEADS)  # the file spells AVR/AVL/AVF
    assert r["fs"] == 500 and r["signal"].shape == (12, 5000) and r["signal"].dtype == np.float32
    original = scipy.io.loadmat(BUNDLED_ROOT / "cinc2021" / "records" / "HR06000.mat")["val"]
    np.testing.assert_allclose(r["signal"], original / 1000.0, atol=1e-6)
    assert r["signal"][0, :3].tolist() == pytest.approx([0.01, 0.01, 0.01], abs=1e-6)


def test_rate_fallback_reads_records100_when_records500_is_missing(rows):
    r = rows["ptbxl/1"]
    assert r["fs"] == 100 and r["n_samples"] == 1000
    assert json.loads(r["extra"])["rate_fallback"].endswith("00001_lr.hea")
    assert r["superclasses"] == ["NORM"] and r["labels_std"] == ["NSR", "LQRSV"]


def test_without_fallback_a_missing_file_is_an_error_row_and_resampling_works():
    cfg = SourceConfig(kind="ptbxl", root="bundled:ptbxl", database_csv="ptbxl_database_subset.csv", limit=2)
    got = list(read_source(cfg, target_fs=250))
    assert got[0]["error"].startswith("missing_file: ") and got[0]["record_id"] == "ptbxl/1"
    assert got[1]["fs"] == 250 and got[1]["signal"].shape == (12, 2500)


def test_detect_report_lang():
    assert detect_report_lang("sinusrhythmus normales ekg") == "de"
    assert detect_report_lang("sinus rhythm. normal ecg.") == "en"
    assert detect_report_lang("sinusrytm. vänster kammarhypertrofi och ST-sänkning") == "sv"
    assert detect_report_lang("") is None
