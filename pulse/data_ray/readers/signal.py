"""Shared record plumbing for every reader: lead order, units, checks, resampling, splits, rows.

Every reader ends in :func:`make_record` (a good record) or :func:`error_record` (a bad input),
so all sources produce the same row layout (``pulse.schema.RECORD_SCHEMA``). A reader names the
row once as a :class:`RecordRef` (id, dataset, source path) and builds either row from it:
``ref.error(exc)`` or ``ref.record(decoded, split=..., ...)`` with the :class:`Decoded` signal
that :func:`finish_signal` returns (its notes go into ``extra``).

Lead policy: signals come out in ``STANDARD_LEADS`` order whatever the file order. A standard
lead the source lacks is *left out* (``lead_names`` lists only the present leads, in standard
order) rather than filled with NaN, so downstream stages never see NaN rows; a record with no
standard lead at all is an error row. Non-standard channels are dropped and named in ``extra``.

Split policy: PTB-XL uses its official ``strat_fold``; every other source hashes the patient id
(or the record id when the source has none) with SHA-256 into 100 buckets: 0-79 train,
80-89 val, 90-99 test. Hashing the patient keeps all of a patient's records in one split.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from fractions import Fraction
from typing import Any, NamedTuple

import numpy as np
import pyarrow as pa

from pulse.schema import RECORD_SCHEMA, STANDARD_LEADS

_LEAD_ALIASES = {name.lower(): name for name in STANDARD_LEADS}
# CODE-15%/Brazilian exports name the limb leads DI, DII, DIII.
_LEAD_ALIASES.update({"di": "I", "dii": "II", "diii": "III"})

_UNIT_TO_MV = {"mv": 1.0, "uv": 1e-3, "µv": 1e-3, "μv": 1e-3, "v": 1e3, "nu": 1.0, "": 1.0}


class ReadError(Exception):
    """A bad input; ``reason`` is the countable part of the row's ``error``."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


def standard_lead_name(name: str) -> str | None:
    """The standard name of a lead label (case-insensitive, ``AVR`` -> ``aVR``), or None."""
    return _LEAD_ALIASES.get(name.strip().lower())


def unit_scale_to_mv(unit: str | None) -> float:
    """Factor that turns a WFDB physical unit (mV, uV, V) into millivolts."""
    key = (unit or "").strip().lower()
    if key not in _UNIT_TO_MV:
        raise ReadError("unknown_unit", f"cannot convert {unit!r} to mV")
    return _UNIT_TO_MV[key]


def to_standard_order(signal: np.ndarray, names: list[str]) -> tuple[np.ndarray, list[str], list[str]]:
    """Reorder ``signal`` (leads x samples) into standard lead order.

    Returns:
        (signal of the present standard leads, their names, the dropped non-standard names).
    """
    index: dict[str, int] = {}
    dropped: list[str] = []
    for i, name in enumerate(names):
        std = standard_lead_name(name)
        if std is None or std in index:
            dropped.append(name)
        else:
            index[std] = i
    present = [lead for lead in STANDARD_LEADS if lead in index]
    if not present:
        raise ReadError("no_standard_leads", f"channels {names}")
    return signal[[index[lead] for lead in present]], present, dropped


def check_signal(signal: np.ndarray, max_nonfinite_fraction: float) -> tuple[np.ndarray, int]:
    """Reject empty, mostly-NaN and flat signals; linearly fill a few non-finite samples.

    Returns:
        (the cleaned signal, how many samples were filled).
    """
    if signal.size == 0 or signal.shape[-1] == 0:
        raise ReadError("empty_signal", f"shape {signal.shape}")
    finite = np.isfinite(signal)
    n_bad = int(signal.size - finite.sum())
    if n_bad:
        fraction = n_bad / signal.size
        worst_lead = 1.0 - finite.mean(axis=1).min()
        if fraction > max_nonfinite_fraction or worst_lead >= 1.0:
            raise ReadError("nan_signal", f"{n_bad} of {signal.size} samples are not finite")
        signal = signal.copy()
        x = np.arange(signal.shape[1])
        for lead in np.flatnonzero(~finite.all(axis=1)):
            ok = finite[lead]
            signal[lead] = np.interp(x, x[ok], signal[lead, ok])
    if np.all(np.ptp(signal, axis=1) < 1e-6):
        raise ReadError("constant_signal", f"every lead is flat (value {float(signal.flat[0]):.4g})")
    return signal, n_bad


def resample(signal: np.ndarray, fs: float, target_fs: float | None) -> tuple[np.ndarray, float]:
    """Polyphase resampling to ``target_fs`` (no-op when None or equal)."""
    if not target_fs or abs(target_fs - fs) < 1e-9:
        return signal, fs
    from scipy.signal import resample_poly

    ratio = Fraction(target_fs / fs).limit_denominator(1000)
    out = resample_poly(signal, ratio.numerator, ratio.denominator, axis=1)
    return out.astype(np.float32), float(target_fs)


def hash_split(key: str, val_percent: int = 10, test_percent: int = 10) -> str:
    """Deterministic train/val/test assignment of a patient or record id (see module doc)."""
    bucket = int(hashlib.sha256(key.encode("utf-8")).hexdigest()[:8], 16) % 100
    if bucket >= 100 - test_percent:
        return "test"
    if bucket >= 100 - test_percent - val_percent:
        return "val"
    return "train"


def parse_sex(value: Any) -> str | None:
    """ "M"/"F"/None from the many spellings sources use (Male, female, 0/1 handled by callers)."""
    if value is None:
        return None
    text = str(value).strip().lower()
    if text in {"m", "male", "man"}:
        return "M"
    if text in {"f", "female", "woman"}:
        return "F"
    return None


def parse_age(value: Any) -> float | None:
    try:
        age = float(value)
    except (TypeError, ValueError):
        return None
    # PTB-XL codes ages above 89 as 300 (HIPAA); NaN and negatives are unknown.
    if not np.isfinite(age) or age < 0:
        return None
    return 90.0 if age >= 300 else age


def plain_value(value: Any) -> Any:
    """A CSV/HDF5 cell as a plain JSON value: NaN -> None, numpy scalars -> Python."""
    if isinstance(value, float) and value != value:
        return None
    return value.item() if hasattr(value, "item") else value


class Decoded(NamedTuple):
    """A finished signal: what :func:`finish_signal` returns (unpacks as a 4-tuple)."""

    signal: np.ndarray
    """float32, leads x samples, mV, standard lead order."""
    lead_names: list[str]
    fs: float
    notes: dict[str, Any]
    """what finishing changed (dropped channels, filled samples); goes into the record's ``extra``."""


def finish_signal(
    signal: np.ndarray,
    names: list[str],
    fs: float,
    *,
    target_fs: float | None,
    max_nonfinite_fraction: float,
) -> Decoded:
    """Standard order, checks, resampling, float32: the shared tail of every signal reader."""
    signal, lead_names, dropped = to_standard_order(np.asarray(signal, dtype=np.float64), names)
    signal, n_filled = check_signal(signal, max_nonfinite_fraction)
    signal, fs = resample(signal, fs, target_fs)
    notes: dict[str, Any] = {}
    if dropped:
        notes["dropped_channels"] = dropped
    if n_filled:
        notes["filled_nonfinite_samples"] = n_filled
    return Decoded(np.ascontiguousarray(signal, dtype=np.float32), lead_names, fs, notes)


def make_record(
    *,
    record_id: str,
    dataset: str,
    split: str,
    fs: float,
    lead_names: list[str],
    signal: np.ndarray,
    source_path: str,
    age: float | None = None,
    sex: str | None = None,
    labels: list[str] | None = None,
    labels_std: list[str] | None = None,
    superclasses: list[str] | None = None,
    report: str | None = None,
    report_lang: str | None = None,
    recorded_at: str | None = None,
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """One good record row (``signal`` stays a numpy array until :func:`records_to_table`)."""
    return {
        "record_id": record_id,
        "dataset": dataset,
        "split": split,
        "fs": float(fs),
        "lead_names": list(lead_names),
        "signal": signal,
        "n_samples": int(signal.shape[1]),
        "age": age,
        "sex": sex,
        "labels": list(labels or []),
        "labels_std": list(labels_std or []),
        "superclasses": list(superclasses or []),
        "report": report,
        "report_lang": report_lang,
        "source_path": source_path,
        "recorded_at": recorded_at,
        "extra": json.dumps(extra or {}, sort_keys=True, default=str),
        "error": None,
    }


def error_record(
    *, record_id: str, dataset: str, source_path: str, error: str, extra: dict[str, Any] | None = None
) -> dict[str, Any]:
    """A bad-input row: ``error`` set, empty signal, everything else null/empty."""
    row = make_record(
        record_id=record_id,
        dataset=dataset,
        split="",
        fs=0.0,
        lead_names=[],
        signal=np.zeros((0, 0), dtype=np.float32),
        source_path=source_path,
        extra=extra,
    )
    row.update(split=None, fs=None, n_samples=0, error=error)
    return row


def records_to_table(rows: list[dict[str, Any]]) -> pa.Table:
    """Rows from :func:`make_record` / :func:`error_record` as a ``RECORD_SCHEMA`` table.

    The nested ``signal`` column is built from one flat float32 buffer and offsets instead of
    Python lists, which is what keeps ingest throughput reasonable.
    """
    lead_offsets = [0]
    sample_offsets = [0]
    chunks: list[np.ndarray] = []
    for row in rows:
        signal = row["signal"]
        for lead in signal:
            chunks.append(lead)
            sample_offsets.append(sample_offsets[-1] + lead.shape[0])
        lead_offsets.append(lead_offsets[-1] + signal.shape[0])
    values = pa.array(np.concatenate(chunks) if chunks else np.zeros(0, np.float32), type=pa.float32())
    leads = pa.ListArray.from_arrays(pa.array(sample_offsets, pa.int32()), values)
    signals = pa.ListArray.from_arrays(pa.array(lead_offsets, pa.int32()), leads)
    columns = {}
    for field in RECORD_SCHEMA:
        if field.name == "signal":
            columns["signal"] = signals
        else:
            columns[field.name] = pa.array([row[field.name] for row in rows], type=field.type)
    return pa.Table.from_pydict(columns, schema=RECORD_SCHEMA)


@dataclass(frozen=True)
class RecordRef:
    """The id, dataset and source path a reader's row carries, good or bad: named once per input."""

    record_id: str
    dataset: str
    source_path: str

    def error(self, error: ReadError | str) -> dict[str, Any]:
        """The error row of this input (``error`` is a ``ReadError`` or ``"<reason>: <detail>"``)."""
        return error_record(
            record_id=self.record_id, dataset=self.dataset, source_path=self.source_path, error=str(error)
        )

    def record(
        self, decoded: Decoded, *, split: str, extra: dict[str, Any] | None = None, **fields: Any
    ) -> dict[str, Any]:
        """The good row: ``decoded``'s signal, leads and rate; its notes join ``extra`` (and win a clash).

        ``fields`` are :func:`make_record`'s optional keywords (age, sex, labels, report, ...).
        """
        signal, lead_names, fs, notes = decoded
        fields.update(split=split, fs=fs, lead_names=lead_names, signal=signal)
        return make_record(**vars(self), extra={**(extra or {}), **notes}, **fields)
