"""Records for the render tests: real bundled CinC-2021 records and synthetic signals, as dicts or Parquet."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pyarrow as pa
import pytest
import scipy.io

from pulse import io
from pulse.schema import RECORD_SCHEMA, STANDARD_LEADS

REALDATA = Path(__file__).resolve().parents[3] / "pulse" / "assets" / "realdata" / "cinc2021" / "records"


def load_cinc(name: str) -> dict:
    """A bundled CinC-2021 record (``.mat`` 'val' in µV → mV) as a renderer record dict."""
    header = (REALDATA / f"{name}.hea").read_text().splitlines()
    n_leads, fs = int(header[0].split()[1]), float(header[0].split()[2])
    comments = dict(line[1:].split(":", 1) for line in header if line.startswith("#") and ":" in line)
    age = comments.get("Age", "").strip()
    return {
        "record_id": f"cinc2021/{name}",
        "signal": scipy.io.loadmat(REALDATA / f"{name}.mat")["val"].astype(np.float32) / 1000.0,
        "fs": fs,
        "lead_names": [line.split()[-1] for line in header[1 : 1 + n_leads]],
        "age": float(age) if age.replace(".", "").isdigit() else None,
        "sex": comments.get("Sex", "").strip() or None,
        "recorded_at": None,
    }


def synthetic_record(
    record_id: str = "synthetic/1",
    fs: float = 500.0,
    seconds: float = 10.0,
    lead_names: tuple[str, ...] = STANDARD_LEADS,
    bpm: float = 72.0,
) -> dict:
    """A smooth ECG-like signal: narrow QRS spikes plus T waves, a different gain per lead."""
    t = np.arange(round(fs * seconds)) / fs
    phase = (t * bpm / 60.0) % 1.0
    beat = 1.1 * np.exp(-(((phase - 0.3) / 0.018) ** 2)) - 0.25 * np.exp(-(((phase - 0.33) / 0.02) ** 2))
    beat += 0.3 * np.exp(-(((phase - 0.6) / 0.06) ** 2)) + 0.1 * np.exp(-(((phase - 0.15) / 0.03) ** 2))
    gains = np.linspace(-1.0, 1.2, len(lead_names))
    gains[np.abs(gains) < 0.2] = 0.5
    signal = (gains[:, None] * beat[None, :]).astype(np.float32)
    return {"record_id": record_id, "signal": signal, "fs": fs, "lead_names": list(lead_names)}


def record_table(records: list[dict]) -> pa.Table:
    """RECORD_SCHEMA rows for ``records`` (renderer dicts)."""
    rows = []
    for rec in records:
        signal = [np.asarray(lead, np.float32).tolist() for lead in rec["signal"]]
        rows.append(
            {
                "record_id": rec["record_id"],
                "dataset": rec["record_id"].split("/")[0],
                "split": "train",
                "fs": rec["fs"],
                "lead_names": rec["lead_names"],
                "signal": signal,
                "n_samples": max((len(s) for s in signal), default=0),
                "age": rec.get("age"),
                "sex": rec.get("sex"),
                "labels": [],
                "labels_std": [],
                "superclasses": [],
                "recorded_at": rec.get("recorded_at"),
                "error": rec.get("error"),
            }
        )
    return pa.Table.from_pylist(rows, schema=RECORD_SCHEMA)


def bad_records() -> list[dict]:
    """One record per error reason the renderer must report instead of crashing."""
    nan = synthetic_record("synthetic/nan", seconds=2.0)
    nan["signal"][3, 100:200] = np.nan
    huge = synthetic_record("synthetic/huge", seconds=2.0)
    huge["signal"] = huge["signal"] * 1000.0  # µV mistaken for mV
    empty = synthetic_record("synthetic/empty", seconds=2.0)
    empty["signal"] = empty["signal"][:, :0]
    failed = synthetic_record("synthetic/ingest-failed", seconds=2.0)
    failed["error"] = "unreadable_header: bad record line"
    return [nan, huge, empty, failed]


def write_records(base: str, records: list[dict], shards: int = 2) -> str:
    """Write ``records`` as an ingest output folder (``<base>/records/part-*.parquet``)."""
    table = record_table(records)
    per = -(-table.num_rows // shards)
    for i in range(shards):
        part = table.slice(i * per, per)
        if part.num_rows:
            io.write_parquet(part, io.join(base, "records", f"part-{i:03d}.parquet"))
    return base


@pytest.fixture(scope="session")
def render_data():
    """The helpers above, as a fixture (test modules cannot import a conftest in every import mode)."""
    return SimpleNamespace(
        load_cinc=load_cinc,
        synthetic_record=synthetic_record,
        record_table=record_table,
        bad_records=bad_records,
        write_records=write_records,
    )


@pytest.fixture(scope="session")
def cinc_records() -> list[dict]:
    """Three real records from different sources (CPSC 2018, G12EC, PTB-XL), all 500 Hz."""
    return [load_cinc(name) for name in ("A0689", "E00271", "HR03961")]
