"""Export a rendered image's metadata in ecg-image-kit's JSON layout (``--store_config 2``).

Digitisation tools written against ecg-image-kit read ``plotted_pixels`` as ``[y, x]`` pairs
per sample and bounding boxes as four ``[y, x]`` corners keyed ``"0"``–``"3"``; this module
writes pulse's coordinates that way. Unlike the kit, the values are the ones actually used
(the sampled rotation, not its maximum) and the coordinates include every crop and pad.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from pulse.data_ray.render.paper import PALETTES


def _corners(box: Sequence[float]) -> dict[str, list[float]]:
    x0, y0, x1, y1 = (round(float(v), 2) for v in box)
    return {"0": [y0, x0], "1": [y0, x1], "2": [y1, x1], "3": [y1, x0]}


def kit_json(
    *,
    width: int,
    height: int,
    layout: str,
    distortions: Mapping[str, Any] | str,
    leads: Sequence[Mapping[str, Any]],
    label_boxes: Sequence[Sequence[float] | None] | None = None,
) -> dict[str, Any]:
    """ecg-image-kit level-2 JSON for one image (fields of a RenderedImage or an IMAGE_SCHEMA row).

    Args:
        width: final image width in pixels.
        height: final image height in pixels.
        layout: the pulse layout name (``3x4+1`` …).
        distortions: the image's recorded parameters (dict or its JSON string).
        leads: per-lead dicts with name, bbox, x, y, start_sample, end_sample.
        label_boxes: optional lead-label boxes ``[x0, y0, x1, y1]`` (RenderedImage.label_boxes).
    """
    d = json.loads(distortions) if isinstance(distortions, str) else dict(distortions)
    scale = float(d.get("output_scale", d.get("resolution", {}).get("scale", 1.0)))
    grid_px = round(5.0 * float(d["px_per_mm"]) * scale, 2)
    palette = PALETTES[d.get("palette", "red")]
    creases = d.get("creases", {})
    crop = d.get("crop", {}).get("fraction")
    strips = [lead["name"] for lead in leads if lead["start_sample"] == 0 and layout.startswith("3x4+")]
    out: dict[str, Any] = {
        "sampling_frequency": float(d.get("fs", 0.0)),
        "width": int(width),
        "height": int(height),
        "x_grid": grid_px,
        "y_grid": grid_px,
        "resolution": round(float(d.get("dpi", 0)) * scale),
        "pad_inches": 0,
        "grid_line_color_major": list(palette.major),
        "grid_line_color_minor": list(palette.minor),
        "ecg_plot_color": list(palette.trace),
        "dc_pulse": True,
        "bw": bool(d.get("bw", False)),
        "gridlines": bool(d.get("grid", True)),
        "printed_text": bool(d.get("header", False)),
        "number_of_columns_in_image": {"3x4": 4, "6x2": 2, "12x1": 1}.get(layout.split("+")[0], 4),
        "full_mode_lead": strips[-1] if strips else "None",
        "wrinkles": "wrinkles" in d or "creases" in d,
        "crease_angle": creases.get("angle_deg", 0),
        "number_of_creases_horizontally": creases.get("horizontal", 0),
        "number_of_creases_vertically": creases.get("vertical", 0),
        "augment": not d.get("clean", True),
        "crop": max(crop) if crop else 0,
        "temperature": d.get("color_temperature", {}).get("kelvin", 0),
        "rotate": d.get("rotation", {}).get("degrees", 0),
        "noise": d.get("gaussian_noise", {}).get("sigma", 0),
        "leads": [],
    }
    for i, lead in enumerate(leads):
        x = np.asarray(lead["x"], dtype=np.float64)
        y = np.asarray(lead["y"], dtype=np.float64)
        entry = {
            "lead_name": lead["name"],
            "start_sample": int(lead["start_sample"]),
            "end_sample": int(lead["end_sample"]),
            "plotted_pixels": np.round(np.stack([y, x], axis=1), 2).tolist(),
            "lead_bounding_box": _corners(lead["bbox"]),
        }
        if label_boxes and label_boxes[i] is not None:
            entry["text_bounding_box"] = _corners(label_boxes[i])
        out["leads"].append(entry)
    return out


def export_images(images_dir: str, output_dir: str, storage=None) -> list[str]:
    """Write one kit-style JSON per image row of ``<images_dir>/*.parquet`` into ``output_dir``.

    Files are named like the image files (``<dataset>/<id>.json``); returns their paths.
    """
    from pulse import io
    from pulse.data_ray.render.sink import file_name

    written = []
    for path in io.list_files(images_dir, "*.parquet", storage):
        table = io.read_parquet(path, storage).drop_columns(["image"])
        for row in table.to_pylist():
            if row["error"]:
                continue
            doc = kit_json(
                width=row["width"],
                height=row["height"],
                layout=row["layout"],
                distortions=row["distortions"],
                leads=row["leads"],
            )
            target = io.join(output_dir, file_name(row["record_id"], "json"))
            io.write_text(target, json.dumps(doc), storage)
            written.append(target)
    return written
