"""ECGBench test helpers: HF-layout Parquet and converted-JSON subsets built from the real fixtures."""

from __future__ import annotations

import io as stdio
import json
from pathlib import Path

import pyarrow as pa
import pytest
from PIL import Image

from pulse import io
from pulse.schema import IMAGE_SCHEMA, RECORD_SCHEMA

FIXTURES = Path(__file__).resolve().parents[1] / "data" / "ecgbench_fixtures"

TURN = pa.struct([("from", pa.string()), ("value", pa.string())])
QA_TURN = pa.struct([("from", pa.string()), ("value", pa.list_(pa.string()))])
ARENA_TURN = pa.struct([("question", pa.string()), ("answer", pa.string())])
IMAGE = pa.struct([("bytes", pa.binary()), ("path", pa.string())])
MANY = [f"L{i:02d}" for i in range(12)]  # > 9 labels: own items become MCQ


def png_bytes(color: int = 200) -> bytes:
    buf = stdio.BytesIO()
    Image.new("RGB", (8, 8), (color, color, color)).save(buf, format="PNG")
    return buf.getvalue()


def fixture_rows(name: str) -> list[dict]:
    return json.loads((FIXTURES / name).read_text())["rows"]


def write_hf_subset(root: str, subset: str, rows: list[dict]) -> str:
    """Write rows ({id, conversations}) as ``<root>/<subset>/test-00000-of-00001.parquet`` (HF layout)."""
    turn = {"ecgqa-test": QA_TURN, "arena": ARENA_TURN}.get(subset, TURN)
    schema = pa.schema(
        [
            ("id", pa.string()),
            ("image_path", pa.string()),
            ("image", IMAGE),
            ("conversations", pa.list_(turn)),
        ]
    )
    table = pa.Table.from_pylist(
        [
            {
                "id": r["id"],
                "image_path": f"{subset}/{r['id']}.png",
                "image": {"bytes": png_bytes(i % 250), "path": f"{r['id']}.png"},
                "conversations": r["conversations"],
            }
            for i, r in enumerate(rows)
        ],
        schema=schema,
    )
    path = io.join(root, subset, "test-00000-of-00001.parquet")
    io.write_parquet(table, path)
    return path


def mcq_rows(prefix: str, golds: list[str]) -> list[dict]:
    return [
        {
            "id": f"{prefix}-{i}",
            "conversations": [
                {"from": "human", "value": "<image>\nWhich rhythm?\nA. NORM\nB. AF\nC. ...\nH. SB"},
                {"from": "gpt", "value": gold},
            ],
        }
        for i, gold in enumerate(golds)
    ]


def ecgqa_rows() -> list[dict]:
    prompt = (
        "<image>\nQuestion: Does this ECG show left ventricular hypertrophy?\nOptions: no, not sure, yes\n"
        "Only answer based on the given Options without any explanation."
    )
    return [
        {
            "id": "ecgqa-0",
            "conversations": [{"from": "human", "value": [prompt]}, {"from": "gpt", "value": ["no"]}],
        },
        {
            "id": "ecgqa-1",
            "conversations": [{"from": "human", "value": [prompt]}, {"from": "gpt", "value": ["not sure"]}],
        },
    ]


def arena_rows() -> list[dict]:
    return [
        {
            "id": "arena-0",
            "conversations": [
                {"question": "<image>\nWhat is the rhythm?", "answer": "Sinus rhythm."},
                {"question": "Is the axis normal?", "answer": "Yes, the axis is normal."},
                {"question": "Any ST changes?", "answer": "No."},
            ],
        }
    ]


def own_record(record_id: str, dataset: str, split: str, labels_std=(), superclasses=(), error=None) -> dict:
    """A RECORD_SCHEMA row with only what ``own_items`` reads."""
    row = {name: None for name in RECORD_SCHEMA.names}
    row.update(
        record_id=record_id,
        dataset=dataset,
        split=split,
        lead_names=[],
        signal=[],
        labels=list(labels_std),
        labels_std=list(labels_std),
        superclasses=list(superclasses),
        error=error,
    )
    return row


def write_own_inputs(tmp_path, records: list[dict], with_image: set[str]) -> tuple[str, str]:
    """Ingest-like and render-like Parquet folders; returns ``(records_dir, images_dir)``."""
    records_dir, images_dir = str(tmp_path / "ingest"), str(tmp_path / "render")
    io.write_parquet(
        pa.Table.from_pylist(records, schema=RECORD_SCHEMA), io.join(records_dir, "records", "a.parquet")
    )
    images = [
        {"record_id": r, "image": b"\x89PNG-" + r.encode(), "image_format": "png", "leads": [], "error": None}
        for r in sorted(with_image)
    ]
    io.write_parquet(
        pa.Table.from_pylist(images, schema=IMAGE_SCHEMA), io.join(images_dir, "images", "a.parquet")
    )
    return records_dir, images_dir


@pytest.fixture
def png():
    return png_bytes()
