"""A synthetic ECG question with a known answer: heart-rate class from a rendered rhythm strip.

Signals are sums of Gaussian P/QRS/T bumps at a chosen RR interval (a few % beat-to-beat
jitter), drawn as a paper-ECG strip (pink grid, black trace) with Pillow. The answer is fully
determined by the rate, so a model that learns from the image must beat chance. Used by the
learning check, the benchmark and the tiny demo config; real data goes through
``pulse build`` instead.

Example: python -m pulse.train_ray.synthetic /tmp/pulse/hr/train 256 --seed 0
"""

from __future__ import annotations

import argparse
import io as _stdio

import numpy as np
import pyarrow as pa

from pulse import io
from pulse.schema import INSTRUCTION_SCHEMA

HR_CLASSES: dict[str, tuple[float, float]] = {
    "bradycardia": (35.0, 50.0),
    "normal": (65.0, 90.0),
    "tachycardia": (120.0, 170.0),
}
QUESTION = (
    "<image>\nWhat is the heart rate class of this ECG? "
    "Answer with one word: bradycardia, normal or tachycardia."
)
# (centre as a fraction of the RR interval after the R peak, width s, amplitude mV)
WAVES = ((-0.2, 0.025, 0.15), (-0.03, 0.01, -0.1), (0.0, 0.012, 1.2), (0.03, 0.01, -0.25), (0.3, 0.05, 0.3))


def synth_ecg(rate_bpm: float, seconds: float = 10.0, fs: float = 250.0, seed: int = 0) -> np.ndarray:
    """One lead in mV at ``rate_bpm`` (P, Q, R, S, T bumps per beat)."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * fs)) / fs
    signal = np.zeros_like(t)
    rr = 60.0 / rate_bpm
    beat = rng.uniform(0, rr)
    while beat < seconds + rr:
        for offset, width, amplitude in WAVES:
            centre = beat + offset * min(rr, 1.0)
            signal += amplitude * np.exp(-0.5 * ((t - centre) / width) ** 2)
        beat += rr * rng.normal(1.0, 0.03)
    return signal + rng.normal(0, 0.02, t.shape)


def draw_strip(
    signal: np.ndarray, width: int = 224, height: int = 112, mv_range: float = 2.0, trace_width: int = 3
) -> bytes:
    """A PNG of ``signal`` on ECG paper (major grid every 1/10 of the width).

    The trace is drawn 3 px wide: the tiny model's tiles downsample the strip by 2-4x, and a
    1-px trace fades into the grid there (the tiny model then only learns the answer prior).
    """
    from PIL import Image, ImageDraw

    image = Image.new("RGB", (width, height), (255, 255, 255))
    draw = ImageDraw.Draw(image)
    for x in np.linspace(0, width, 11):
        draw.line([(x, 0), (x, height)], fill=(245, 180, 180), width=1)
    for y in np.linspace(0, height, 6):
        draw.line([(0, y), (width, y)], fill=(245, 180, 180), width=1)
    xs = np.linspace(0, width - 1, len(signal))
    ys = height * 0.65 - signal / mv_range * height * 0.6
    draw.line(list(zip(xs.tolist(), ys.tolist(), strict=True)), fill=(0, 0, 0), width=trace_width)
    buffer = _stdio.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def heart_rate_rows(n: int, seed: int = 0, width: int = 224, height: int = 112) -> list[dict]:
    """``n`` instruction rows (INSTRUCTION_SCHEMA), classes balanced and interleaved."""
    rng = np.random.default_rng(seed)
    names = list(HR_CLASSES)
    rows = []
    for i in range(n):
        label = names[i % len(names)]
        low, high = HR_CLASSES[label]
        rate = float(rng.uniform(low, high))
        png = draw_strip(synth_ecg(rate, seed=int(rng.integers(1 << 31))), width, height)
        rows.append(
            {
                "id": f"hr-{seed}-{i:05d}",
                "record_id": f"synthetic/hr-{seed}-{i:05d}",
                "image": png,
                "image_path": None,
                "conversations": [{"from": "human", "value": QUESTION}, {"from": "gpt", "value": label}],
                "task": "rhythm",
                "qtype": "close",
                "source": "synthetic-heart-rate",
                "generator": f"pulse.train_ray.synthetic rate={rate:.1f}",
                "judge_score": None,
                "judge_reason": None,
                "error": None,
            }
        )
    return rows


def write_instruction_parquet(
    rows: list[dict], folder: str, storage: io.StorageOptions | None = None, shard_size: int = 64
) -> list[str]:
    """Write rows as ``part-XXXXX.parquet`` shards under ``folder`` (local or S3)."""
    paths = []
    for index, start in enumerate(range(0, len(rows), shard_size)):
        table = pa.Table.from_pylist(rows[start : start + shard_size], schema=INSTRUCTION_SCHEMA)
        path = io.join(folder, f"part-{index:05d}.parquet")
        io.write_parquet(table, path, storage)
        paths.append(path)
    return paths


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder")
    parser.add_argument("n", type=int)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    paths = write_instruction_parquet(heart_rate_rows(args.n, args.seed), args.folder)
    print(f"wrote {args.n} rows to {len(paths)} shards under {args.folder}")


if __name__ == "__main__":
    main()
