"""Render speed: pulse's renderer against a matplotlib baseline drawn the way ecg-image-kit draws.

Same records, same process, one core, 2200x1700 (letter at 200 dpi). The baseline is a pyplot
figure with the 1 mm / 5 mm grid drawn as tick gridlines and ``savefig`` to PNG, like
ecg-image-kit's ``ecg_plot.py``; the distorted baseline adds the kit's wrinkle/crease/augment
steps as float image ops and ``plt.imsave`` (see ``kit_style_distorted``). Prints images/s for
pulse clean (PNG and JPEG) against the clean baseline, distorted (JPEG) against the distorted
baseline, and peak RSS. ``--ray`` also measures Ray Data
throughput with 1 and 2 render workers.

    python benchmarks/render.py --records 8 --repeats 2
    python benchmarks/render.py --ray
"""

from __future__ import annotations

import argparse
import io as stdio
import os
import resource
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import cv2
import numpy as np
import scipy.io

cv2.setNumThreads(1)

RECORDS = Path(__file__).resolve().parents[1] / "pulse" / "assets" / "realdata" / "cinc2021" / "records"
NAMES = (
    "A0689",
    "A1041",
    "E00271",
    "E01137",
    "HR03961",
    "HR06000",
    "JS01048",
    "JS01560",
    "JS02990",
    "E03823",
)


def load_records(n: int) -> list[dict]:
    out = []
    for name in NAMES[:n]:
        header = (RECORDS / f"{name}.hea").read_text().splitlines()
        n_leads, fs = int(header[0].split()[1]), float(header[0].split()[2])
        signal = scipy.io.loadmat(RECORDS / f"{name}.mat")["val"].astype(np.float32) / 1000.0
        leads = [line.split()[-1] for line in header[1 : 1 + n_leads]]
        out.append({"record_id": f"cinc2021/{name}", "signal": signal, "fs": fs, "lead_names": leads})
    return out


def matplotlib_baseline(record: dict) -> bytes:
    """3x4 + II strip the ecg-image-kit way: pyplot, gridlines as ticks, savefig (PNG)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fs, signal = record["fs"], record["signal"]
    fig, ax = plt.subplots(figsize=(11, 8.5), dpi=200)
    fig.subplots_adjust(0, 0, 1, 1)
    ax.set_xlim(0, 11 * 25.4 / 25)  # seconds across the page at 25 mm/s
    ax.set_ylim(0, 8.5 * 25.4 / 10)  # millivolts up the page at 10 mm/mV
    ax.set_xticks(np.arange(0, 11.2, 0.2))
    ax.set_xticks(np.arange(0, 11.2, 0.04), minor=True)
    ax.set_yticks(np.arange(0, 21.6, 0.5))
    ax.set_yticks(np.arange(0, 21.6, 0.1), minor=True)
    ax.grid(which="major", color=(0.94, 0.37, 0.37), linewidth=0.8)
    ax.grid(which="minor", color=(1.0, 0.8, 0.8), linewidth=0.4)
    ax.tick_params(which="both", length=0, labelbottom=False, labelleft=False)
    order = (("I", "II", "III"), ("aVR", "aVL", "aVF"), ("V1", "V2", "V3"), ("V4", "V5", "V6"))
    rows = {name: i for i, name in enumerate(record["lead_names"])}
    n = int(2.5 * fs)
    for col, names in enumerate(order):
        for row, name in enumerate(names):
            y0 = 16 - 4 * row
            seg = signal[rows[name], col * n : (col + 1) * n]
            t = 0.6 + col * 2.5 + np.arange(len(seg)) / fs
            ax.plot(t, seg + y0, color="black", linewidth=0.8)
            ax.text(0.65 + col * 2.5, y0 - 0.8, name, fontsize=10)
    strip = signal[rows["II"], : 4 * n]
    ax.plot(0.6 + np.arange(len(strip)) / fs, strip + 4, color="black", linewidth=0.8)
    buf = stdio.BytesIO()
    fig.savefig(buf, format="png", dpi=200)
    plt.close(fig)
    return buf.getvalue()


def kit_style_distorted(record: dict, seed: int = 0) -> bytes:
    """The matplotlib page, then the kit's wrinkles/creases/augment steps done straightforwardly.

    Float32 image ops, a wrinkle texture upscaled and overlay-blended, creases as blurred lines with
    a gain, rotation + Gaussian noise + crop + colour temperature, and ``plt.imsave`` to PNG — the
    order and kinds of ecg-image-kit's ``get_creased`` and ``get_augment``. It leaves out the kit's
    pure-Python texture quilting search (its slowest part), so it is a *conservative* baseline:
    the real kit is slower still.
    """
    import matplotlib.pyplot as plt

    rng = np.random.default_rng(seed)
    page = plt.imread(stdio.BytesIO(matplotlib_baseline(record)))[..., :3].astype(np.float32)
    h, w = page.shape[:2]
    texture = cv2.GaussianBlur(rng.random((250, 250), dtype=np.float32), (0, 0), 6)
    texture = (texture - texture.min()) / (np.ptp(texture) + 1e-6)
    texture = cv2.resize(texture, (w, h), interpolation=cv2.INTER_CUBIC)[..., None]
    page = np.where(page < 0.5, 2 * page * texture, 1 - 2 * (1 - page) * (1 - texture))
    creases = np.zeros((h, w), np.float32)
    for _ in range(int(rng.integers(3, 8))):
        x = int(rng.integers(0, w))
        cv2.line(creases, (x, 0), (x + int(rng.integers(-200, 200)), h), 1.0, 3)
    gain = 1 + cv2.GaussianBlur(creases, (0, 0), 4)[..., None] * rng.uniform(0.05, 0.25)
    page = np.clip(page * gain, 0, 1)
    matrix = cv2.getRotationMatrix2D((w / 2, h / 2), float(rng.uniform(-5, 5)), 1.0)
    page = cv2.warpAffine(page, matrix, (w, h), borderValue=(1.0, 1.0, 1.0))
    page = np.clip(page + rng.normal(0, 50 / 255, page.shape).astype(np.float32), 0, 1)
    dy, dx = int(0.01 * h), int(0.01 * w)
    page = page[dy : h - dy, dx : w - dx]
    page = np.clip(page * np.array([1.0, 0.97, 0.9], np.float32), 0, 1)  # warmer colour temperature
    buf = stdio.BytesIO()
    plt.imsave(buf, page, format="png")
    return buf.getvalue()


def rate(fn, records: list[dict], repeats: int) -> float:
    fn(records[0])  # warm caches (grid, fonts) outside the timing, as a long-running worker would
    started = time.perf_counter()
    for _ in range(repeats):
        for rec in records:
            fn(rec)
    return repeats * len(records) / (time.perf_counter() - started)


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def single_core(records: list[dict], repeats: int) -> None:
    from pulse.data_ray.render.renderer import Renderer, RenderParams

    clean_png = Renderer(RenderParams(clean_fraction=1.0, image_format="png", header_probability=0.5))
    clean_jpg = Renderer(RenderParams(clean_fraction=1.0, image_format="jpeg", header_probability=0.5))
    distorted = Renderer(RenderParams(clean_fraction=0.0, image_format="jpeg", header_probability=0.5))
    seeds = iter(range(10**6))
    results = {
        "pulse clean PNG": rate(lambda r: clean_png.render(r, next(seeds)), records, repeats),
        "pulse clean JPEG": rate(lambda r: clean_jpg.render(r, next(seeds)), records, repeats),
        "pulse distorted JPEG": rate(lambda r: distorted.render(r, next(seeds)), records, repeats),
    }
    pulse_rss = peak_rss_mb()
    baseline = rate(matplotlib_baseline, records, max(1, repeats // 2))
    distorted_baseline = rate(kit_style_distorted, records, max(1, repeats // 2))
    print(f"records={len(records)} repeats={repeats} size=2200x1700 one process, one core")
    print(f"  {'matplotlib clean (PNG)':28s} {baseline:7.2f} images/s   1.0x  (clean baseline)")
    print(
        f"  {'matplotlib + kit distortions':28s} {distorted_baseline:7.2f} images/s   1.0x  (distorted baseline)"
    )
    for name, value in results.items():
        against = distorted_baseline if "distorted" in name else baseline
        kind = "distorted" if "distorted" in name else "clean"
        print(f"  {name:28s} {value:7.2f} images/s  {value / against:5.1f}x {kind} baseline")
    print(f"  peak RSS after pulse runs (before the baseline): {pulse_rss:.0f} MB")


def ray_scaling(records: list[dict], copies: int) -> None:
    from pulse.data_ray.render.stage import RenderStage
    from pulse.runtime import RayOptions, init_ray

    ray = init_ray(RayOptions(num_cpus=2))
    rows = [
        {**r, "record_id": f"{r['record_id']}-{k}", "signal": r["signal"].tolist()}
        for k in range(copies)
        for r in records
    ]
    rates = {}
    for workers in (1, 2):
        ds = ray.data.from_items(rows).map_batches(
            RenderStage,
            fn_constructor_kwargs={"params": {"clean_fraction": 0.5}},
            batch_size=4,
            batch_format="pyarrow",
            compute=ray.data.ActorPoolStrategy(size=workers),
            num_cpus=1,
        )
        started = time.perf_counter()
        n = sum(len(b["record_id"]) for b in ds.iter_batches(batch_format="pyarrow"))
        rates[workers] = n / (time.perf_counter() - started)
    print(f"  Ray Data, {len(rows)} images (1:1 clean/distorted JPEG), includes worker start-up:")
    print(f"    1 worker  {rates[1]:6.2f} images/s")
    print(f"    2 workers {rates[2]:6.2f} images/s  ({rates[2] / rates[1]:.2f}x)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--ray", action="store_true", help="also measure Ray Data scaling 1 -> 2 CPUs")
    parser.add_argument("--ray-copies", type=int, default=6)
    args = parser.parse_args()
    records = load_records(args.records)
    single_core(records, args.repeats)
    if args.ray:
        ray_scaling(records, args.ray_copies)


if __name__ == "__main__":
    main()
