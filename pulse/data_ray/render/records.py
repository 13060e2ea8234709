"""Checking a record before drawing it, lead lookup by name, and the printed heart rate.

``check_record`` returns an ``"<reason>: <detail>"`` string for a record that cannot be
rendered (the stage turns it into an error row) or None when the record is fine.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from scipy.signal import find_peaks

from pulse.schema import STANDARD_LEADS

MAX_ABS_MV = 25.0  # beyond this a "millivolt" signal is really in µV or raw ADC units
_CANONICAL = {name.lower(): name for name in STANDARD_LEADS}


def canonical_lead(name: str) -> str:
    """``avr`` / ``AVR`` / `` aVR `` → ``aVR``; unknown names come back stripped."""
    text = str(name).strip()
    return _CANONICAL.get(text.lower(), text)


def lead_index(lead_names: Sequence[str]) -> dict[str, int]:
    """Row of each standard lead in the signal; extra, non-standard leads are ignored."""
    index: dict[str, int] = {}
    for row, name in enumerate(lead_names):
        lead = canonical_lead(name)
        if lead in _CANONICAL.values() and lead not in index:
            index[lead] = row
    return index


def as_signal(value: Any) -> np.ndarray:
    """A (leads x samples) float32 array from an ndarray or a list of per-lead arrays."""
    if isinstance(value, np.ndarray) and value.dtype != object:
        return np.atleast_2d(value.astype(np.float32, copy=False))
    rows = [np.asarray(r, dtype=np.float32) for r in value]
    if not rows:
        return np.zeros((0, 0), dtype=np.float32)
    length = max(len(r) for r in rows)
    out = np.full((len(rows), length), np.nan, dtype=np.float32)
    for i, r in enumerate(rows):
        out[i, : len(r)] = r
    return out


def lead_lengths(signal: np.ndarray) -> np.ndarray:
    """Samples per lead, not counting a trailing run of NaN (padding of leads shorter than others)."""
    finite = np.isfinite(signal)
    last = signal.shape[1] - np.argmax(finite[:, ::-1], axis=1)
    return np.where(finite.any(axis=1), last, 0)


def check_record(record: Mapping[str, Any], signal: np.ndarray, duration_s: float) -> str | None:
    """Why ``record`` cannot be rendered, or None. Only the plotted window is checked."""
    fs = record.get("fs")
    if fs is None or not np.isfinite(fs) or fs <= 0:
        return f"bad_fs: sampling rate {fs!r}"
    if signal.ndim != 2 or signal.shape[1] == 0 or signal.shape[0] == 0:
        return f"empty_signal: shape {signal.shape}"
    names = list(record.get("lead_names") or [])
    if len(names) != signal.shape[0]:
        return f"lead_mismatch: {len(names)} lead names for {signal.shape[0]} signal rows"
    index = lead_index(names)
    if not index:
        return f"no_standard_leads: {names[:12]}"
    rows = list(index.values())
    window = signal[rows, : round(duration_s * float(fs))]
    lengths = np.minimum(lead_lengths(signal)[rows], window.shape[1])
    if not lengths.any():
        return "nan_signal: no finite sample in any standard lead"
    inside = np.arange(window.shape[1])[None, :] < lengths[:, None]
    bad = int((inside & ~np.isfinite(window)).sum())
    if bad:
        return f"nan_signal: {bad} non-finite samples in the plotted window"
    peak = float(np.abs(np.where(inside, window, 0.0)).max())
    if peak > MAX_ABS_MV:
        return f"absurd_amplitude: |signal| reaches {peak:.1f} mV (limit {MAX_ABS_MV:g} mV)"
    return None


def estimate_heart_rate(lead: np.ndarray, fs: float) -> float | None:
    """Beats per minute from R peaks of one lead (median RR), or None if no rhythm is found."""
    if lead.size < 2 * fs:
        return None
    slope = np.abs(np.diff(lead.astype(np.float64)))
    kernel = max(1, int(0.05 * fs))
    energy = np.convolve(slope, np.ones(kernel) / kernel, mode="same")
    if energy.max() <= 0:
        return None
    peaks, _ = find_peaks(energy, height=0.35 * energy.max(), distance=max(1, int(0.27 * fs)))
    if len(peaks) < 2:
        return None
    bpm = 60.0 * fs / float(np.median(np.diff(peaks)))
    return bpm if 20.0 <= bpm <= 300.0 else None
