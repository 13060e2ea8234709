"""Build docs/render/contact_sheet.jpg: a clean and a distorted render of every layout.

    python docs/render/make_contact_sheet.py

Rows are layouts (3x4, 3x4+1, 3x4+3, 6x2, 12x1); the left column is clean, the right one
distorted with the default PULSE-like mix. Renders are 200 dpi letter pages of bundled real
CinC-2021 records, shrunk to 800 px wide tiles.
"""

from __future__ import annotations

import sys
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "benchmarks"))

from render import load_records  # noqa: E402

from pulse.data_ray.render.layouts import LAYOUTS  # noqa: E402
from pulse.data_ray.render.renderer import Renderer, RenderParams, decode_image  # noqa: E402

TILE_W = 800


def tile(image: np.ndarray, caption: str) -> np.ndarray:
    h, w = image.shape[:2]
    small = cv2.resize(image, (TILE_W, round(h * TILE_W / w)), interpolation=cv2.INTER_AREA)
    canvas = np.full((660, TILE_W + 20, 3), 255, np.uint8)
    canvas[30 : 30 + min(small.shape[0], 625), 10 : 10 + TILE_W] = small[:625]
    cv2.putText(canvas, caption, (10, 22), cv2.FONT_HERSHEY_SIMPLEX, 0.6, (0, 0, 0), 1, cv2.LINE_AA)
    return canvas


def main() -> None:
    records = load_records(10)
    rows = []
    for i, layout in enumerate(LAYOUTS):
        record = records[i % len(records)]
        tiles = []
        for clean in (True, False):
            params = RenderParams(
                layout=layout,
                palette="random",
                header_probability=1.0 if i % 2 else 0.0,
                clean_fraction=1.0 if clean else 0.0,
                image_format="png" if clean else "jpeg",
            )
            out = Renderer(params).render(record, seed=100 + i)
            fired = [k for k in out.distortions if k in type(params.distortions).model_fields]
            caption = f"{layout} {out.distortions['palette']} " + ("clean" if clean else ", ".join(fired))
            tiles.append(tile(decode_image(out.encoded), f"{record['record_id']}  {caption}"[:95]))
        rows.append(np.hstack(tiles))
    sheet = np.vstack(rows)
    target = ROOT / "docs" / "render" / "contact_sheet.jpg"
    cv2.imwrite(str(target), cv2.cvtColor(sheet, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 88])
    print(f"wrote {target} ({sheet.shape[1]}x{sheet.shape[0]})")


if __name__ == "__main__":
    main()
