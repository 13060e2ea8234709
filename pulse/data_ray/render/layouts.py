"""Page layouts in millimetres: which lead goes where, and which time window it shows.

Paper conventions are fixed: 25 mm/s horizontally and 10 mm/mV vertically. A layout is a
list of panels; each panel shows one lead over ``[start_s, end_s)`` starting at ``x_mm`` on a
baseline at ``baseline_mm``. 3x4 columns show consecutive segments (0–2.5 s, 2.5–5 s, …),
6x2 shows 0–5 s then 5–10 s, 12x1 and rhythm strips show the whole duration.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

MM_PER_S = 25.0
MM_PER_MV = 10.0

LayoutName = Literal["3x4", "3x4+1", "3x4+3", "6x2", "12x1"]
LAYOUTS: tuple[str, ...] = ("3x4", "3x4+1", "3x4+3", "6x2", "12x1")
PaperName = Literal["letter", "a4"]
# Landscape page sizes (width, height) in mm.
PAPER_MM: dict[str, tuple[float, float]] = {"letter": (279.4, 215.9), "a4": (297.0, 210.0)}

COLUMNS_3X4 = (("I", "II", "III"), ("aVR", "aVL", "aVF"), ("V1", "V2", "V3"), ("V4", "V5", "V6"))
COLUMNS_6X2 = (("I", "II", "III", "aVR", "aVL", "aVF"), ("V1", "V2", "V3", "V4", "V5", "V6"))
ALL_12 = COLUMNS_6X2[0] + COLUMNS_6X2[1]

HEADER_MM = 30.0  # reserved above the first row for the printed header
FOOTER_MM = 12.0  # reserved below the last row for the scale text
CALIBRATION_MM = 10.0  # room left of each row for the 1 mV calibration pulse


@dataclass(frozen=True)
class Panel:
    """One lead drawn over one time window."""

    lead: str
    row: int
    column: int
    start_s: float
    end_s: float
    x_mm: float
    baseline_mm: float
    height_mm: float

    @property
    def width_mm(self) -> float:
        return (self.end_s - self.start_s) * MM_PER_S


@dataclass(frozen=True)
class PageLayout:
    """Where every panel sits on a page, plus the page geometry the renderer needs."""

    name: str
    paper: str
    width_mm: float
    height_mm: float
    rows: int
    columns: int
    row_pitch_mm: float
    trace_x_mm: float
    panels: tuple[Panel, ...]

    def row_baselines_mm(self) -> list[float]:
        return sorted({p.baseline_mm for p in self.panels})


def _grid(
    columns: tuple[tuple[str, ...], ...], duration_s: float
) -> list[tuple[str, int, int, float, float]]:
    """(lead, row, column, start_s, end_s) for a column-major grid of consecutive time segments."""
    segment = duration_s / len(columns)
    return [
        (lead, row, col, col * segment, (col + 1) * segment)
        for col, leads in enumerate(columns)
        for row, lead in enumerate(leads)
    ]


def build_layout(
    name: str, paper: str = "letter", duration_s: float = 10.0, rhythm_leads: tuple[str, ...] = ("II",)
) -> PageLayout:
    """Place the panels of layout ``name`` on a landscape ``paper`` page.

    Args:
        name: one of ``LAYOUTS``. ``3x4+1`` adds one full-length rhythm strip of
            ``rhythm_leads[0]``; ``3x4+3`` adds three strips (``rhythm_leads[:3]``).
        paper: ``letter`` or ``a4``.
        duration_s: seconds shown across the page (10 s = 250 mm).
        rhythm_leads: leads for the rhythm strips.

    Returns:
        The page layout, rows top to bottom, baselines on whole millimetres.
    """
    if name not in LAYOUTS:
        raise ValueError(f"Unknown layout {name!r}; choose one of {LAYOUTS}")
    if paper not in PAPER_MM:
        raise ValueError(f"Unknown paper {paper!r}; choose one of {tuple(PAPER_MM)}")
    width_mm, height_mm = PAPER_MM[paper]
    if name.startswith("3x4"):
        cells = _grid(COLUMNS_3X4, duration_s)
        strips = {"3x4": 0, "3x4+1": 1, "3x4+3": 3}[name]
        if len(rhythm_leads) < strips:
            raise ValueError(f"Layout {name} needs {strips} rhythm leads, got {list(rhythm_leads)}")
        cells += [(lead, 3 + i, 0, 0.0, duration_s) for i, lead in enumerate(rhythm_leads[:strips])]
        columns = 4
    elif name == "6x2":
        cells, columns = _grid(COLUMNS_6X2, duration_s), 2
    else:
        cells, columns = [(lead, i, 0, 0.0, duration_s) for i, lead in enumerate(ALL_12)], 1
    rows = 1 + max(c[1] for c in cells)

    available = height_mm - HEADER_MM - FOOTER_MM
    pitch = float(math.floor(available / rows))
    top = HEADER_MM + math.floor((available - pitch * rows) / 2)
    trace_width = duration_s * MM_PER_S
    # Centre calibration pulse + traces, then snap the trace start to the 5 mm grid.
    trace_x = 5.0 * round(((width_mm - trace_width - CALIBRATION_MM) / 2 + CALIBRATION_MM) / 5.0)
    panels = tuple(
        Panel(
            lead=lead,
            row=row,
            column=col,
            start_s=start,
            end_s=end,
            x_mm=trace_x + start * MM_PER_S,
            baseline_mm=float(round(top + pitch * (row + 0.6))),
            height_mm=pitch,
        )
        for lead, row, col, start, end in cells
    )
    return PageLayout(name, paper, width_mm, height_mm, rows, columns, pitch, trace_x, panels)
