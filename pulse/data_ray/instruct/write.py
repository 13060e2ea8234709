"""Write the build: sharded Parquet with images inline, the LLaVA JSON layout, errors, resume markers.

A record's instructions all live in shard ``hash(record_id) % num_shards``. Instruction rows and
image rows are keyed by that shard and grouped, so one task per shard sees a record's rows and
its image together: it removes near duplicates, attaches the image and writes

- ``parquet/split=<split>/shard-NNNNN.parquet`` (:data:`pulse.schema.INSTRUCTION_SCHEMA`),
- ``llava/images/<record_id>.<fmt>`` and ``llava/_parts/<split>/shard-NNNNN.json``,
- ``errors/shard-NNNNN.parquet`` (every dropped row, with its reason; the one ``ErrorSink``),
- ``_progress/shard-NNNNN.json`` last: its counts, and the marker a rerun uses to skip the shard.

:func:`finalize_llava` joins the parts into ``llava/<split>.json`` once every shard is written.
"""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

import pyarrow as pa

from pulse import io
from pulse.config import ConfigError
from pulse.data_ray.instruct.dedupe import drop_near_duplicates
from pulse.data_ray.instruct.rows import shard_of, with_error
from pulse.error_sink import ErrorSink
from pulse.progress import report
from pulse.schema import INSTRUCTION_SCHEMA

HIST_BINS = 20  # judge-score histogram over [0, 5] in steps of 0.25


def shard_name(shard: int) -> str:
    return f"shard-{shard:05d}"


def completed_shards(
    output_dir: str, num_shards: int, storage: io.StorageOptions | None = None
) -> dict[int, dict]:
    """Markers of shards a previous run finished; a different ``num_shards`` is an error."""
    done: dict[int, dict] = {}
    for path in io.list_files(io.join(output_dir, "_progress"), "shard-*.json", storage):
        marker = json.loads(io.read_text(path, storage))
        if marker["num_shards"] != num_shards:
            raise ConfigError(
                f"{output_dir} was written with write.num_shards={marker['num_shards']}, not {num_shards}; "
                "use a new output_dir or the same num_shards to resume"
            )
        done[int(marker["shard"])] = marker
    return done


def image_item(row: dict[str, Any], num_shards: int) -> dict[str, Any]:
    """An image row keyed by its record's shard (payload: format and any render error)."""
    return {
        "shard": shard_of(row["record_id"], num_shards),
        "kind": "image",
        "record_id": row["record_id"],
        "image": row["image"],
        "payload": json.dumps({"image_format": row.get("image_format") or "png", "error": row.get("error")}),
    }


def row_item(row: dict[str, Any]) -> dict[str, Any]:
    """An instruction row keyed by its shard (payload: the row as JSON, so no column types clash)."""
    return {
        "shard": int(row["shard"]),
        "kind": "row",
        "record_id": row["record_id"],
        "image": b"",  # empty, not None: a null-typed block would not concatenate with binary ones
        "payload": json.dumps(row),
    }


def image_path(record_id: str, image_format: str) -> str:
    """Relative path (inside ``llava/``) of a record's image."""
    safe = record_id.replace("#", "_").replace("..", "_")
    return f"images/{safe}.{image_format.lower()}"


def histogram(scores: list[float]) -> list[int]:
    counts = [0] * HIST_BINS
    for score in scores:
        counts[min(HIST_BINS - 1, max(0, int(score / 5.0 * HIST_BINS)))] += 1
    return counts


class ShardWriter:
    """Writes one shard per group (see module docstring); returns one summary row per shard."""

    def __init__(
        self,
        output: io.Folder,
        num_shards: int,
        llava: bool = True,
        dedupe: dict[str, Any] | None = None,
        progress: Any = None,
    ):
        self.output = output
        self.errors = ErrorSink(output)
        self.num_shards = num_shards
        self.llava = llava
        self.dedupe = dedupe
        self.progress = progress  # a pulse.progress counter handle: one count per written shard

    def __call__(self, group: pa.Table) -> pa.Table:
        items = group.to_pylist()
        shard = int(items[0]["shard"])
        images: dict[str, tuple[bytes, str, str | None]] = {}
        rows_by_record: dict[str, list[dict[str, Any]]] = {}
        for item in items:
            payload = json.loads(item["payload"])
            if item["kind"] == "image":
                images.setdefault(
                    item["record_id"], (item["image"], payload["image_format"], payload["error"])
                )
            else:
                rows_by_record.setdefault(item["record_id"], []).append(payload)
        kept: list[dict[str, Any]] = []
        dropped: list[dict[str, Any]] = []
        for record_id, rows in sorted(rows_by_record.items()):
            if self.dedupe:
                rows = drop_near_duplicates(rows, **self.dedupe)
            image = images.get(record_id)
            for row in rows:
                if not row.get("error") and (image is None or image[0] is None or image[2]):
                    detail = image[2] if image and image[2] else "no image row for this record"
                    row = with_error(row, "missing_image", detail)
                (dropped if row.get("error") else kept).append(row)
        marker = self._write(shard, kept, dropped, images)
        report(self.progress, 1)
        return pa.Table.from_pylist([{"shard": shard, "marker": json.dumps(marker)}])

    def _write(self, shard: int, kept, dropped, images) -> dict[str, Any]:
        name = shard_name(shard)
        by_split: dict[str, list[dict[str, Any]]] = {}
        for row in kept:
            by_split.setdefault(row["split"], []).append(row)
        written_images: set[str] = set()
        for split, rows in sorted(by_split.items()):
            records = []
            llava_rows = []
            for row in sorted(rows, key=lambda r: r["id"]):
                data, fmt, _ = images[row["record_id"]]
                rel = image_path(row["record_id"], fmt)
                records.append({**_public(row), "image": data, "image_path": rel})
                llava_rows.append({"id": row["id"], "image": rel, "conversations": row["conversations"]})
                if self.llava and rel not in written_images:
                    self.output.write_bytes(data, "llava", *rel.split("/"))
                    written_images.add(rel)
            table = pa.Table.from_pylist(records, schema=INSTRUCTION_SCHEMA)
            self.output.write_parquet(table, "parquet", f"split={split}", f"{name}.parquet")
            if self.llava:
                part = json.dumps(llava_rows, ensure_ascii=False)
                self.output.write_text(part, "llava", "_parts", split, f"{name}.json")
        table = pa.Table.from_pylist(
            [{**_public(r), "image": None} for r in dropped], schema=INSTRUCTION_SCHEMA
        )
        errors = self.errors.write(table, name)
        marker = {
            "shard": shard,
            "num_shards": self.num_shards,
            "rows_ok": len(kept),
            "splits": dict(Counter(r["split"] for r in kept)),
            "cells": dict(Counter(f"{r['source']}/{r['task']}/{r['qtype']}" for r in kept)),
            "errors": errors,
            "judge_kept": histogram([r["judge_score"] for r in kept if r.get("judge_score") is not None]),
            "judge_dropped": histogram(
                [r["judge_score"] for r in dropped if r.get("judge_score") is not None]
            ),
        }
        self.output.write_text(json.dumps(marker), "_progress", f"{name}.json")
        return marker


def _public(row: dict[str, Any]) -> dict[str, Any]:
    return {name: row.get(name) for name in INSTRUCTION_SCHEMA.names if name not in ("image", "image_path")}


def finalize_llava(output_dir: str, storage: io.StorageOptions | None = None) -> dict[str, str]:
    """Join every shard's LLaVA part into ``llava/<split>.json``; returns split -> path."""
    parts_root = io.join(output_dir, "llava", "_parts")
    by_split: dict[str, list[str]] = {}
    for path in io.list_files(parts_root, "shard-*.json", storage):
        split = path.replace("\\", "/").rsplit("/", 2)[-2]
        by_split.setdefault(split, []).append(path)
    written = {}
    for split, paths in sorted(by_split.items()):
        # Concatenate the JSON arrays as text: the merged file is never held as Python objects.
        bodies = [io.read_text(p, storage).strip()[1:-1].strip() for p in sorted(paths)]
        target = io.join(output_dir, "llava", f"{split}.json")
        io.write_text(target, "[" + ",\n".join(b for b in bodies if b) + "]", storage)
        written[split] = target
    return written
