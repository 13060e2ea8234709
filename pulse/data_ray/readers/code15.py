"""CODE-15% (Ribeiro et al., Zenodo 4916206) in its native layout.

``<root>/exams.csv`` (exam_id, age, is_male, nn_predicted_age, 1dAVb, RBBB, LBBB, SB, ST, AF,
patient_id, death, timey, normal_ecg, trace_file) + ``<root>/exams_part{0..17}.hdf5``, each with
``tracings`` (N, 4096, 12) float32 at 400 Hz and ``exam_id`` (N,).

What a careful reader must do (and this one does):
- Rows are located by each part's own ``exam_id`` dataset, never by CSV row order (the CSV is
  not in file order), and the all-zero padding row with ``exam_id`` 0 in every part is skipped.
- Recordings shorter than 4096 samples (7 s = 2800, 10 s = 4000) are zero-padded
  symmetrically; the padding is stripped (the first and last sample where any lead is
  non-zero bound the recording) and the amounts go to ``extra``.
- Samples are already millivolts (measured median lead-II R amplitude ~1.75 mV), despite the
  sibling CODE-test README's "1e-4 V" wording; leads are in standard order (DI, DII, DIII,
  aVR, aVL, aVF, V1-V6).
- ``labels`` = the set flags among 1dAVb/RBBB/LBBB/SB/ST/AF plus ``normal_ecg``; an empty list
  is not a normal ECG (it means some other finding). ``split`` hashes ``patient_id``.
- HDF5 parts are opened as seekable pyarrow files (local or S3), so only the rows a task
  needs are read, never a whole 2.7 GB part.
"""

from __future__ import annotations

import fnmatch
import io as _stdio
import math
from typing import Any

import numpy as np
import pandas as pd

from pulse import io
from pulse.data_ray.readers.config import Rows, SourceConfig, Storage, Unit
from pulse.data_ray.readers.labels import CODE15_LABELS, CODE15_TO_STD, map_codes
from pulse.data_ray.readers.signal import (
    ReadError,
    RecordRef,
    finish_signal,
    hash_split,
    parse_age,
    plain_value,
)

FS = 400.0
LEADS = ["DI", "DII", "DIII", "AVR", "AVL", "AVF", "V1", "V2", "V3", "V4", "V5", "V6"]
DEFAULT_FILES = ("exams_part*.hdf5",)


def _open_hdf5(path: str, storage: io.StorageOptions | None):
    import h5py

    fs, inner = io.filesystem(path, storage)
    return h5py.File(fs.open_input_file(inner), "r")


def _flag(value: Any) -> bool:
    if isinstance(value, str):
        return value.strip().lower() in {"true", "1"}
    return bool(value) and not (isinstance(value, float) and math.isnan(value))


def plan(source: SourceConfig, storage: io.StorageOptions | None = None) -> list[dict[str, Any]]:
    """Chunks of ``chunk_size`` exams per HDF5 part, located by the part's ``exam_id``."""
    root = source.resolved_root()
    exams_path = io.join(root, "exams.csv")
    if not io.exists(exams_path, storage):
        raise FileNotFoundError(f"CODE-15% source {source.root}: {exams_path} not found")
    exams = pd.read_csv(_stdio.StringIO(io.read_text(exams_path, storage)))
    by_id = {int(row["exam_id"]): row for row in exams.to_dict(orient="records")}
    patterns = source.files or list(DEFAULT_FILES)
    parts = [
        p
        for p in io.list_files(root, "*", storage)
        if any(fnmatch.fnmatch(p.rsplit("/", 1)[-1], pat) for pat in patterns)
    ]
    units: list[dict[str, Any]] = []
    budget = source.limit if source.limit is not None else math.inf
    for part in parts:
        if budget <= 0:
            break
        part_name = part.rsplit("/", 1)[-1]
        with _open_hdf5(part, storage) as handle:
            ids = np.asarray(handle["exam_id"][:], dtype=np.int64)
        exams_here: list[dict[str, Any]] = []
        for row_index, exam_id in enumerate(ids.tolist()):
            if exam_id == 0:
                continue  # the all-zero padding row every part carries
            meta = by_id.get(exam_id)
            exams_here.append(
                {
                    "row": row_index,
                    "exam_id": exam_id,
                    "meta": {k: plain_value(v) for k, v in meta.items()} if meta is not None else None,
                }
            )
        exams_here = exams_here[: int(min(budget, len(exams_here)))]
        budget -= len(exams_here)
        for start in range(0, len(exams_here), source.chunk_size):
            units.append(
                {"part": part, "part_name": part_name, "exams": exams_here[start : start + source.chunk_size]}
            )
    return units


def strip_padding(signal: np.ndarray) -> tuple[np.ndarray, int, int]:
    """Drop the symmetric zero padding; returns (signal, samples cut before, samples cut after)."""
    nonzero = np.flatnonzero(np.any(signal != 0, axis=0))
    if nonzero.size == 0:
        return signal, 0, 0
    first, last = int(nonzero[0]), int(nonzero[-1])
    return signal[:, first : last + 1], first, signal.shape[1] - 1 - last


def _ref(unit: dict[str, Any], exam: dict[str, Any]) -> RecordRef:
    return RecordRef(f"code15/{exam['exam_id']}", "code15", f"{unit['part']}#exam_id={exam['exam_id']}")


def _record(source, unit, exam, tracing, target_fs) -> dict[str, Any]:
    ref = _ref(unit, exam)
    meta = exam["meta"]
    try:
        if meta is None:
            raise ReadError(
                "bad_metadata", f"exam_id {exam['exam_id']} of {unit['part_name']} not in exams.csv"
            )
        raw = np.asarray(tracing, dtype=np.float64).T
        trimmed, before, after = strip_padding(raw)
        decoded = finish_signal(
            trimmed, LEADS, FS, target_fs=target_fs, max_nonfinite_fraction=source.max_nonfinite_fraction
        )
    except ReadError as exc:
        return ref.error(exc)
    labels = [name for name in CODE15_LABELS if _flag(meta.get(name))]
    if _flag(meta.get("normal_ecg")):
        labels.append("normal_ecg")
    is_male = meta.get("is_male")
    sex = None if is_male is None else ("M" if _flag(is_male) else "F")
    patient = meta.get("patient_id")
    extra = {
        "exam_id": exam["exam_id"],
        "patient_id": patient,
        "trace_file": meta.get("trace_file"),
        "nn_predicted_age": meta.get("nn_predicted_age"),
        "death": meta.get("death"),
        "timey": meta.get("timey"),
        "padding_stripped": [before, after],
    }
    return ref.record(
        decoded,
        split=hash_split(f"code15-patient/{patient if patient is not None else exam['exam_id']}"),
        age=parse_age(meta.get("age")),
        sex=sex,
        labels=labels,
        labels_std=map_codes(labels, CODE15_TO_STD),
        extra=extra,
    )


def read(source: SourceConfig, unit: Unit, storage: Storage = None, target_fs: float | None = None) -> Rows:
    """Record rows for one chunk of exams of one HDF5 part."""
    exams = sorted(unit["exams"], key=lambda e: e["row"])
    try:
        with _open_hdf5(unit["part"], storage) as handle:
            tracings = handle["tracings"]
            if tracings.ndim != 3 or tracings.shape[2] != len(LEADS):
                raise ReadError("unreadable_signal", f"{unit['part_name']}: tracings shape {tracings.shape}")
            block = tracings[[e["row"] for e in exams]]
    except ReadError as exc:
        error = str(exc)
    except (OSError, KeyError, ValueError, TypeError) as exc:
        error = f"unreadable_signal: {unit['part_name']}: {type(exc).__name__}: {exc}"
    else:
        return [_record(source, unit, exam, block[i], target_fs) for i, exam in enumerate(exams)]
    return [_ref(unit, e).error(error) for e in exams]
