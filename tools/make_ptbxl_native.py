"""Convert the bundled CinC-2021 ``HRxxxxx`` records into PTB-XL's native ``records500/`` layout.

The PhysioNet/CinC Challenge 2021 re-released PTB-XL record ``ecg_id`` N as ``HR0N`` (``.hea`` +
MATLAB ``.mat``, int16 at 1000 units/mV). This tool rewrites each HR record that has a row in
``ptbxl/ptbxl_database_subset.csv`` as ``records500/<NN000>/<NNNNN>_hr.{hea,dat}`` (WFDB format
16, gain 1000/mV, baseline 0, lead names spelled as PTB-XL spells them: ``AVR``/``AVL``/``AVF``).
The digital samples are copied unchanged, so the signal is identical; only the container differs.

Run from the repository root::

    python tools/make_ptbxl_native.py            # writes pulse/assets/realdata/ptbxl/records500/
    python tools/make_ptbxl_native.py --check    # verifies existing files against the HR records
"""

from __future__ import annotations

import argparse
import csv
import sys
from pathlib import Path

import numpy as np
import wfdb

REALDATA = Path(__file__).resolve().parents[1] / "pulse" / "assets" / "realdata"
PTBXL_LEAD_SPELLING = {"aVR": "AVR", "aVL": "AVL", "aVF": "AVF"}


def hr_rows(realdata: Path) -> list[dict[str, str]]:
    with (realdata / "ptbxl" / "ptbxl_database_subset.csv").open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    return [r for r in rows if (realdata / "cinc2021" / "records" / f"HR{int(r['ecg_id']):05d}.hea").exists()]


def convert(row: dict[str, str], realdata: Path, check: bool) -> str:
    ecg_id = int(row["ecg_id"])
    source = wfdb.rdrecord(str(realdata / "cinc2021" / "records" / f"HR{ecg_id:05d}"), physical=False)
    target = realdata / "ptbxl" / row["filename_hr"]
    names = [PTBXL_LEAD_SPELLING.get(n, n) for n in source.sig_name]
    if check:
        written = wfdb.rdrecord(str(target), physical=False)
        same = np.array_equal(written.d_signal, source.d_signal) and written.sig_name == names
        return f"{target.name}: {'ok' if same else 'DIFFERS'}"
    target.parent.mkdir(parents=True, exist_ok=True)
    wfdb.wrsamp(
        target.name,
        fs=source.fs,
        units=["mV"] * source.n_sig,
        sig_name=names,
        d_signal=source.d_signal.astype(np.int16),
        fmt=["16"] * source.n_sig,
        adc_gain=[float(g) for g in source.adc_gain],
        baseline=[int(b) for b in source.baseline],
        write_dir=str(target.parent),
    )
    return f"{target.relative_to(realdata)}: written ({source.sig_len} samples x {source.n_sig} leads)"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--realdata", type=Path, default=REALDATA)
    parser.add_argument("--check", action="store_true", help="compare existing files, write nothing")
    args = parser.parse_args(argv)
    results = [convert(row, args.realdata, args.check) for row in hr_rows(args.realdata)]
    print("\n".join(results))
    return 1 if any("DIFFERS" in r for r in results) else 0


if __name__ == "__main__":
    sys.exit(main())
