from __future__ import annotations

from collections import Counter

import numpy as np
import pytest

from pulse.data_ray.readers.signal import (
    Decoded,
    ReadError,
    RecordRef,
    check_signal,
    error_record,
    finish_signal,
    hash_split,
    make_record,
    records_to_table,
    resample,
    to_standard_order,
)
from pulse.schema import RECORD_SCHEMA, STANDARD_LEADS


def test_leads_are_reordered_and_missing_leads_left_out():
    names = ["V1", "AVF", "I", "avl", "Pleth"]
    signal = np.arange(5, dtype=float)[:, None] * np.ones((5, 3))
    out, present, dropped = to_standard_order(signal, names)
    assert present == ["I", "aVL", "aVF", "V1"]
    assert out[:, 0].tolist() == [2, 3, 1, 0]
    assert dropped == ["Pleth"]
    with pytest.raises(ReadError, match="no_standard_leads"):
        to_standard_order(signal[:1], ["Resp"])


def test_check_signal_rejects_nan_and_flat_and_fills_small_gaps():
    good = np.sin(np.linspace(0, 10, 1000))[None].repeat(2, 0)
    with pytest.raises(ReadError) as exc:
        check_signal(np.full((2, 100), np.nan), 0.5)
    assert exc.value.reason == "nan_signal"
    with pytest.raises(ReadError, match="constant_signal"):
        check_signal(np.full((12, 100), 0.25), 0.01)
    gappy = good.copy()
    gappy[0, 500] = np.nan
    filled, n = check_signal(gappy, 0.01)
    assert n == 1 and np.isfinite(filled).all()
    assert filled[0, 500] == pytest.approx((good[0, 499] + good[0, 501]) / 2)
    with pytest.raises(ReadError, match="nan_signal"):
        check_signal(np.where(np.arange(1000) % 2, np.nan, good), 0.01)


def test_resample_changes_rate_and_length():
    signal = np.sin(2 * np.pi * np.arange(5000) / 500)[None]
    out, fs = resample(signal, 500, 100)
    assert fs == 100 and out.shape == (1, 1000) and out.dtype == np.float32
    assert np.abs(out[0, 100:900] - np.sin(2 * np.pi * np.arange(100, 900) / 100)).max() < 0.02


def test_hash_split_is_deterministic_and_80_10_10():
    assert hash_split("code15-patient/7") == hash_split("code15-patient/7")
    counts = Counter(hash_split(f"id-{i}") for i in range(20000))
    assert abs(counts["train"] / 20000 - 0.8) < 0.02
    assert abs(counts["val"] / 20000 - 0.1) < 0.02


def test_records_to_table_round_trips_signals_exactly():
    sig, leads, fs, _ = finish_signal(
        np.random.default_rng(0).normal(size=(12, 50)),
        list(STANDARD_LEADS),
        500,
        target_fs=None,
        max_nonfinite_fraction=0,
    )
    good = make_record(
        record_id="x/1", dataset="ptbxl", split="train", fs=fs, lead_names=leads, signal=sig, source_path="p"
    )
    bad = error_record(record_id="x/2", dataset="ptbxl", source_path="q", error="missing_file: q")
    table = records_to_table([good, bad])
    assert table.schema == RECORD_SCHEMA
    back = np.array(table.column("signal")[0].as_py(), dtype=np.float32)
    assert np.array_equal(back, sig)
    assert table.column("signal")[1].as_py() == [] and table.column("error")[1].as_py() == "missing_file: q"


def test_record_ref_builds_the_same_rows_as_make_record_and_error_record():
    """A reader names (id, dataset, path) once; the finished signal's notes join ``extra`` and win."""
    decoded = finish_signal(
        np.random.default_rng(1).normal(size=(13, 20)),
        [*STANDARD_LEADS, "X"],
        500,
        target_fs=None,
        max_nonfinite_fraction=0,
    )
    assert isinstance(decoded, Decoded) and decoded.notes == {"dropped_channels": ["X"]}
    ref = RecordRef("ptbxl/7", "ptbxl", "/data/7.hea")
    extra = {"ecg_id": 7, "dropped_channels": "from the reader"}
    row = ref.record(decoded, split="val", age=40.0, labels=["NORM"], extra=extra)
    assert row == make_record(
        record_id="ptbxl/7",
        dataset="ptbxl",
        split="val",
        fs=500,
        lead_names=list(STANDARD_LEADS),
        signal=decoded.signal,
        source_path="/data/7.hea",
        age=40.0,
        labels=["NORM"],
        extra={"ecg_id": 7, "dropped_channels": ["X"]},
    )
    assert extra == {"ecg_id": 7, "dropped_channels": "from the reader"}  # the caller's dict is not changed

    def without_signal(row: dict) -> dict:
        assert row.pop("signal").size == 0
        return row

    expected = error_record(
        record_id="ptbxl/7", dataset="ptbxl", source_path="/data/7.hea", error="nan_signal: x"
    )
    expected = without_signal(expected)
    assert without_signal(ref.error(ReadError("nan_signal", "x"))) == expected
    assert without_signal(ref.error("nan_signal: x")) == expected
