"""Printed text: the metadata header, the scale line, and lead labels (Pillow + DejaVu Sans)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
from PIL import Image, ImageDraw

from pulse.data_ray.render.paper import load_font


@dataclass(frozen=True)
class TextItem:
    """One string to print; ``x``/``y`` are its top-left corner in pixels."""

    x: float
    y: float
    text: str
    size_px: int
    color: tuple[int, int, int]
    anchor: str = "la"  # Pillow anchor: left/ascender by default; "ls" = left/baseline


def _sex_text(value: Any) -> str:
    text = str(value or "").strip()
    return {"m": "Male", "male": "Male", "f": "Female", "female": "Female"}.get(text.lower(), text or "?")


def header_lines(record: Mapping[str, Any], heart_rate: float | None) -> list[str]:
    """The two printed header lines: identity and date, then demographics and rate."""
    age = record.get("age")
    age_text = f"{age:.0f} yr" if isinstance(age, (int, float)) and np.isfinite(age) else "?"
    rate_text = f"{heart_rate:.0f} bpm" if heart_rate else "?"
    recorded = str(record.get("recorded_at") or "").replace("T", " ") or "unknown"
    return [
        f"ID: {record.get('record_id', '?')}    Date: {recorded}",
        f"Age: {age_text}    Sex: {_sex_text(record.get('sex'))}    Vent. rate: {rate_text}",
    ]


def draw_text(image: np.ndarray, items: list[TextItem]) -> tuple[np.ndarray, list[list[float]]]:
    """Print ``items`` onto ``image``; returns the new image and each item's [x0, y0, x1, y1] box."""
    if not items:
        return image, []
    canvas = Image.fromarray(image)
    draw = ImageDraw.Draw(canvas)
    boxes = []
    for item in items:
        font = load_font(item.size_px)
        draw.text((item.x, item.y), item.text, fill=item.color, font=font, anchor=item.anchor)
        boxes.append(
            [float(v) for v in draw.textbbox((item.x, item.y), item.text, font=font, anchor=item.anchor)]
        )
    return np.array(canvas), boxes
