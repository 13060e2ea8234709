"""Record, image and ECG-QA Parquet for build tests, made from the bundled real records.

Records: real CinC-2021 records (signal = ``val`` / 1000 mV, labels from ``# Dx:`` through the
dx_mapping CSVs), with the real PTB-XL report text for the HR records (joined on ecg_id), one
ingest error row (the Georgia E00271 header case), written in RECORD_SCHEMA. Signals are cut to
500 samples: the builder never reads them. Images are small real PNGs drawn with PIL (the
renderer is another stage); one record deliberately has no image. ECG-QA rows are the bundled
single-ECG and comparison samples in the ingest's ECGQA_SCHEMA.
"""

from __future__ import annotations

import ast
import csv
import io as _stdio
import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import scipy.io
from PIL import Image, ImageDraw

from pulse.config import PACKAGE_ROOT
from pulse.schema import IMAGE_SCHEMA, RECORD_SCHEMA, STANDARD_LEADS

REALDATA = PACKAGE_ROOT / "assets" / "realdata"
CINC = REALDATA / "cinc2021"
PREFIX_DATASET = {"A": "cpsc2018", "E": "g12ec", "HR": "ptbxl"}
RECORDS = [
    "A0689",
    "A1041",
    "A2712",
    "A5215",
    "E00271",
    "E01137",
    "E03823",
    "JS01048",
    "JS01560",
    "JS11438",
    "HR06000",
    "HR06001",
    "HR07911",
]
NO_IMAGE = "g12ec/E03823"
REPORT_LANG = {"sinus": "en", "rhythm": "en", "normal": "en"}


def dataset_of(name: str) -> str:
    if name.startswith("JS"):
        return "chapman" if int(name[2:]) <= 10646 else "ningbo"
    return PREFIX_DATASET["HR" if name.startswith("HR") else name[0]]


def snomed_table() -> dict[str, str]:
    table = {}
    for filename in ("dx_mapping_scored.csv", "dx_mapping_unscored.csv"):
        with open(CINC / filename, newline="") as handle:
            for row in csv.DictReader(handle):
                table[row["SNOMEDCTCode"]] = row["Abbreviation"]
    return table


def ptbxl_rows() -> dict[int, dict]:
    with open(REALDATA / "ptbxl" / "ptbxl_database_subset.csv", newline="") as handle:
        return {int(row["ecg_id"]): row for row in csv.DictReader(handle)}


def guess_lang(report: str) -> str:
    words = set(report.lower().replace(".", " ").split())
    return (
        "en"
        if words & {"sinus", "rhythm", "normal", "ecg"} and not words & {"sinusrhythmus", "normal-ekg"}
        else "de"
    )


def superclasses(scp_codes: str) -> list[str]:
    classes = {}
    with open(REALDATA / "ptbxl" / "scp_statements.csv", newline="") as handle:
        for row in csv.DictReader(handle):
            if row["diagnostic"] == "1.0":
                classes[row[""]] = row["diagnostic_class"]
    return sorted({classes[c] for c in ast.literal_eval(scp_codes) if c in classes})


def record_row(name: str, snomed: dict[str, str], ptbxl: dict[int, dict]) -> dict:
    dataset = dataset_of(name)
    native = str(int(name[2:])) if dataset == "ptbxl" else name
    header = (CINC / "records" / f"{name}.hea").read_text().splitlines()
    comments = dict(
        (part.strip() for part in line.lstrip("#").split(":", 1))
        for line in header
        if line.startswith("#") and ":" in line
    )
    codes = [c.strip() for c in comments.get("Dx", "").split(",") if c.strip()]
    row = {c: None for c in RECORD_SCHEMA.names}
    row.update(
        record_id=f"{dataset}/{native}", dataset=dataset, split="test" if name.endswith("1") else "train"
    )
    if name == "E00271":  # the real wfdb-rejected header: an ingest error row
        return {
            **row,
            "labels": [],
            "labels_std": [],
            "superclasses": [],
            "lead_names": [],
            "signal": [],
            "error": "header_error: record name line reads 'E00271.mat'",
        }
    signal = scipy.io.loadmat(CINC / "records" / f"{name}.mat")["val"][:, :500] / 1000.0
    report, lang, supers = None, None, []
    if dataset == "ptbxl" and int(native) in ptbxl:
        meta = ptbxl[int(native)]
        report, supers = meta["report"], superclasses(meta["scp_codes"])
        lang = guess_lang(report)
    row.update(
        fs=500.0,
        lead_names=list(STANDARD_LEADS),
        signal=signal.astype(np.float32).tolist(),
        n_samples=signal.shape[1],
        age=float(comments.get("Age", "nan")) if comments.get("Age", "").isdigit() else None,
        sex=comments.get("Sex"),
        labels=codes,
        labels_std=sorted({snomed[c] for c in codes if c in snomed}),
        superclasses=supers,
        report=report,
        report_lang=lang,
        source_path=f"cinc2021/records/{name}.hea",
    )
    return row


def png_bytes(text: str) -> bytes:
    image = Image.new("RGB", (96, 64), "white")
    ImageDraw.Draw(image).text((4, 24), text[-12:], fill="black")
    buffer = _stdio.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def write_inputs(root: Path) -> dict[str, str]:
    """records/, ecgqa/ and images/ Parquet under ``root``; returns their dirs."""
    snomed, ptbxl = snomed_table(), ptbxl_rows()
    records = [record_row(name, snomed, ptbxl) for name in RECORDS]
    (root / "records" / "records").mkdir(parents=True)
    pq.write_table(
        pa.Table.from_pylist(records, schema=RECORD_SCHEMA), root / "records" / "records" / "part-0.parquet"
    )
    images = []
    for record in records:
        if record["record_id"] == NO_IMAGE:
            continue
        image = {c: None for c in IMAGE_SCHEMA.names}
        image.update(
            record_id=record["record_id"],
            image=png_bytes(record["record_id"]),
            image_format="png",
            width=96,
            height=64,
            dpi=100,
            layout="3x4",
            distortions="{}",
            leads=[],
        )
        images.append(image)
    (root / "images" / "images").mkdir(parents=True)
    pq.write_table(
        pa.Table.from_pylist(images, schema=IMAGE_SCHEMA), root / "images" / "images" / "part-0.parquet"
    )
    qa = json.loads((REALDATA / "ecgqa" / "qa_on_realdata_ptbxl_ids.json").read_text())
    wanted = {"ptbxl/6000", "ptbxl/6001", "ptbxl/7911"}
    rows = []
    for sample in qa:
        ids = [f"ptbxl/{i}" for i in sample["ecg_id"]]
        if not set(ids) & wanted:
            continue
        rows.append(
            {
                "question_id": sample["question_id"],
                "sample_id": sample["sample_id"],
                "template_id": sample["template_id"],
                "question": sample["question"],
                "answer": sample["answer"],
                "question_type": sample["question_type"],
                "attribute_type": sample["attribute_type"],
                "attribute": sample["attribute"] or [],
                "ecg_ids": sample["ecg_id"],
                "record_ids": ids,
                "split": "train",
                "source_file": sample["source_file"],
                "error": None,
            }
        )
    (root / "records" / "ecgqa").mkdir(parents=True)
    pq.write_table(pa.Table.from_pylist(rows), root / "records" / "ecgqa" / "part-0.parquet")
    return {"records_dir": str(root / "records"), "images_dir": str(root / "images")}


@pytest.fixture(scope="session")
def build_inputs(tmp_path_factory) -> dict[str, str]:
    """Local records/ecgqa/images Parquet dirs made from the bundled real records."""
    return write_inputs(tmp_path_factory.mktemp("build-inputs"))
