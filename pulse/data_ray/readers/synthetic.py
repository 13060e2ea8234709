"""Schema-exact SYNTHETIC CODE-15% and MIMIC-IV-ECG datasets for tests, demos and benchmarks.

Neither dataset has a public sample that may be redistributed, so :func:`write_mimic` and
:func:`write_code15` write small files in the exact native layouts (file names, CSV columns,
HDF5 datasets, WFDB headers, MIMIC's lead order): the signals are sine waves, NOT ECGs and not
patient data. Every lead k (standard order) carries a DC offset of k * 0.1 mV so a test can tell
where each lead ended up after reordering. Each dataset also contains the corrupt cases the
readers must turn into error rows (documented per function).
"""

from __future__ import annotations

import datetime
from pathlib import Path

import numpy as np
import pandas as pd

from pulse.schema import STANDARD_LEADS

MIMIC_FILE_ORDER = ["I", "II", "III", "aVR", "aVF", "aVL", "V1", "V2", "V3", "V4", "V5", "V6"]
CODE15_PATIENTS = {101: 7, 102: 7, 103: 8, 104: 9, 105: 10}


def synthetic_leads(n_samples: int, fs: float, seed: int) -> np.ndarray:
    """(12, n) mV in standard order: a 1.2 Hz sine plus lead offset k * 0.1 mV."""
    rng = np.random.default_rng(seed)
    t = np.arange(n_samples) / fs
    base = 0.8 * np.sin(2 * np.pi * 1.2 * t + rng.uniform(0, np.pi))
    return np.stack([base * (1 + 0.05 * k) + 0.1 * k for k in range(12)]).astype(np.float32)


def write_mimic_record(folder: Path, study_id: int, signal_std: np.ndarray, nan_lead: bool = False) -> None:
    import wfdb

    folder.mkdir(parents=True, exist_ok=True)
    file_order = signal_std[[STANDARD_LEADS.index(n) for n in MIMIC_FILE_ORDER]]
    digital = np.round(file_order.T * 200).astype(np.int16)
    if nan_lead:
        digital[:, :] = -32768  # the WFDB format-16 "no sample" value
    wfdb.wrsamp(
        str(study_id),
        fs=500,
        units=["mV"] * 12,
        sig_name=MIMIC_FILE_ORDER,
        d_signal=digital,
        fmt=["16"] * 12,
        adc_gain=[200.0] * 12,
        baseline=[0] * 12,
        write_dir=str(folder),
        base_time=datetime.time(13, 13, 0),
        base_date=datetime.date(2180, 7, 3),
    )


def write_mimic(root: Path) -> Path:
    """Write a MIMIC-IV-ECG layout under ``root``: record_list.csv, machine_measurements.csv, files/pNNNN/pNNNNNNNN/sNNNNNNNN/.

    Studies: 40000001 (normal), 40000002 (same subject, AF report), 40000003 (all samples
    missing -> nan_signal), 40000004 (listed, .dat absent -> missing_file).
    """
    root.mkdir(parents=True, exist_ok=True)
    rows, measurements = [], []
    studies = [(40000001, 10000032), (40000002, 10000032), (40000003, 10000117), (40000004, 10000118)]
    reports = {
        40000001: ["Sinus rhythm", "Normal ECG"],
        40000002: [
            "Atrial fibrillation with rapid ventricular response",
            "Left axis deviation",
            "Abnormal ECG",
        ],
        40000003: ["Sinus bradycardia"],
        40000004: ["Sinus rhythm"],
    }
    for i, (study, subject) in enumerate(studies):
        rel = f"files/p{str(subject)[:4]}/p{subject}/s{study}/{study}"
        folder = root / Path(rel).parent
        write_mimic_record(folder, study, synthetic_leads(5000, 500, seed=i), nan_lead=study == 40000003)
        if study == 40000004:
            (folder / f"{study}.dat").unlink()
        rows.append(
            {
                "subject_id": subject,
                "study_id": study,
                "file_name": study,
                "ecg_time": f"2180-07-0{i + 1} 13:13:00",
                "path": rel,
            }
        )
        report = {f"report_{k}": (reports[study][k] if k < len(reports[study]) else None) for k in range(18)}
        measurements.append(
            {
                "subject_id": subject,
                "study_id": study,
                "cart_id": 6848296,
                "ecg_time": rows[-1]["ecg_time"],
                **report,
                "bandwidth": "0.005-150 Hz",
                "filtering": "60 Hz notch Baseline filter",
                "rr_interval": 659,
                "p_onset": 40,
                "p_end": 128,
                "qrs_onset": 170,
                "qrs_end": 258,
                "t_end": 518,
                "p_axis": 81,
                "qrs_axis": 77,
                "t_axis": 79,
            }
        )
    pd.DataFrame(rows).to_csv(root / "record_list.csv", index=False)
    pd.DataFrame(measurements).to_csv(root / "machine_measurements.csv", index=False)
    return root


def write_code15(root: Path) -> Path:
    """Write a CODE-15% layout under ``root``: exams.csv + exams_part0.hdf5 (tracings (N, 4096, 12) at 400 Hz, exam_id).

    The part holds exams 103, 101, 105, 102 (not CSV order), a padding row (exam_id 0) and exam
    999 that exams.csv lacks. 101 is 10 s (4000 samples, 48 padding), 102 is 7 s (2800, 648 each
    side), 105 is all zeros (-> constant_signal); 104 is in the CSV but in no part.
    """
    import h5py

    root.mkdir(parents=True, exist_ok=True)
    order = [103, 101, 0, 105, 102, 999]
    lengths = {101: 4000, 102: 2800, 103: 4000, 999: 4000}
    tracings = np.zeros((len(order), 4096, 12), dtype=np.float32)
    for row, exam in enumerate(order):
        if exam in lengths:
            n = lengths[exam]
            pad = (4096 - n) // 2
            tracings[row, pad : pad + n, :] = synthetic_leads(n, 400, seed=exam).T
    with h5py.File(root / "exams_part0.hdf5", "w") as handle:
        handle.create_dataset("tracings", data=tracings)
        handle.create_dataset("exam_id", data=np.array(order, dtype=np.int64))
    flags = {101: {"AF": True}, 102: {"1dAVb": True, "RBBB": True}, 103: {}, 104: {}, 105: {}}
    rows = []
    for exam in (101, 102, 103, 104, 105):
        row = {
            "exam_id": exam,
            "age": 40 + exam - 100,
            "is_male": exam % 2 == 1,
            "nn_predicted_age": 50.5,
            **{name: flags[exam].get(name, False) for name in ("1dAVb", "RBBB", "LBBB", "SB", "ST", "AF")},
            "patient_id": CODE15_PATIENTS[exam],
            "death": None if exam != 101 else False,
            "timey": None if exam != 101 else 3.2,
            "normal_ecg": exam == 103,
            "trace_file": "exams_part0.hdf5",
        }
        rows.append(row)
    pd.DataFrame(rows).to_csv(root / "exams.csv", index=False)
    return root


def main(argv: list[str] | None = None) -> int:
    """``python -m pulse.data_ray.readers.synthetic DIR``: write DIR/mimic and DIR/code15."""
    import argparse

    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("directory", type=Path)
    args = parser.parse_args(argv)
    print(write_mimic(args.directory / "mimic"))
    print(write_code15(args.directory / "code15"))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
