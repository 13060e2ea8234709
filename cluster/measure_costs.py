"""Measure pulse's per-item CPU costs on the bundled records; the inputs of docs/cluster.md's cost table.

    python cluster/measure_costs.py                 # ingest + render (pulse_mix) + templates, one core
    python cluster/measure_costs.py --records 20 --json costs.json

Costs are process CPU seconds per item (``time.process_time``), which a busy shared host
distorts far less than wall time; each stage runs in this one process on one core, exactly the
work a Ray task does per row. The report also prints each stage's cost as a ratio to ingest,
the cheapest stage, measured in the same run.
"""

from __future__ import annotations

import argparse
import json
import os
import time

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import yaml

from pulse.config import CONFIG_DIR, load_config


def cpu_seconds(fn) -> tuple[float, object]:
    started = time.process_time()
    result = fn()
    return time.process_time() - started, result


def measure_ingest(limit: int) -> tuple[float, list[dict]]:
    """CPU s per record: native CinC-2021 WFDB/MAT read, SNOMED mapping, resampling to 500 Hz."""
    from pulse.data_ray.ingest import IngestConfig
    from pulse.data_ray.readers import read_source

    cfg = load_config(IngestConfig, CONFIG_DIR / "ingest" / "bundled.yaml", ["target_fs=500"])
    source = next(s for s in cfg.sources if s.kind == "cinc2021")
    seconds, rows = cpu_seconds(lambda: list(read_source(source, target_fs=500, limit=limit)))
    rows = [r for r in rows if not r.get("error")]
    return seconds / max(len(rows), 1), rows


def measure_render(records: list[dict]) -> float:
    """CPU s per image with the PULSE-mix parameters (letter, 200 dpi, half distorted, JPEG)."""
    from pulse.data_ray.render.renderer import Renderer, RenderParams

    params = yaml.safe_load((CONFIG_DIR / "render" / "pulse_mix.yaml").read_text())["params"]
    renderer = Renderer(RenderParams.model_validate(params))
    renderer.render(records[0], seed=0)  # grid and texture caches, built once per worker
    seconds, _ = cpu_seconds(lambda: [renderer.render(r, seed=i) for i, r in enumerate(records)])
    return seconds / len(records)


def measure_templates(records: list[dict]) -> float:
    """CPU s per instruction row from the template builder (no LLM)."""
    from pulse.data_ray.instruct.templates import TemplateBook, template_rows

    book = TemplateBook(str(CONFIG_DIR / "build" / "prompts" / "templates-v1.yaml"))
    seconds, rows = cpu_seconds(lambda: [row for r in records for row in template_rows(r, book)])
    if not rows:
        raise ValueError("the template builder made no rows from these records")
    return seconds / len(rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--records", type=int, default=12)
    parser.add_argument("--json", help="also write the costs here")
    args = parser.parse_args(argv)
    ingest, records = measure_ingest(args.records)
    costs = {"ingest_cpu_s_per_record": ingest, "render_cpu_s_per_image": measure_render(records)}
    try:
        costs["template_cpu_s_per_instruction"] = measure_templates(records)
    except Exception as exc:  # the template builder's API is still moving; report, don't hide
        print(f"templates: not measured ({type(exc).__name__}: {exc})")
    costs["records"] = len(records)
    for key, value in costs.items():
        if key != "records":
            print(f"{key:34s} {value * 1000:9.3f} ms   ({value / ingest:7.3f}x ingest)")
    if args.json:
        with open(args.json, "w") as out:
            json.dump(costs, out, indent=2)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
