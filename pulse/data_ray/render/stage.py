"""The render stage: a Ray Data ``map_batches`` callable from record rows to image rows.

``RenderStage`` builds its ``Renderer`` (textures, grid cache, fonts) once per worker in
``__init__``; ``__call__`` takes a pyarrow batch of records (``pulse.schema.RECORD_SCHEMA``)
and returns a pyarrow table of ``pulse.schema.IMAGE_SCHEMA`` rows. A record that cannot be
rendered, or that arrives with an ingest error, becomes a row with ``error`` set.
"""

from __future__ import annotations

import hashlib
import itertools
import json
from typing import Any

import numpy as np
import pyarrow as pa

from pulse.data_ray.render.renderer import RecordError, RenderedImage, Renderer, RenderParams
from pulse.data_ray.stage import Stage
from pulse.schema import IMAGE_SCHEMA, LEAD_BOX_TYPE

INPUT_COLUMNS = ("record_id", "fs", "lead_names", "signal")
OPTIONAL_COLUMNS = ("age", "sex", "recorded_at", "error")
OUTPUT_COLUMNS = tuple(IMAGE_SCHEMA.names)


def record_seed(base_seed: int, record_id: str) -> int:
    """A stable per-record seed (same across processes and machines, unlike ``hash``)."""
    digest = hashlib.sha256(f"{base_seed}:{record_id}".encode()).digest()
    return int.from_bytes(digest[:8], "little") >> 1


def _signals(column: pa.ChunkedArray | pa.Array) -> list[np.ndarray | list[np.ndarray]]:
    """Each row's signal as a (leads x samples) array (or per-lead arrays when lengths differ)."""
    column = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
    out: list[Any] = []
    for i in range(len(column)):
        if not column[i].is_valid:
            out.append(np.zeros((0, 0), np.float32))
            continue
        leads = column[i].values
        values = leads.flatten().to_numpy(zero_copy_only=False).astype(np.float32, copy=False)
        offsets = leads.offsets.to_numpy()
        offsets = offsets - offsets[0]
        lengths = np.diff(offsets)
        if len(lengths) and (lengths == lengths[0]).all():
            out.append(values.reshape(len(lengths), int(lengths[0])))
        else:
            out.append([values[a:b] for a, b in itertools.pairwise(offsets)])
    return out


def _leads_array(per_row: list[list[dict[str, Any]]]) -> pa.ListArray:
    """Build the ``leads`` column (list<LEAD_BOX_TYPE>) from numpy coordinates without Python loops over samples."""
    flat = [lead for leads in per_row for lead in leads]
    offsets = np.cumsum([0] + [len(leads) for leads in per_row]).astype(np.int32)

    def float_lists(key: str) -> pa.ListArray:
        arrays = [np.asarray(lead[key], dtype=np.float32) for lead in flat]
        inner = np.cumsum([0] + [len(a) for a in arrays]).astype(np.int32)
        values = np.concatenate(arrays) if arrays else np.zeros(0, np.float32)
        return pa.ListArray.from_arrays(pa.array(inner), pa.array(values, pa.float32()))

    struct = pa.StructArray.from_arrays(
        [
            pa.array([lead["name"] for lead in flat], pa.string()),
            float_lists("bbox"),
            float_lists("x"),
            float_lists("y"),
            pa.array([lead["start_sample"] for lead in flat], pa.int32()),
            pa.array([lead["end_sample"] for lead in flat], pa.int32()),
            pa.array([lead["missing"] for lead in flat], pa.bool_()),
        ],
        fields=list(LEAD_BOX_TYPE),
    )
    return pa.ListArray.from_arrays(pa.array(offsets), struct)


def image_rows(record_ids: list[str], results: list[RenderedImage | str]) -> pa.Table:
    """IMAGE_SCHEMA table: one row per record, a rendered image or an error string."""
    ok = [r if isinstance(r, RenderedImage) else None for r in results]
    columns = {
        "record_id": pa.array(record_ids, pa.string()),
        "image": pa.array([r.encoded if r else None for r in ok], pa.binary()),
        "image_format": pa.array([r.image_format if r else None for r in ok], pa.string()),
        "width": pa.array([r.width if r else None for r in ok], pa.int32()),
        "height": pa.array([r.height if r else None for r in ok], pa.int32()),
        "dpi": pa.array([r.dpi if r else None for r in ok], pa.int32()),
        "layout": pa.array([r.layout if r else None for r in ok], pa.string()),
        "distortions": pa.array([json.dumps(r.distortions) if r else None for r in ok], pa.string()),
        "leads": _leads_array([r.leads if r else [] for r in ok]),
        "error": pa.array([None if r else e for r, e in zip(ok, results, strict=True)], pa.string()),
    }
    return pa.Table.from_pydict(columns, schema=IMAGE_SCHEMA)


class RenderStage(Stage):
    """Records in, image rows out: ``map_stage(ds, RenderStage, kwargs={"params": ...})``."""

    name = "render"
    input_columns = INPUT_COLUMNS
    optional_columns = OPTIONAL_COLUMNS
    output_columns = OUTPUT_COLUMNS
    crash_reason = "render_failed"

    def __init__(self, params: RenderParams | dict[str, Any]):
        self.params = params if isinstance(params, RenderParams) else RenderParams.model_validate(params)
        self.renderer = Renderer(self.params)

    def render_one(self, record: dict[str, Any]) -> RenderedImage | str:
        """A rendered image, or the ``"<reason>: <detail>"`` error for this record."""
        return self.guarded(self._render, record)

    def _render(self, record: dict[str, Any]) -> RenderedImage | str:
        try:
            return self.renderer.render(record, record_seed(self.params.seed, str(record["record_id"])))
        except RecordError as exc:  # the renderer's own refusal of this record, already "<reason>: …"
            return str(exc)

    def __call__(self, batch: pa.Table) -> pa.Table:
        present = [c for c in self.read_columns(batch.column_names) if c != "signal"]
        rows = batch.select(present).to_pylist()
        signals = _signals(batch.column("signal"))
        results = []
        for row, signal in zip(rows, signals, strict=True):
            row["signal"] = signal
            results.append(self.render_one(row))
        return image_rows([str(r["record_id"]) for r in rows], results)
