"""Inputs of the build: record metadata, ECG-QA rows and images, keyed for the shard join.

Only the columns the build needs are read (never the signal). Records and images meet in the
shard writer (:mod:`write`): both are keyed by ``hash(record_id) % num_shards``, which joins
them by ``record_id`` with one shuffle and no extra dependency.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

import numpy as np

from pulse import io
from pulse.config import ConfigError
from pulse.data_ray.first_rows import first_rows
from pulse.data_ray.instruct.rows import RECORD_COLUMNS, shard_of

IMAGE_COLUMNS = ("record_id", "image", "image_format", "error")


def _parquet_dir(
    root: str, name: str, storage: io.StorageOptions | None, required: bool = True
) -> str | None:
    path = io.join(root, name)
    if io.list_files(path, "*.parquet", storage):
        return path
    if required:
        raise ConfigError(f"no Parquet files under {path} (expected the output of the previous stage)")
    return None


def read_records(records_dir: str, storage: io.StorageOptions | None, limit: int | None = None):
    """Record metadata (:data:`RECORD_COLUMNS`) from ``<records_dir>/records/*.parquet``."""
    import ray.data

    path = _parquet_dir(records_dir, "records", storage)
    ds = ray.data.read_parquet(**io.ray_read_args(path, storage), columns=list(RECORD_COLUMNS))
    return first_rows(ds, limit)


def read_ecgqa(records_dir: str, storage: io.StorageOptions | None):
    """ECG-QA rows from ``<records_dir>/ecgqa/*.parquet``, or None when there are none."""
    import ray.data

    path = _parquet_dir(records_dir, "ecgqa", storage, required=False)
    return ray.data.read_parquet(**io.ray_read_args(path, storage)) if path else None


def read_images(images_dir: str, storage: io.StorageOptions | None):
    """Images (:data:`IMAGE_COLUMNS`) from ``<images_dir>/images/*.parquet``."""
    import ray.data

    path = _parquet_dir(images_dir, "images", storage)
    return ray.data.read_parquet(**io.ray_read_args(path, storage), columns=list(IMAGE_COLUMNS))


def add_shard(row: dict[str, Any], num_shards: int) -> dict[str, Any]:
    return {**row, "shard": shard_of(row["record_id"], num_shards)}


def not_in_shards(done: Collection[int], num_shards: int):
    """Row predicate: the row's record is in a shard that is still to be written."""
    done = frozenset(done)
    return lambda row: shard_of(row["record_id"], num_shards) not in done


def record_ids_of(ds) -> set[str]:
    """The distinct ``record_id`` values of a dataset (deduplicated per block, then here)."""

    def unique(batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        return {"record_id": np.unique(batch["record_id"].astype(str))}

    ids = ds.select_columns(["record_id"]).map_batches(unique, batch_format="numpy")
    return {row["record_id"] for row in ids.take_all()}
