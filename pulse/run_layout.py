"""One run folder: where each stage reads and writes inside ``run_dir=R``, so stages chain by convention.

    pulse ingest run_dir=R      # R/ingest/{records,errors,ecgqa}
    pulse render run_dir=R      # R/ingest -> R/render/{images,errors}
    pulse build  run_dir=R      # R/ingest + R/render -> R/instruct/{parquet,llava,errors,stats}
    pulse train  run_dir=R      # R/instruct/parquet/split=train -> R/train/<name>/{checkpoints,export}
    pulse serve  run_dir=R      # serves R/train/<name>/export (the newest one), named after its run

A config class names its layout in ``RUN_LAYOUT`` (dotted field -> path inside the run folder, or
a function of the run folder); ``pulse.config.load_config`` fills those fields when ``run_dir`` is
given, except the ones set explicitly on the command line.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from pulse import io

Layout = dict[str, "str | Callable[[str, dict[str, Any]], Any]"]

INGEST = "ingest"
RENDER = "render"
INSTRUCT = "instruct"
TRAIN = "train"

INGEST_LAYOUT: Layout = {"output_dir": INGEST}
RENDER_LAYOUT: Layout = {"input_dir": INGEST, "output_dir": RENDER}
BUILD_LAYOUT: Layout = {"records_dir": INGEST, "images_dir": RENDER, "output_dir": INSTRUCT}


def _train_path(run_dir: str, data: dict[str, Any]) -> str | None:
    if (data.get("data") or {}).get("sources"):
        return None  # a mixture names its own sources
    return io.join(run_dir, INSTRUCT, "parquet", "split=train")


TRAIN_LAYOUT: Layout = {"storage_path": TRAIN, "data.train_path": _train_path}


def trained_export(run_dir: str) -> str:
    """The one ``R/train/<name>/export`` of the run (a folder with a config.json)."""
    from pulse.config import ConfigError

    found = io.list_files(io.join(run_dir, TRAIN), "config.json")
    exports = sorted({io.join(*p.split("/")[:-1]) if io.is_remote(p) else str(Path(p).parent) for p in found})
    exports = [e for e in exports if e.rstrip("/").endswith("export")]
    if len(exports) != 1:
        where = io.join(run_dir, TRAIN, "<name>", "export")
        what = "no exported model" if not exports else f"{len(exports)} exports ({', '.join(exports)})"
        raise ConfigError(f"run_dir={run_dir}: {what} at {where}; serve one with --checkpoint PATH")
    return exports[0]


def apply_layout(data: dict[str, Any], layout: Layout, run_dir: str, explicit: set[str]) -> None:
    """Fill ``layout``'s fields of ``data`` (YAML + overrides) from ``run_dir``, unless in ``explicit``."""
    from pulse.config import apply_override

    for dotted, where in layout.items():
        if dotted in explicit:
            continue
        value = where(run_dir, data) if callable(where) else io.join(run_dir, where)
        if value is not None:
            apply_override(data, dotted.split("."), value)
