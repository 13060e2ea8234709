"""MIMIC-IV-ECG (PhysioNet 1.0) in its native layout.

``<root>/record_list.csv`` (subject_id, study_id, file_name, ecg_time, path) names each WFDB
record ``files/pNNNN/pNNNNNNNN/sNNNNNNNN/NNNNNNNN``; ``<root>/machine_measurements.csv`` (joined
on study_id, optional) carries the machine report as ``report_0`` .. ``report_17`` plus
intervals and axes.

- ``record_id`` = ``mimic/<study_id>``; ``split`` hashes ``subject_id`` (all of a patient's ECGs
  share a split); ``recorded_at`` = ``ecg_time``.
- ``labels`` = the non-empty machine statements in order; ``report`` = those statements joined
  into sentences (``report_lang`` "en"); ``labels_std`` = statements matched to the shared
  vocabulary (``labels.mimic_statements_to_std``).
- Age and sex are not part of MIMIC-IV-ECG (they live in MIMIC-IV's ``patients`` table), so both
  are null. MIMIC-IV-ECG writes leads in the order I, II, III, aVR, aVF, aVL, V1-V6; the shared
  lead policy reorders them to the standard order.
"""

from __future__ import annotations

import io as _stdio
import math
from typing import Any

import pandas as pd

from pulse import io
from pulse.data_ray.readers.config import Rows, SourceConfig, Storage, Unit
from pulse.data_ray.readers.labels import mimic_statements_to_std
from pulse.data_ray.readers.signal import ReadError, RecordRef, hash_split
from pulse.data_ray.readers.wfdb_io import finished_signal, read_wfdb

REPORT_COLUMNS = tuple(f"report_{i}" for i in range(18))
MEASUREMENT_COLUMNS = (
    "cart_id",
    "bandwidth",
    "filtering",
    "rr_interval",
    "p_onset",
    "p_end",
    "qrs_onset",
    "qrs_end",
    "t_end",
    "p_axis",
    "qrs_axis",
    "t_axis",
)


def _present(value: Any) -> bool:
    return (
        value is not None
        and not (isinstance(value, float) and math.isnan(value))
        and str(value).strip() != ""
    )


def join_report(statements: list[str]) -> str | None:
    """Machine statements as one report: each ends with a period, joined by spaces."""
    sentences = [s.strip().rstrip(".") + "." for s in statements if s.strip().rstrip(".")]
    return " ".join(sentences) or None


def plan(source: SourceConfig, storage: io.StorageOptions | None = None) -> list[dict[str, Any]]:
    """One unit per ``record_list.csv`` row with its machine measurements, sorted by study_id."""
    root = source.resolved_root()
    record_list = io.join(root, "record_list.csv")
    if not io.exists(record_list, storage):
        raise FileNotFoundError(f"MIMIC-IV-ECG source {source.root}: {record_list} not found")
    records = pd.read_csv(_stdio.StringIO(io.read_text(record_list, storage))).sort_values("study_id")
    if source.limit is not None:
        records = records.head(source.limit)
    measurements_path = io.join(root, "machine_measurements.csv")
    measurements: dict[int, dict[str, Any]] = {}
    if io.exists(measurements_path, storage):
        table = pd.read_csv(_stdio.StringIO(io.read_text(measurements_path, storage)), dtype=str)
        table = table[table["study_id"].astype(int).isin(set(records["study_id"].astype(int)))]
        for row in table.to_dict(orient="records"):
            measurements[int(row["study_id"])] = row
    units = []
    for row in records.to_dict(orient="records"):
        study = int(row["study_id"])
        extra_row = measurements.get(study, {})
        units.append(
            {
                "subject_id": int(row["subject_id"]),
                "study_id": study,
                "path": str(row["path"]),
                "ecg_time": str(row["ecg_time"]) if _present(row.get("ecg_time")) else None,
                "statements": [
                    str(extra_row[c]).strip() for c in REPORT_COLUMNS if _present(extra_row.get(c))
                ],
                "measurements": {c: extra_row[c] for c in MEASUREMENT_COLUMNS if _present(extra_row.get(c))},
                "has_measurements": bool(extra_row),
            }
        )
    return units


def read(source: SourceConfig, unit: Unit, storage: Storage = None, target_fs: float | None = None) -> Rows:
    """The record row (or error row) of one ``record_list.csv`` row."""
    ref = RecordRef(
        f"mimic/{unit['study_id']}", "mimic", io.join(source.resolved_root(), unit["path"] + ".hea")
    )
    try:
        record = read_wfdb(ref.source_path, storage)
        decoded = finished_signal(record, target_fs, source.max_nonfinite_fraction)
    except ReadError as exc:
        return [ref.error(exc)]
    statements = list(unit["statements"])
    extra = {
        "subject_id": unit["subject_id"],
        "study_id": unit["study_id"],
        "file_channel_order": record.channel_names,
        "machine_measurements": unit["measurements"] if unit["has_measurements"] else None,
    }
    report = join_report(statements)
    return [
        ref.record(
            decoded,
            split=hash_split(f"mimic-subject/{unit['subject_id']}"),
            labels=statements,
            labels_std=mimic_statements_to_std(statements),
            report=report,
            report_lang="en" if report else None,
            recorded_at=unit["ecg_time"],
            extra=extra,
        )
    ]
