"""One reader per raw ECG source, each reading the dataset's native layout.

Every reader module exposes ``plan(source, storage) -> list[unit]`` (cheap, on the driver: the
metadata tables and file listing, cut to ``source.limit``) and ``read(source, unit, storage,
target_fs) -> list[row]`` (the work: signals decoded into ``RECORD_SCHEMA`` rows; bad inputs
become rows with ``error`` set, never exceptions). Units are small JSON-able dicts, so the
Ray Data job spreads them over workers; :func:`read_source` runs the same two steps in one
process without Ray (tests, the benchmark baseline, notebooks).

| kind | module | datasets it yields |
|---|---|---|
| ptbxl | :mod:`.ptbxl` | ptbxl |
| mimic | :mod:`.mimic` | mimic |
| code15 | :mod:`.code15` | code15 |
| cinc2021 | :mod:`.cinc2021` | cpsc2018, g12ec, chapman, ningbo (ptbxl on request) |
| ecgqa | :mod:`.ecgqa` | ECG-QA rows (``ecgqa.ECGQA_SCHEMA``), not records |
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from types import ModuleType
from typing import Any

from pulse import io
from pulse.data_ray.readers import cinc2021, code15, ecgqa, mimic, ptbxl
from pulse.data_ray.readers.config import BUNDLED_ROOT, SourceConfig

READERS: dict[str, ModuleType] = {
    "ptbxl": ptbxl,
    "mimic": mimic,
    "code15": code15,
    "cinc2021": cinc2021,
    "ecgqa": ecgqa,
}

__all__ = ["BUNDLED_ROOT", "READERS", "SourceConfig", "plan_source", "read_source", "read_unit"]


def plan_source(source: SourceConfig, storage: io.StorageOptions | None = None) -> list[dict[str, Any]]:
    """The read units of one source (see module doc)."""
    return READERS[source.kind].plan(source, storage)


def read_unit(
    source: SourceConfig,
    unit: dict[str, Any],
    storage: io.StorageOptions | None = None,
    target_fs: float | None = None,
) -> list[dict[str, Any]]:
    """Rows of one unit; ECG-QA rows ignore ``target_fs``."""
    if source.kind == "ecgqa":
        return ecgqa.read(source, unit, storage)
    return READERS[source.kind].read(source, unit, storage, target_fs)


def read_source(
    source: SourceConfig,
    storage: io.StorageOptions | None = None,
    target_fs: float | None = None,
    limit: int | None = None,
) -> Iterator[dict[str, Any]]:
    """Every row of one source in a plain Python loop (no Ray).

    Rows are dicts in ``RECORD_SCHEMA`` layout with ``signal`` as a float32 numpy array
    (leads x samples, mV), or ECG-QA rows for ``kind: ecgqa``. ``limit`` caps the rows yielded
    on top of ``source.limit``.
    """
    rows = (
        row for unit in plan_source(source, storage) for row in read_unit(source, unit, storage, target_fs)
    )
    cap = source.limit if source.kind == "ecgqa" else None
    caps = [c for c in (cap, limit) if c is not None]
    yield from itertools.islice(rows, min(caps)) if caps else rows
