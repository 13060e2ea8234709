"""WFDB reading on real bundled records: the Georgia header repair, corrupt inputs, S3."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
import wfdb

from pulse import io
from pulse.data_ray.readers.config import BUNDLED_ROOT
from pulse.data_ray.readers.signal import ReadError
from pulse.data_ray.readers.wfdb_io import parse_comments, read_wfdb, repair_header

RECORDS = BUNDLED_ROOT / "cinc2021" / "records"


def test_repair_header_strips_only_the_extension_of_the_record_name():
    text = "E00271.mat 12 500 5000 05-May-2020 14:50:55\nE00271.mat 16+24 1000/mV 16 0 0 15270 0 I\n"
    fixed, fixes = repair_header(text, "E00271")
    assert fixed.splitlines()[0] == "E00271 12 500 5000 05-May-2020 14:50:55"
    assert fixed.splitlines()[1] == text.splitlines()[1]
    assert fixes == ["record_name_had_extension"]
    assert repair_header("JS01048 12 500 5000\n", "JS01048")[1] == []


def test_georgia_header_that_wfdb_rejects_is_read_after_repair():
    with pytest.raises(wfdb.io._header.HeaderSyntaxError, match="record line"):
        wfdb.rdheader(str(RECORDS / "E00271"))
    record = read_wfdb(str(RECORDS / "E00271.hea"))
    assert record.header_fixes == ["record_name_had_extension"]
    assert record.signal.shape == (12, 5000) and record.fs == 500
    assert parse_comments(record.comments)["dx"] == "59118001"
    # The checksum/first value columns of the header: first sample of lead I is 0 digital units.
    assert record.signal[0, 0] == pytest.approx(0.0)


def test_corrupt_inputs_raise_read_errors_with_reasons(tmp_path):
    for ext in ("hea", "mat"):
        shutil.copy(RECORDS / f"JS01048.{ext}", tmp_path / f"JS01048.{ext}")
    data = (tmp_path / "JS01048.mat").read_bytes()
    (tmp_path / "JS01048.mat").write_bytes(data[: len(data) // 2])
    with pytest.raises(ReadError) as exc:
        read_wfdb(str(tmp_path / "JS01048.hea"))
    assert exc.value.reason == "truncated_signal"
    (tmp_path / "JS01048.mat").unlink()
    with pytest.raises(ReadError) as exc:
        read_wfdb(str(tmp_path / "JS01048.hea"))
    assert exc.value.reason == "missing_file"
    (tmp_path / "JS01048.hea").write_text("this is not a header\x00\x01\n")
    with pytest.raises(ReadError) as exc:
        read_wfdb(str(tmp_path / "JS01048.hea"))
    assert exc.value.reason == "unreadable_header"
    with pytest.raises(ReadError) as exc:
        read_wfdb(str(tmp_path / "absent.hea"))
    assert exc.value.reason == "missing_file"


def test_reads_the_same_record_from_s3(s3_bucket):
    for ext in ("hea", "mat"):
        io.write_bytes(f"{s3_bucket}/cinc/E00271.{ext}", (RECORDS / f"E00271.{ext}").read_bytes())
    remote = read_wfdb(f"{s3_bucket}/cinc/E00271.hea")
    local = read_wfdb(str(RECORDS / "E00271.hea"))
    assert np.array_equal(remote.signal, local.signal)
    assert remote.header_fixes == local.header_fixes
