"""MIMIC-IV-ECG reader on SYNTHETIC schema-exact files (no public sample exists; see conftest)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from pulse.data_ray.readers import read_source
from pulse.data_ray.readers.config import SourceConfig
from pulse.data_ray.readers.mimic import join_report
from pulse.schema import STANDARD_LEADS


@pytest.fixture(scope="module")
def rows(mimic_root) -> dict[str, dict]:
    return {r["record_id"]: r for r in read_source(SourceConfig(kind="mimic", root=str(mimic_root)))}


def test_leads_reordered_from_mimic_file_order(rows):
    r = rows["mimic/40000001"]
    assert r["error"] is None and r["lead_names"] == list(STANDARD_LEADS)
    # lead k carries a DC offset of k * 0.1 mV; the file stored aVF before aVL
    offsets = r["signal"].mean(axis=1)
    np.testing.assert_allclose(offsets, 0.1 * np.arange(12), atol=0.02)
    assert json.loads(r["extra"])["file_channel_order"][4] == "aVF"


def test_report_labels_split_and_time(rows):
    a, b = rows["mimic/40000001"], rows["mimic/40000002"]
    assert a["report"] == "Sinus rhythm. Normal ECG." and a["report_lang"] == "en"
    assert a["labels_std"] == ["NSR"]
    assert b["labels"][0] == "Atrial fibrillation with rapid ventricular response"
    assert b["labels_std"] == ["AF", "LAD"]
    assert a["split"] == b["split"]  # same subject, same split
    assert a["recorded_at"] == "2180-07-01 13:13:00" and a["age"] is None and a["sex"] is None
    assert json.loads(a["extra"])["machine_measurements"]["qrs_axis"] == "77"


def test_missing_and_nan_records_are_error_rows(rows):
    assert rows["mimic/40000003"]["error"].startswith("nan_signal: ")
    assert rows["mimic/40000004"]["error"].startswith("missing_file: ")


def test_join_report_normalises_sentences():
    assert join_report(["Sinus rhythm.", " Borderline ECG ", ""]) == "Sinus rhythm. Borderline ECG."
    assert join_report([]) is None
