"""What the renderer is asked for and what it returns: ``RenderParams`` (a page's look and how often
each variation occurs), ``RenderedImage`` (one page and its lead coordinates) and ``RecordError``
(a record that cannot be drawn)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
from pydantic import Field, model_validator

from pulse.config import StrictModel
from pulse.data_ray.render.distortions import DistortionParams
from pulse.data_ray.render.layouts import LayoutName, PaperName
from pulse.schema import STANDARD_LEADS

PaletteChoice = Literal["brown", "pink", "blue", "green", "red", "bw", "random"]


class RecordError(ValueError):
    """A record that cannot be rendered; the message is ``"<reason>: <detail>"``."""


class RenderParams(StrictModel):
    """What a page looks like and how often each variation occurs (all sampled per image)."""

    layout: LayoutName = "3x4+1"
    layout_weights: dict[LayoutName, float] | None = None
    """When set, each image draws its layout with these weights (``layout`` is then ignored)."""
    rhythm_leads: list[str] = ["II", "V1", "V5"]
    """Rhythm-strip leads: ``3x4+1`` uses the first, ``3x4+3`` the first three."""
    paper: PaperName = "letter"
    dpi: int = Field(200, ge=20, le=600)
    max_side_px: int | None = Field(None, ge=32)
    """Shrink the final image so its longer side is at most this (small model tiles)."""
    duration_s: float = Field(10.0, gt=0, le=10.0)
    palette: PaletteChoice = "red"
    bw_probability: float = Field(0.0, ge=0, le=1)
    grid_probability: float = Field(0.98, ge=0, le=1)
    header_probability: float = Field(0.5, ge=0, le=1)
    calibration_pulse: bool = True
    lead_labels: bool = True
    line_width_mm: float = Field(0.25, gt=0)
    image_format: Literal["png", "jpeg"] = "jpeg"
    jpeg_quality: int = Field(92, ge=10, le=100)
    clean_fraction: float = Field(0.5, ge=0, le=1)
    """Share of images with no distortion at all (PULSE mixes clean and distorted about 1:1)."""
    distortions: DistortionParams = DistortionParams()
    seed: int = 0
    """Base seed; the stage derives each record's seed from it and the record id."""

    @model_validator(mode="after")
    def _rhythm_leads_fit_the_layouts(self):
        unknown = [lead for lead in self.rhythm_leads if lead not in STANDARD_LEADS]
        if unknown:
            raise ValueError(f"rhythm_leads: {unknown} are not standard leads {list(STANDARD_LEADS)}")
        layouts = set(self.layout_weights or {self.layout: 1.0})
        needed = 3 if "3x4+3" in layouts else 1 if "3x4+1" in layouts else 0
        if len(self.rhythm_leads) < needed:
            raise ValueError(
                f"rhythm_leads: layout 3x4+{needed} needs {needed} leads, got {self.rhythm_leads}"
            )
        if self.layout_weights is not None and sum(self.layout_weights.values()) <= 0:
            raise ValueError("layout_weights: weights must sum to more than 0")
        return self


@dataclass
class RenderedImage:
    """One rendered page and everything needed to use it for training or digitisation."""

    image: np.ndarray
    encoded: bytes
    image_format: str
    width: int
    height: int
    dpi: int
    layout: str
    distortions: dict[str, Any]
    leads: list[dict[str, Any]]
    fs: float = 0.0
    label_boxes: list[list[float] | None] = field(default_factory=list)
