"""Render record Parquet into paper-ECG images (image Parquet, optional PNG/JPEG files).

Reads ``<input_dir>/records/*.parquet`` (an ingest output, local or s3://), renders every
record with Ray Data ``map_batches`` (one Renderer per worker), and writes
``<output_dir>/images/*.parquet`` (images inline, with per-lead pixel coordinates),
``<output_dir>/errors/*.parquet`` (records that could not be drawn, with a reason),
optionally ``<output_dir>/files/<dataset>/<id>.<ext>``, and ``run_info.json``.
A rerun of the same config on a finished output has nothing to do; an interrupted one is redone
(its partial parts removed first); a changed config is refused unless ``overwrite=true``.

Example:
    pulse render --config configs/render/demo.yaml run_dir=outputs   # = input_dir=outputs/ingest output_dir=outputs/render \\
        params.layout=6x2 params.clean_fraction=1.0
"""

from __future__ import annotations

import time
from typing import ClassVar

from pydantic import Field

from pulse import io, resume
from pulse.config import StrictModel, write_run_info
from pulse.data_ray.first_rows import first_rows
from pulse.data_ray.render.renderer import RenderParams
from pulse.data_ray.render.sink import ImageRowsDatasink
from pulse.data_ray.render.stage import RenderStage
from pulse.data_ray.stage import map_stage
from pulse.progress import Progress
from pulse.run_layout import RENDER_LAYOUT, Layout
from pulse.runtime import RayOptions, init_ray
from pulse.summary import StageSummary


class RenderConfig(StrictModel):
    """The ``pulse render`` job."""

    RUN_LAYOUT: ClassVar[Layout] = RENDER_LAYOUT
    """paths filled from ``run_dir=R`` (``pulse.run_layout``)."""

    input_dir: str
    """An ingest output folder; records are read from ``<input_dir>/records/*.parquet``."""
    output_dir: str
    write_files: bool = False
    """Also write each image as a file under ``<output_dir>/files/`` (LLaVA-style folders)."""
    params: RenderParams = RenderParams()
    limit: int | None = Field(None, ge=1)
    """Render only the first N records (smoke runs)."""
    batch_size: int = Field(8, ge=1)
    concurrency: int | tuple[int, int] = 2
    """Render workers (actors): a fixed count or an autoscaling (min, max) range."""
    num_cpus: float = Field(1.0, gt=0)
    """CPUs reserved per render worker."""
    storage: io.StorageOptions = io.StorageOptions()
    ray: RayOptions = RayOptions()
    overwrite: bool = False
    """Remove an earlier render in ``output_dir`` and redo it; without it a rerun with a changed
    config is refused."""


CONFIG_CLASS = RenderConfig
OUTPUTS = ("images", "errors", "files")
NOT_IN_FINGERPRINT = ("output_dir", "batch_size", "concurrency", "num_cpus")
"""Config fields that do not change the rendered images (where they go, how many workers)."""


def run(cfg: RenderConfig) -> StageSummary:
    """Render every record under ``cfg.input_dir``; returns the summary (``pulse.jobs.finish`` prints it)."""
    started = time.time()
    records_dir = io.join(cfg.input_dir, "records")
    if not io.list_files(records_dir, "*.parquet", cfg.storage):
        raise FileNotFoundError(f"render: no record Parquet under {records_dir} (input_dir={cfg.input_dir})")
    state = resume.prepare(
        cfg, cfg.output_dir, "render", outputs=OUTPUTS, ignore=NOT_IN_FINGERPRINT, storage=cfg.storage
    )
    if state.status == "done":
        print(resume.nothing_to_do("render", cfg.output_dir), flush=True)
        return StageSummary(**state.done)
    if state.status == "resume":  # interrupted: its parts have random names, so start the parts over
        for name in OUTPUTS:
            io.delete(io.join(cfg.output_dir, name), cfg.storage)
    ray = init_ray(cfg.ray)
    ds = ray.data.read_parquet(**io.ray_read_args(records_dir, cfg.storage), file_extensions=["parquet"])
    ds = ds.select_columns(RenderStage.read_columns(ds.schema().names))
    ds = first_rows(ds, cfg.limit)
    # Ingest may write few large files; split them so every render worker (and node) gets batches.
    # The row count comes from the Parquet footers: ds.count() here would read every signal once more.
    rows = io.count_parquet_rows(records_dir, cfg.storage)
    rows = min(rows, cfg.limit) if cfg.limit else rows
    ds = ds.repartition(max(1, -(-rows // cfg.batch_size)))
    images = map_stage(
        ds,
        RenderStage,
        kwargs={"params": cfg.params.model_dump(mode="json")},
        workers=cfg.concurrency,
        batch_size=cfg.batch_size,
        num_cpus=cfg.num_cpus,
    )
    with Progress(ray, "render", total=rows, unit="records") as progress:
        sink = ImageRowsDatasink(cfg.output_dir, cfg.storage, cfg.write_files, progress.counter)
        images.write_datasink(sink)
    write_run_info(cfg, cfg.output_dir, "render", cfg.storage)
    seconds = time.time() - started
    outputs = {
        "images": io.join(cfg.output_dir, "images"),
        "errors": io.join(cfg.output_dir, "errors"),
    }
    if cfg.write_files:
        outputs["files"] = io.join(cfg.output_dir, "files")
    total = sink.rows_ok + sum(sink.errors_by_reason.values())
    summary = StageSummary(
        "render",
        rows_ok=sink.rows_ok,
        rows_error=total - sink.rows_ok,
        errors_by_reason=sink.errors_by_reason,
        outputs=outputs,
        seconds=seconds,
        extra={"images_per_s": round(sink.rows_ok / max(seconds, 1e-9), 2)},
    )
    resume.mark_done(cfg.output_dir, summary.__dict__, cfg.storage)
    return summary
