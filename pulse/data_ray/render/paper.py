"""ECG paper: grid palettes, the anti-aliased 1 mm / 5 mm grid, and fonts.

The grid is drawn once per (page size, dpi, palette) and cached by the renderer; lines are
anti-aliased by their exact pixel coverage, so the grid stays faithful at any dpi (at 50 dpi
a 1 mm box is under 2 px wide and the minor lines blend into a tint, as on a low-res scan).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from PIL import ImageFont

Color = tuple[int, int, int]


@dataclass(frozen=True)
class Palette:
    """RGB colours of one paper style."""

    name: str
    paper: Color
    minor: Color
    major: Color
    trace: Color
    text: Color


# ecg-image-kit's five standard grid colours (1 brown, 2 pink, 3 blue, 4 green, 5 red) plus a
# black-and-white print.
PALETTES: dict[str, Palette] = {
    p.name: p
    for p in (
        Palette("brown", (255, 252, 246), (232, 204, 186), (184, 120, 92), (20, 20, 20), (40, 30, 25)),
        Palette("pink", (255, 250, 250), (252, 215, 222), (240, 140, 160), (15, 15, 15), (35, 35, 35)),
        Palette("blue", (250, 252, 255), (200, 218, 240), (110, 150, 210), (10, 10, 35), (25, 30, 50)),
        Palette("green", (250, 255, 250), (200, 234, 205), (105, 180, 120), (10, 25, 10), (25, 40, 25)),
        Palette("red", (255, 255, 255), (255, 205, 205), (240, 95, 95), (18, 18, 18), (30, 30, 30)),
        Palette("bw", (255, 255, 255), (222, 222, 222), (150, 150, 150), (0, 0, 0), (0, 0, 0)),
    )
}
GRID_PALETTES: tuple[str, ...] = ("brown", "pink", "blue", "green", "red")


def px_per_mm(dpi: float) -> float:
    return dpi / 25.4


def _line_coverage(size: int, spacing_px: float, width_px: float, every: int = 1) -> np.ndarray:
    """Fraction of each pixel covered by lines of ``width_px`` at ``k * spacing_px`` (k % every == 0).

    Pixel ``j`` covers ``[j - 0.5, j + 0.5)`` (pixel centres on integers, as OpenCV draws).
    """
    coverage = np.zeros(size, dtype=np.float32)
    count = int(size / spacing_px) + 2
    half = width_px / 2
    for k in range(0, count, every):
        centre = k * spacing_px
        lo, hi = centre - half, centre + half
        for j in range(max(0, int(np.floor(lo + 0.5))), min(size, int(np.floor(hi + 0.5)) + 1)):
            overlap = min(hi, j + 0.5) - max(lo, j - 0.5)
            if overlap > 0:
                coverage[j] = min(1.0, coverage[j] + overlap)
    return coverage


def draw_grid(width: int, height: int, dpi: float, palette: Palette, grid: bool = True) -> np.ndarray:
    """A blank page (H x W x 3 uint8) with the 1 mm minor and 5 mm major grid.

    Args:
        width: page width in pixels.
        height: page height in pixels.
        dpi: resolution; sets the grid spacing (dpi / 25.4 px per mm).
        palette: paper and grid colours.
        grid: False gives plain paper (PULSE drops the grid on about 2% of images).
    """
    page = np.empty((height, width, 3), dtype=np.uint8)
    page[:] = palette.paper
    if not grid:
        return page
    ppm = px_per_mm(dpi)
    minor_w = max(0.1 * ppm, 0.6)  # never thinner than a visible hairline
    major_w = max(0.2 * ppm, 1.0)
    paper = np.asarray(palette.paper, dtype=np.float32)
    minor = np.asarray(palette.minor, dtype=np.float32)
    major = np.asarray(palette.major, dtype=np.float32)
    minor_x, minor_y = _line_coverage(width, ppm, minor_w), _line_coverage(height, ppm, minor_w)
    major_x = _line_coverage(width, 5 * ppm, major_w)
    major_y = _line_coverage(height, 5 * ppm, major_w)
    cov_minor = np.maximum(minor_y[:, None], minor_x[None, :])
    cov_major = np.maximum(major_y[:, None], major_x[None, :])
    out = paper + cov_minor[..., None] * (minor - paper)
    out += cov_major[..., None] * (major - out)
    np.rint(out, out=out)
    page[:] = out.astype(np.uint8)
    return page


def font_path() -> str:
    """DejaVu Sans as shipped inside matplotlib (no system fonts, nothing vendored)."""
    import matplotlib

    return os.path.join(matplotlib.get_data_path(), "fonts", "ttf", "DejaVuSans.ttf")


@lru_cache(maxsize=32)
def load_font(size_px: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    """A TrueType font at ``size_px``; Pillow's built-in font if DejaVu is missing."""
    try:
        return ImageFont.truetype(font_path(), max(6, size_px))
    except OSError:
        return ImageFont.load_default(max(6, size_px))
