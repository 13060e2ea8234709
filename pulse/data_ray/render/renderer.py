"""Render one ECG record as a paper printout, with the pixel coordinates of every plotted sample.

``Renderer(params).render(record, seed)`` draws the grid, calibration pulses, traces, lead
labels, scale text and optional header, then applies the sampled distortions, and returns a
``RenderedImage``. The same ``seed`` and record give byte-identical output. Coordinates are
mapped through every geometric step (rotation, perspective, padding, crop, resize), so they
are true in the final image; samples pushed off-canvas by a crop keep their (outside) values.
Its parameters and result types (``RenderParams``, ``RenderedImage``, ``RecordError``) live in
``render/params.py``.
"""

from __future__ import annotations

from typing import Any

import cv2
import numpy as np

from pulse.data_ray.render import geometry
from pulse.data_ray.render.distortions import apply_camera, apply_shading, paper_shading
from pulse.data_ray.render.distortions import sample_distortions as _sample_distortions
from pulse.data_ray.render.encoding import decode_image, encode_image
from pulse.data_ray.render.header import TextItem, draw_text, header_lines
from pulse.data_ray.render.layouts import (
    CALIBRATION_MM,
    FOOTER_MM,
    LAYOUTS,
    MM_PER_MV,
    MM_PER_S,
    PageLayout,
    build_layout,
)
from pulse.data_ray.render.paper import GRID_PALETTES, PALETTES, draw_grid, px_per_mm
from pulse.data_ray.render.params import RecordError, RenderedImage, RenderParams
from pulse.data_ray.render.records import (
    as_signal,
    check_record,
    estimate_heart_rate,
    lead_index,
    lead_lengths,
)
from pulse.data_ray.render.textures import TextureBank


class Renderer:
    """Draws pages for one ``RenderParams``; builds textures once and caches grids per palette."""

    def __init__(self, params: RenderParams):
        self.params = params
        self.ppm = px_per_mm(params.dpi)
        rhythm = tuple(params.rhythm_leads)
        self.layouts: dict[str, PageLayout] = {
            name: build_layout(name, params.paper, params.duration_s, rhythm)
            for name in LAYOUTS
            if name != "3x4+3" or len(rhythm) >= 3
        }
        any_layout = next(iter(self.layouts.values()))
        self.width = round(any_layout.width_mm * self.ppm)
        self.height = round(any_layout.height_mm * self.ppm)
        self.textures = TextureBank()
        self._grids: dict[tuple[str, bool], np.ndarray] = {}
        self.thickness = max(1, round(params.line_width_mm * self.ppm))

    def _grid(self, palette: str, grid: bool) -> np.ndarray:
        key = (palette, grid)
        if key not in self._grids:
            self._grids[key] = draw_grid(self.width, self.height, self.params.dpi, PALETTES[palette], grid)
        return self._grids[key]

    def _sample_page(self, rng: np.random.Generator) -> dict[str, Any]:
        p = self.params
        if p.layout_weights:
            names = [n for n in p.layout_weights if n in self.layouts]
            weights = np.array([p.layout_weights[n] for n in names], dtype=np.float64)
            layout = names[int(rng.choice(len(names), p=weights / weights.sum()))]
        else:
            layout = p.layout
        palette = p.palette
        if palette == "random":
            palette = GRID_PALETTES[int(rng.integers(len(GRID_PALETTES)))]
        bw = bool(rng.random() < p.bw_probability)
        return {
            "layout": layout,
            "palette": "bw" if bw else palette,
            "bw": bw,
            "grid": bool(rng.random() < p.grid_probability),
            "header": bool(rng.random() < p.header_probability),
            "clean": bool(rng.random() < p.clean_fraction),
        }

    def render(self, record: dict[str, Any], seed: int) -> RenderedImage:
        """Render ``record`` (keys: record_id, signal [leads x samples, mV], fs, lead_names, optional
        age, sex, recorded_at) with every random choice drawn from ``seed``.

        Raises:
            RecordError: the record cannot be drawn (reason in the message).
        """
        signal = as_signal(record["signal"])
        problem = check_record(record, signal, self.params.duration_s)
        if problem:
            raise RecordError(problem)
        fs = float(record["fs"])
        rng = np.random.default_rng(seed)
        page_choice = self._sample_page(rng)
        sampled = {} if page_choice["clean"] else _sample_distortions(self.params.distortions, rng)
        layout = self.layouts[page_choice["layout"]]
        palette = PALETTES[page_choice["palette"]]
        image = self._grid(palette.name, page_choice["grid"]).copy()
        index = lead_index(record["lead_names"])
        leads, texts = self._draw_traces(image, layout, signal, index, fs, palette.trace)
        texts += self._page_texts(layout, record, signal, index, fs, palette.text, page_choice["header"])
        image, boxes = draw_text(image, texts)
        label_boxes = boxes[: len(leads)] if self.params.lead_labels else [None] * len(leads)

        shade, gains = paper_shading(sampled, self.height, self.width, self.textures)
        image = apply_shading(image, shade, gains)
        matrix, out_w, out_h = self._geometry(sampled)
        border = tuple(sampled.get("background_rgb", palette.paper))
        image = geometry.warp(image, matrix, out_w, out_h, border)
        scale = sampled.get("resolution", {}).get("scale", 1.0)
        if self.params.max_side_px and max(image.shape[:2]) * scale > self.params.max_side_px:
            scale = self.params.max_side_px / max(image.shape[:2])
        if scale != 1.0:
            image, resize_m = geometry.resize(image, scale)
            matrix = resize_m @ matrix
        image = apply_camera(image, sampled, self.textures)

        image_format, quality = self.params.image_format, self.params.jpeg_quality
        if "jpeg" in sampled:
            encoded = encode_image(image, "jpeg", sampled["jpeg"]["quality"])
            if image_format == "jpeg":
                quality = sampled["jpeg"]["quality"]
            else:
                image = decode_image(encoded)
                encoded = encode_image(image, image_format)
        else:
            encoded = encode_image(image, image_format, quality)

        self._map_leads(leads, matrix)
        label_boxes = [geometry.transform_box(matrix, b) if b else None for b in label_boxes]
        recorded = {"seed": int(seed), **page_choice, "dpi": self.params.dpi, "px_per_mm": self.ppm, "fs": fs}
        recorded.update(sampled)
        if scale != 1.0:
            recorded["output_scale"] = round(float(scale), 5)
        return RenderedImage(
            image=image,
            encoded=encoded,
            image_format=image_format,
            width=int(image.shape[1]),
            height=int(image.shape[0]),
            dpi=round(self.params.dpi * scale),
            layout=layout.name,
            distortions=recorded,
            leads=leads,
            fs=fs,
            label_boxes=label_boxes,
        )

    def _draw_traces(
        self,
        image: np.ndarray,
        layout: PageLayout,
        signal: np.ndarray,
        index: dict[str, int],
        fs: float,
        color,
    ) -> tuple[list[dict[str, Any]], list[TextItem]]:
        ppm, lengths = self.ppm, lead_lengths(signal)
        leads, labels, polylines = [], [], []
        label_px = round(3.2 * ppm)
        for panel in layout.panels:
            row = index.get(panel.lead)
            n_samples = int(lengths[row]) if row is not None else signal.shape[1]
            start = min(round(panel.start_s * fs), n_samples)
            end = min(round(panel.end_s * fs), n_samples)
            entry = {"name": panel.lead, "start_sample": start, "end_sample": end, "missing": row is None}
            if row is None or end <= start:
                x = y = np.zeros(0, dtype=np.float32)
                half = panel.height_mm / 2
                entry["bbox"] = [
                    ppm * panel.x_mm,
                    ppm * (panel.baseline_mm - half),
                    ppm * (panel.x_mm + panel.width_mm),
                    ppm * (panel.baseline_mm + half),
                ]
            else:
                t_mm = (np.arange(end - start, dtype=np.float64) / fs) * MM_PER_S
                x = (ppm * (panel.x_mm + t_mm)).astype(np.float32)
                y = ppm * (panel.baseline_mm - MM_PER_MV * signal[row, start:end].astype(np.float64))
                y = np.clip(y, 0, self.height - 1).astype(np.float32)
                polylines.append(np.round(np.stack([x, y], axis=1) * 16).astype(np.int32))
            entry["x"], entry["y"] = x, y
            leads.append(entry)
            if panel.column > 0:  # the tick that marks a lead change within a row
                tick_x = ppm * panel.x_mm
                tick = np.array(
                    [[tick_x, ppm * (panel.baseline_mm - 4)], [tick_x, ppm * (panel.baseline_mm + 4)]]
                )
                polylines.append(np.round(tick * 16).astype(np.int32))
            if self.params.lead_labels:
                labels.append(
                    TextItem(
                        ppm * (panel.x_mm + 1.5), ppm * (panel.baseline_mm + 2.5), panel.lead, label_px, color
                    )
                )
        if self.params.calibration_pulse:
            for baseline in layout.row_baselines_mm():
                x0 = layout.trace_x_mm - CALIBRATION_MM + 1
                pulse_mm = [(x0, 0), (x0 + 2, 0), (x0 + 2, -10), (x0 + 7, -10), (x0 + 7, 0), (x0 + 9, 0)]
                pts = np.array([[ppm * x, ppm * (baseline + dy)] for x, dy in pulse_mm])
                polylines.append(np.round(pts * 16).astype(np.int32))
        cv2.polylines(image, polylines, False, color, self.thickness, cv2.LINE_AA, shift=4)
        return leads, labels

    def _page_texts(
        self,
        layout: PageLayout,
        record,
        signal: np.ndarray,
        index: dict[str, int],
        fs: float,
        color,
        header: bool,
    ) -> list[TextItem]:
        ppm = self.ppm
        size = round(3.2 * ppm)
        footer_y = ppm * (layout.height_mm - FOOTER_MM / 2)
        x0 = layout.trace_x_mm - CALIBRATION_MM
        items = [
            TextItem(ppm * (x0 + 40), footer_y, "25mm/s", size, color, "lm"),
            TextItem(ppm * (x0 + 90), footer_y, "10mm/mV", size, color, "lm"),
        ]
        if header:
            rate_row = index.get("II", next(iter(index.values())))
            usable = min(
                int(lead_lengths(signal[rate_row : rate_row + 1])[0]), round(self.params.duration_s * fs)
            )
            rate = estimate_heart_rate(signal[rate_row, :usable], fs)
            for i, line in enumerate(header_lines(record, rate)):
                items.append(TextItem(ppm * x0, ppm * (8 + 6.5 * i), line, round(3.6 * ppm), color))
        return items

    def _geometry(self, sampled: dict[str, Any]) -> tuple[np.ndarray, int, int]:
        """One homography for rotation, perspective, padding and crop, and the output canvas size."""
        w, h = self.width, self.height
        matrix = geometry.identity()
        if "rotation" in sampled:
            matrix = geometry.rotation(sampled["rotation"]["degrees"], w, h) @ matrix
        if "perspective" in sampled:
            s = sampled["perspective"]
            shifts = np.asarray(s["corners"]) * s["corner_shift"] * min(w, h)
            matrix = geometry.perspective(shifts, w, h) @ matrix
        if "padding" in sampled:
            left, top, right, bottom = sampled["padding"]["fraction"]
            pl, pt, pr, pb = round(left * w), round(top * h), round(right * w), round(bottom * h)
            matrix = geometry.translation(pl, pt) @ matrix
            w, h = w + pl + pr, h + pt + pb
        if "crop" in sampled:
            left, top, right, bottom = sampled["crop"]["fraction"]
            cl, ct, cr, cb = round(left * w), round(top * h), round(right * w), round(bottom * h)
            matrix = geometry.translation(-cl, -ct) @ matrix
            w, h = w - cl - cr, h - ct - cb
        return matrix, w, h

    @staticmethod
    def _map_leads(leads: list[dict[str, Any]], matrix: np.ndarray) -> None:
        for entry in leads:
            if len(entry["x"]):
                entry["x"], entry["y"] = geometry.transform_points(matrix, entry["x"], entry["y"])
                entry["bbox"] = [
                    float(entry["x"].min()),
                    float(entry["y"].min()),
                    float(entry["x"].max()),
                    float(entry["y"].max()),
                ]
            else:
                entry["bbox"] = geometry.transform_box(matrix, entry["bbox"])
