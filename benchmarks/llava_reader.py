"""Benchmark: rows/s and peak RSS of the streaming LLaVA reader on a synthesized ECGInstruct-like array.

Writes a JSON array of ECGInstruct-shaped rows (default >= 200 MB; 1-4 turns, ~1 KB each), then
measures, each in a fresh process so peak RSS is its own:

- ``reader``: ``iter_records`` over the whole file, then again with ``validate_record`` per row (what
  ``pulse import-llava`` does per row before images);
- ``json.load`` baseline: the whole-array load on a slice of the same rows (default 1/10 of the
  size), whose peak RSS is extrapolated linearly to the full file;
- ``lines`` baseline: plain line iteration of the full file (the I/O floor).

  python benchmarks/llava_reader.py                 # 200 MB, ~1-2 min on 2 cores
  python benchmarks/llava_reader.py --mb 1400       # ECGInstruct.json's size
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import subprocess
import sys
import tempfile
import time

QUESTIONS = [
    "<image>\nWhat can be inferred about the cardiac axis on this ECG?\nA. Normal\nB. Right\nC. Left\nD. None",
    "<image>\nReview the ECG signal image and produce a detailed report on your diagnostic observations.",
    "<image>\nIs left ventricular hypertrophy indicated by this ECG?\nOptions: no, not sure, yes",
]


def synth_row(i: int, rng: random.Random) -> dict:
    turns = [{"from": "human", "value": rng.choice(QUESTIONS)}]
    turns.append(
        {"from": "gpt", "value": "The ECG shows sinus rhythm with normal axis. " * rng.randint(4, 16)}
    )
    for _ in range(rng.choice([0, 0, 0, 1])):
        turns += [
            {"from": "human", "value": "Is the rhythm regular?"},
            {"from": "gpt", "value": "Yes, the RR intervals are regular."},
        ]
    return {
        "id": f"mimic-{i:08d}",
        "image": f"mimic/p{i % 9999:04d}/p{i:08d}/s{i:08d}/{i:08d}-0.png",
        "conversations": turns,
        "metadata": {
            "subtask": rng.choice(["feature", "rhythm", "morphology", "report"]),
            "type": "open-ended",
        },
        "source": "MIMIC-IV-ECG",
    }


def write_array(path: str, target_bytes: int, seed: int = 0) -> int:
    rng = random.Random(seed)
    rows, written = 0, 0
    with open(path, "w", encoding="utf-8") as handle:
        handle.write("[\n")
        while written < target_bytes:
            text = ("" if rows == 0 else ",\n") + json.dumps(synth_row(rows, rng), indent=1)
            handle.write(text)
            written += len(text)
            rows += 1
        handle.write("\n]\n")
    return rows


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def measure(kind: str, path: str) -> dict:
    started = time.perf_counter()
    if kind.startswith("reader"):
        from pulse.data_ray.llava_format.reader import iter_records, validate_record

        validate = kind == "reader+validate"
        rows = sum(1 for r in iter_records(path) if not validate or validate_record(r.value, r.index, None))
    elif kind == "json.load":
        with open(path, encoding="utf-8") as handle:
            rows = len(json.load(handle))
    else:
        with open(path, encoding="utf-8") as handle:
            rows = sum(1 for _ in handle)
    seconds = time.perf_counter() - started
    return {"kind": kind, "rows": rows, "seconds": seconds, "peak_rss_mb": peak_rss_mb()}


def in_child(kind: str, path: str) -> dict:
    out = subprocess.run(
        [sys.executable, __file__, "--measure", kind, path], check=True, capture_output=True, text=True
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mb", type=float, default=200.0)
    parser.add_argument("--slice", type=float, default=0.1, help="json.load baseline: fraction of the size")
    parser.add_argument("--measure", nargs=2, metavar=("KIND", "PATH"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure:
        print(json.dumps(measure(*args.measure)))
        return
    work = tempfile.mkdtemp(prefix="pulse-llava-bench-")
    full, part = os.path.join(work, "full.json"), os.path.join(work, "slice.json")
    rows = write_array(full, int(args.mb * 1e6))
    write_array(part, int(args.mb * args.slice * 1e6))
    size_mb = os.path.getsize(full) / 1e6
    reader = in_child("reader", full)
    validated = in_child("reader+validate", full)
    baseline = in_child("json.load", part)
    lines = in_child("lines", full)
    assert reader["rows"] == rows, (reader["rows"], rows)
    reader_rate = reader["rows"] / reader["seconds"]
    load_rate = baseline["rows"] / baseline["seconds"]
    load_rss_full = baseline["peak_rss_mb"] / args.slice  # json.load's RSS grows with the array
    print(
        f"llava reader: {size_mb:.0f} MB JSON array, {rows} rows: {reader_rate:,.0f} rows/s, "
        f"peak RSS {reader['peak_rss_mb']:.0f} MB ({'PASS' if reader['peak_rss_mb'] < 1024 else 'FAIL'} < 1 GB); "
        f"with row validation {validated['rows'] / validated['seconds']:,.0f} rows/s, "
        f"peak RSS {validated['peak_rss_mb']:.0f} MB\n"
        f"  baseline json.load on a {size_mb * args.slice:.0f} MB slice: {load_rate:,.0f} rows/s, "
        f"peak RSS {baseline['peak_rss_mb']:.0f} MB (~{load_rss_full:,.0f} MB extrapolated to {size_mb:.0f} MB)\n"
        f"  baseline line iteration: {lines['rows'] / lines['seconds']:,.0f} lines/s, "
        f"peak RSS {lines['peak_rss_mb']:.0f} MB\n"
        f"  reader/json.load: speed {reader_rate / load_rate:.2f}x, "
        f"peak RSS {reader['peak_rss_mb'] / load_rss_full:.3f}x of a whole-file json.load"
    )
    for name in (full, part):
        os.remove(name)


if __name__ == "__main__":
    main()
