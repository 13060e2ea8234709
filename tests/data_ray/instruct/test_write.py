from __future__ import annotations

import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pulse import io
from pulse.config import ConfigError
from pulse.data_ray.instruct.rows import conversation, instruction_row, shard_of
from pulse.data_ray.instruct.write import (
    ShardWriter,
    completed_shards,
    finalize_llava,
    image_item,
    row_item,
)
from pulse.schema import INSTRUCTION_SCHEMA

PNG = b"\x89PNG\r\n\x1a\nfake-but-opaque-bytes"


def rows_for(record_id: str, split: str, shards: int) -> list[dict]:
    record = {
        "record_id": record_id,
        "dataset": record_id.split("/")[0],
        "split": split,
        "shard": shard_of(record_id, shards),
        "labels_std": ["AF"],
    }
    make = lambda key, q, a: instruction_row(  # noqa: E731
        record, key, task="rhythm", qtype="close", generator="template:t", conversations=conversation(q, a)
    )
    return [
        make("yn:AF", "Does this ECG show atrial fibrillation? Answer yes or no.", "yes"),
        make("dup", "Does this ECG show atrial fibrillation? Answer yes or no.", "yes"),
        make("rate", "Is the heart rate slow, normal or fast?", "fast"),
    ]


def group_table(rows: list[dict], images: dict[str, bytes], shards: int) -> pa.Table:
    items = [row_item(r) for r in rows]
    items += [
        image_item({"record_id": rid, "image": data, "image_format": "png"}, shards)
        for rid, data in images.items()
    ]
    return pa.Table.from_pylist(items)


def test_shard_writer_writes_parquet_llava_errors_and_marker(tmp_path):
    shards = 1
    rows = rows_for("cpsc2018/A0689", "train", shards) + rows_for("cpsc2018/A1041", "test", shards)
    rows += rows_for("g12ec/E03823", "train", shards)  # no image for this record
    writer = ShardWriter(io.Folder(str(tmp_path)), shards, llava=True, dedupe={"threshold": 0.85, "k": 3})
    result = writer(group_table(rows, {"cpsc2018/A0689": PNG, "cpsc2018/A1041": PNG}, shards))
    marker = json.loads(result.to_pylist()[0]["marker"])
    assert marker["rows_ok"] == 4 and marker["splits"] == {"train": 2, "test": 2}
    assert marker["errors"] == {"missing_image": 2, "near_duplicate": 3}  # dedupe runs before the image check

    train = pq.read_table(tmp_path / "parquet" / "split=train" / "shard-00000.parquet")
    assert train.schema.equals(INSTRUCTION_SCHEMA)
    first = train.to_pylist()[0]
    assert first["image"] == PNG and first["image_path"] == "images/cpsc2018/A0689.png"
    assert (tmp_path / "llava" / "images" / "cpsc2018" / "A0689.png").read_bytes() == PNG
    errors = pq.read_table(tmp_path / "errors" / "shard-00000.parquet").to_pylist()
    assert sorted(e["error"].split(":")[0] for e in errors) == ["missing_image"] * 2 + ["near_duplicate"] * 3
    assert all(e["image"] is None for e in errors)
    assert completed_shards(str(tmp_path), shards) == {0: marker}
    with pytest.raises(ConfigError, match="num_shards=1"):
        completed_shards(str(tmp_path), 8)


def test_finalize_llava_joins_shard_parts(tmp_path):
    shards = 2
    by_shard: dict[int, list[dict]] = {}
    for record_id in ("chapman/JS01048", "chapman/JS01560", "ningbo/JS11438", "g12ec/E01137"):
        by_shard.setdefault(shard_of(record_id, shards), []).extend(rows_for(record_id, "train", shards)[:1])
    assert len(by_shard) == 2
    writer = ShardWriter(io.Folder(str(tmp_path)), shards, llava=True, dedupe=None)
    for rows in by_shard.values():
        writer(group_table(rows, {r["record_id"]: PNG for r in rows}, shards))
    paths = finalize_llava(str(tmp_path))
    merged = json.loads((tmp_path / "llava" / "train.json").read_text())
    assert paths == {"train": str(tmp_path / "llava" / "train.json")}
    assert len(merged) == 4 and all(set(item) == {"id", "image", "conversations"} for item in merged)
    assert all((tmp_path / "llava" / item["image"]).exists() for item in merged)
    assert merged[0]["conversations"][0]["value"].startswith("<image>\n")
