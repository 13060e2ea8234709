"""Weighted mixtures of instruction sources (ECGInstruct, ``pulse build`` output, own LLaVA JSON).

:func:`load_or_resolve` fixes the mixture once per run and writes it to ``<run>/mixture.json``
beside the checkpoints: per source its Parquet files, available rows, weight and the rows it
contributes per epoch (``mixture_size * weight / sum(weights)``, largest-remainder rounding, so
the rows sum to ``mixture_size`` exactly), plus the seed. A rerun of the same run name reads the
file back, so a resumed run trains on the same files and per-source counts even if a source folder
has grown since; changing sources, weights, size or seed under the same name is an error.

:func:`mixed_dataset` realises it in Ray Data: a source with fewer rows than its share is
repeated whole and topped up, one with more is cut to its share after a seeded file shuffle
(cheap, but it subsamples whole files first, not rows uniformly). Sources are unioned, cut into
blocks of ``MIXTURE_BLOCK_ROWS`` and the block order randomised with the seed. Ray Data's streaming order is not bit-exact between
executions, so which rows top up a partial pass (``limit``) may differ on a resume; counts do not.
Every row carries ``mixture_source``.
"""

from __future__ import annotations

import json
import math
from typing import Any

import pyarrow as pa

from pulse import io
from pulse.config import ConfigError
from pulse.schema import table_schema

MIXTURE_FILE = "mixture.json"
MIXTURE_BLOCK_ROWS = 16
ROW_SCHEMA = table_schema(("id", "image", "image_path", "conversations", "error", "mixture_source"))


def mixture_file(cfg) -> str:
    return io.join(cfg.run_dir, MIXTURE_FILE)


def split_rows(total: int, weights: list[float]) -> list[int]:
    """``total`` split in proportion to ``weights`` (largest remainder; sums to ``total``)."""
    exact = [total * w / sum(weights) for w in weights]
    rows = [math.floor(x) for x in exact]
    order = sorted(range(len(weights)), key=lambda i: (rows[i] - exact[i], i))
    for i in order[: total - sum(rows)]:
        rows[i] += 1
    return rows


def _spec(cfg) -> dict[str, Any]:
    """What the user asked for; a resumed run must ask for the same."""
    return {
        "sources": [
            {"name": s.name, "path": s.path, "weight": s.weight, "format": s.format} for s in cfg.data.sources
        ],
        "mixture_size": cfg.data.mixture_size,
        "seed": cfg.data.mixture_seed,
    }


def _images_config(images: str | list[str], storage: io.StorageOptions) -> dict[str, Any]:
    if isinstance(images, list) or images.endswith((".tar", ".tar.gz", ".tgz")):
        return {"shards": images}
    top = io.list_files(images, "*", storage, recursive=False)
    if any(p.endswith((".tar", ".tar.gz", ".tgz")) for p in top):
        return {"shards": images}
    return {"folder": images}


def _parquet_of(cfg, source) -> str:
    """The source's instruction Parquet; a LLaVA file is imported once into the run folder."""
    if source.format == "parquet":
        return source.path
    from pulse.data_ray.llava_format.job import LlavaImportConfig
    from pulse.data_ray.llava_format.job import run as import_llava

    out = io.join(cfg.run_dir, "imported", source.name)
    if not io.exists(io.join(out, "summary.json"), cfg.storage):
        imported = import_llava(
            LlavaImportConfig(
                input=source.path,
                images=_images_config(source.images, cfg.storage),
                output_dir=out,
                source=source.name,
                storage=cfg.storage,
            )
        )
        imported.print()  # a step inside train: its own summary line, as `pulse import-llava` shows it
    return io.join(out, "parquet", "split=train")


def resolve(cfg) -> dict[str, Any]:
    """The mixture of ``cfg.data.sources`` as of now (files, rows, weights, seed)."""
    sources = []
    for source in cfg.data.sources:
        parquet = _parquet_of(cfg, source)
        if io.is_dir(parquet, cfg.storage):
            files = io.list_files(parquet, "*.parquet", cfg.storage)
        else:
            files = [parquet] if io.exists(parquet, cfg.storage) else []
        available = sum(io.count_parquet_rows(f, cfg.storage) for f in files)
        if available == 0:
            raise ConfigError(f"data.sources {source.name}: no instruction rows under {parquet}")
        sources.append({"name": source.name, "files": files, "available_rows": available})
    total = cfg.data.mixture_size or sum(s["available_rows"] for s in sources)
    weights = [s.weight for s in cfg.data.sources]
    for source, weight, rows in zip(sources, weights, split_rows(total, weights), strict=True):
        source.update(weight=weight, share=weight / sum(weights), rows=rows)
        source["repeats"], source["remainder"] = divmod(rows, source["available_rows"])
    return {"spec": _spec(cfg), "seed": cfg.data.mixture_seed, "total_rows": total, "sources": sources}


def load_or_resolve(cfg) -> dict[str, Any]:
    """The run's recorded mixture, or a freshly resolved one written to ``<run>/mixture.json``."""
    path = mixture_file(cfg)
    if io.exists(path, cfg.storage):
        recorded = json.loads(io.read_text(path, cfg.storage))
        if recorded["spec"] != _spec(cfg):
            raise ConfigError(
                f"run {cfg.name} was started with mixture {json.dumps(recorded['spec'])}; "
                f"got {json.dumps(_spec(cfg))}. Resume with the same data.sources or use a new name"
            )
        return recorded
    mixture = resolve(cfg)
    io.write_text(path, json.dumps(mixture, indent=2), cfg.storage)
    return mixture


class _Project:
    """Rows -> the columns training reads, in one schema for every source, tagged with their source."""

    def __init__(self, source_of_file: dict[str, str]):
        self.source_of_file = source_of_file

    def __call__(self, table: pa.Table) -> pa.Table:
        columns = {}
        for field in ROW_SCHEMA:
            if field.name == "mixture_source":
                paths = table.column("path").to_pylist()
                columns[field.name] = pa.array([self.source_of_file[p] for p in paths], pa.string())
            elif field.name in table.column_names:
                columns[field.name] = table.column(field.name).cast(field.type)
            else:
                columns[field.name] = pa.nulls(len(table), field.type)
        return pa.table(columns, schema=ROW_SCHEMA)


def mixed_dataset(cfg, mixture: dict[str, Any]):
    """A Ray Dataset with exactly ``rows`` rows of each source, in a seeded order."""
    import ray

    def read(source: dict[str, Any]):
        # A fresh read per use: Ray Data's streaming executor has no fan-out, so one dataset
        # object must not appear twice in a union.
        fs, _ = io.filesystem(source["files"][0], cfg.storage)
        return ray.data.read_parquet(
            [f.removeprefix("s3://") for f in source["files"]],
            filesystem=fs,
            shuffle=ray.data.FileShuffleConfig(seed=mixture["seed"]),
            include_paths=True,
            num_cpus=cfg.data.preprocess_cpus,
        )

    parts, source_of_file = [], {}
    for source in mixture["sources"]:
        source_of_file.update({f.removeprefix("s3://"): source["name"] for f in source["files"]})
        parts += [read(source) for _ in range(source["repeats"])]
        if source["remainder"]:
            parts.append(read(source).limit(source["remainder"]))
    mixed = parts[0].union(*parts[1:]) if len(parts) > 1 else parts[0]
    # Blocks are whole files (hundreds of rows of one source): cut small first, or the shuffled block
    # order still trains one source for dozens of steps, then the other (the model forgets the first).
    mixed = mixed.repartition(target_num_rows_per_block=MIXTURE_BLOCK_ROWS)
    mixed = mixed.randomize_block_order(seed=mixture["seed"])
    return mixed.map_batches(
        _Project(source_of_file), batch_format="pyarrow", num_cpus=cfg.data.preprocess_cpus
    )
