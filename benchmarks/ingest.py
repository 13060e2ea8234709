"""Ingest throughput: the Ray Data job vs a plain single-process loop, same records, same run.

Reads every bundled signal record (PTB-XL + the CinC-2021 databases, 118 records) and writes
record Parquet, first with a plain loop over ``read_source`` (decode, ``records_to_table``,
one Parquet file), then with ``pulse.data_ray.ingest.run`` on an embedded local Ray. Ray is
started and warmed up (one untimed run) before timing, so the numbers compare steady-state
throughput, not worker start-up. Prints records/s of both and their ratio.

    python benchmarks/ingest.py
    python benchmarks/ingest.py --repeat 3 --batch-size 8 --target-fs 250
"""

from __future__ import annotations

import argparse
import logging
import os
import statistics
import tempfile
import time

os.environ.setdefault("RAY_DATA_DISABLE_PROGRESS_BARS", "1")

from pulse import io
from pulse.data_ray.ingest import IngestConfig, run
from pulse.data_ray.readers import read_source
from pulse.data_ray.readers.config import SourceConfig
from pulse.data_ray.readers.signal import records_to_table
from pulse.runtime import RayOptions, init_ray

SOURCES = [
    SourceConfig(
        kind="ptbxl", root="bundled:ptbxl", database_csv="ptbxl_database_subset.csv", rate_fallback=True
    ),
    SourceConfig(kind="cinc2021", root="bundled:cinc2021"),
]


def plain_loop(output_dir: str, target_fs: float | None) -> int:
    rows = [row for source in SOURCES for row in read_source(source, target_fs=target_fs)]
    good = [r for r in rows if r["error"] is None]
    io.write_parquet(records_to_table(good), io.join(output_dir, "records", "part-0.parquet"))
    return len(rows)


def ray_job(output_dir: str, args: argparse.Namespace) -> int:
    cfg = IngestConfig(
        sources=SOURCES,
        output_dir=output_dir,
        target_fs=args.target_fs,
        batch_size=args.batch_size,
        concurrency=args.concurrency,
    )
    summary = run(cfg)
    return summary.rows_ok + summary.rows_error


def timed(fn, *fn_args) -> tuple[float, int]:
    start = time.perf_counter()
    n = fn(*fn_args)
    return time.perf_counter() - start, n


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--concurrency", type=int, default=None)
    parser.add_argument("--target-fs", type=float, default=None)
    parser.add_argument("--num-cpus", type=int, default=None, help="logical CPUs of the embedded Ray")
    args = parser.parse_args()
    logging.getLogger("ray.data").setLevel(logging.WARNING)
    init_ray(RayOptions(num_cpus=args.num_cpus))
    scratch = tempfile.mkdtemp(prefix="pulse-bench-ingest-")
    ray_job(os.path.join(scratch, "warmup"), args)  # start workers, import modules
    plain, ray_times = [], []
    n_plain = n_ray = 0
    for i in range(args.repeat):
        seconds, n_plain = timed(plain_loop, os.path.join(scratch, f"plain-{i}"), args.target_fs)
        plain.append(seconds)
        seconds, n_ray = timed(ray_job, os.path.join(scratch, f"ray-{i}"), args)
        ray_times.append(seconds)
    plain_rate = n_plain / statistics.median(plain)
    ray_rate = n_ray / statistics.median(ray_times)
    print(f"\ningest benchmark ({n_plain} bundled records, {os.cpu_count()} cores, median of {args.repeat})")
    print(
        f"  plain loop (read_source, 1 process): {plain_rate:8.1f} records/s  ({statistics.median(plain):.2f} s)"
    )
    print(
        f"  Ray Data ingest job:                 {ray_rate:8.1f} records/s  ({statistics.median(ray_times):.2f} s)"
    )
    print(f"  ratio Ray / plain:                   {ray_rate / plain_rate:8.2f}x")


if __name__ == "__main__":
    main()
