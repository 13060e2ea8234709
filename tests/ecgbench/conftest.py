"""ECGBench test helpers: HF-layout Parquet and converted-JSON subsets built from the real fixtures."""

from __future__ import annotations

import io as stdio
import json
from pathlib import Path

import pyarrow as pa
import pytest
from PIL import Image

from pulse import io

FIXTURES = Path(__file__).resolve().parents[1] / "data" / "ecgbench_fixtures"

TURN = pa.struct([("from", pa.string()), ("value", pa.string())])
QA_TURN = pa.struct([("from", pa.string()), ("value", pa.list_(pa.string()))])
ARENA_TURN = pa.struct([("question", pa.string()), ("answer", pa.string())])
IMAGE = pa.struct([("bytes", pa.binary()), ("path", pa.string())])


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


@pytest.fixture
def png():
    return png_bytes()
