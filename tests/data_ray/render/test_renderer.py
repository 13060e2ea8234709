import numpy as np
import pytest
from pydantic import ValidationError

from pulse.data_ray.render.header import header_lines
from pulse.data_ray.render.layouts import MM_PER_MV, MM_PER_S, build_layout
from pulse.data_ray.render.records import estimate_heart_rate
from pulse.data_ray.render.renderer import RecordError, Renderer, RenderParams, decode_image

CLEAN = {"clean_fraction": 1.0, "header_probability": 0.0, "image_format": "png"}
PLAIN = {**CLEAN, "grid_probability": 0.0, "lead_labels": False}


def dark_fraction(image: np.ndarray, xs: np.ndarray, ys: np.ndarray, radius: int = 1) -> float:
    """Share of coordinates whose (2r+1)^2 neighbourhood holds a trace-dark pixel."""
    gray = image.min(axis=2) if image.ndim == 3 else image
    h, w = gray.shape
    inside = (xs >= 0) & (xs <= w - 1) & (ys >= 0) & (ys <= h - 1)
    cx, cy = np.rint(xs[inside]).astype(int), np.rint(ys[inside]).astype(int)
    best = np.full(cx.shape, 255, dtype=np.int32)
    for dy in range(-radius, radius + 1):
        for dx in range(-radius, radius + 1):
            best = np.minimum(best, gray[np.clip(cy + dy, 0, h - 1), np.clip(cx + dx, 0, w - 1)])
    return float((best < 110).mean())


def test_clean_page_size_and_determinism(render_data):
    record = render_data.synthetic_record()
    a = Renderer(RenderParams(**CLEAN)).render(record, seed=7)
    b = Renderer(RenderParams(**CLEAN)).render(record, seed=7)
    assert (a.width, a.height, a.dpi) == (2200, 1700, 200)  # letter landscape at 200 dpi, like the kit
    assert a.encoded == b.encoded
    assert np.array_equal(decode_image(a.encoded), a.image)

    distorted = RenderParams(clean_fraction=0.0, dpi=60)
    one = Renderer(distorted).render(record, seed=3)
    assert one.encoded == Renderer(distorted).render(record, seed=3).encoded
    assert one.distortions != Renderer(distorted).render(record, seed=4).distortions


def test_calibration_pulse_is_one_millivolt_at_the_given_dpi(render_data):
    dpi = 100
    ppm = dpi / 25.4
    out = Renderer(RenderParams(**PLAIN, dpi=dpi, layout="3x4")).render(
        render_data.synthetic_record(), seed=0
    )
    layout = build_layout("3x4")
    gray = out.image.min(axis=2)
    x0 = layout.trace_x_mm - 10 + 1  # the pulse: 2 mm flat, 5 mm at 1 mV, 2 mm flat
    baseline = layout.row_baselines_mm()[0]
    column = gray[:, round((x0 + 4.5) * ppm)]  # middle of the plateau
    band = slice(round((baseline - 15) * ppm), round((baseline + 2) * ppm))
    top = np.flatnonzero(column[band] < 128)[0] + band.start
    foot = gray[:, round((x0 + 1) * ppm)]
    base_rows = np.flatnonzero(foot[band] < 128) + band.start
    height_px = base_rows.mean() - (top + (len(np.flatnonzero(column[band] < 128)) - 1) / 2)
    assert height_px == pytest.approx(MM_PER_MV * ppm, abs=1.5)  # 39.4 px
    plateau_row = gray[top + 1, round(x0 * ppm) : round((x0 + 9) * ppm)]
    width_px = len(np.flatnonzero(plateau_row < 128))
    assert width_px == pytest.approx(5 * ppm, abs=3)


@pytest.mark.parametrize(
    ("layout", "expected"),
    [
        ("3x4", {"I": (0, 1250), "aVR": (1250, 2500), "V1": (2500, 3750), "V6": (3750, 5000)}),
        ("3x4+1", {"V4": (3750, 5000), "II": (0, 5000)}),
        ("6x2", {"I": (0, 2500), "aVF": (0, 2500), "V1": (2500, 5000), "V6": (2500, 5000)}),
        ("12x1", {"I": (0, 5000), "aVR": (0, 5000), "V6": (0, 5000)}),
    ],
)
def test_layouts_show_the_right_window_per_lead(layout, expected, render_data):
    out = Renderer(RenderParams(**PLAIN, dpi=50, layout=layout)).render(
        render_data.synthetic_record(), seed=0
    )
    by_name = {lead["name"]: lead for lead in out.leads}  # the strip (last) wins for II in 3x4+1
    for name, (start, end) in expected.items():
        lead = by_name[name]
        assert (lead["start_sample"], lead["end_sample"]) == (start, end), name
        assert len(lead["x"]) == end - start
    counts = {"3x4": 12, "3x4+1": 13, "6x2": 12, "12x1": 12}
    assert len(out.leads) == counts[layout]


def test_three_rhythm_strips_use_the_configured_leads(render_data):
    params = RenderParams(**PLAIN, dpi=50, layout="3x4+3", rhythm_leads=["V1", "II", "V5"])
    out = Renderer(params).render(render_data.synthetic_record(), seed=0)
    assert [lead["name"] for lead in out.leads[-3:]] == ["V1", "II", "V5"]
    assert all(lead["end_sample"] == 5000 for lead in out.leads[-3:])


@pytest.mark.parametrize("fs", [100.0, 400.0, 500.0, 1000.0])
def test_coordinates_digitise_back_to_the_signal(fs, render_data):
    """Digitise each lead from its coordinates (25 mm/s, 10 mm/mV) and compare with the input in mV."""
    dpi = 100
    ppm = dpi / 25.4
    record = render_data.synthetic_record(fs=fs)
    out = Renderer(RenderParams(**PLAIN, dpi=dpi, layout="3x4+1")).render(record, seed=1)
    rows = {name: i for i, name in enumerate(record["lead_names"])}
    for lead in out.leads:
        truth = record["signal"][rows[lead["name"]], lead["start_sample"] : lead["end_sample"]]
        x, y = lead["x"].astype(np.float64), lead["y"].astype(np.float64)
        assert np.diff(x) == pytest.approx(MM_PER_S * ppm / fs, abs=2e-4)  # float32 coordinates
        recovered = -(y - np.median(y)) / (MM_PER_MV * ppm)  # baseline unknown to a digitiser
        error = np.abs((recovered - recovered.mean()) - (truth - truth.mean()))
        assert error.max() < 0.005, (lead["name"], error.max())  # mV
    x, y = (
        np.concatenate([lead["x"] for lead in out.leads]),
        np.concatenate([lead["y"] for lead in out.leads]),
    )
    assert dark_fraction(out.image, x, y) > 0.97  # the coordinates sit on the drawn trace
    assert dark_fraction(out.image, x, y + 12) < 0.5  # and the check can fail


def test_missing_and_extra_leads(render_data):
    record = render_data.synthetic_record(lead_names=("II", "V1", "avr", "EXTRA"), fs=400.0)
    out = Renderer(RenderParams(**PLAIN, dpi=50, layout="3x4")).render(record, seed=0)
    names = [lead["name"] for lead in out.leads]
    assert "EXTRA" not in names and len(names) == 12
    missing = {lead["name"] for lead in out.leads if lead["missing"]}
    assert missing == {"I", "III", "aVL", "aVF", "V2", "V3", "V4", "V5", "V6"}
    assert all(len(lead["x"]) == 0 and len(lead["bbox"]) == 4 for lead in out.leads if lead["missing"])
    avr = next(lead for lead in out.leads if lead["name"] == "aVR")
    assert len(avr["x"]) == 1000  # 2.5 s at 400 Hz


def test_short_record_leaves_late_columns_empty(render_data):
    out = Renderer(RenderParams(**PLAIN, dpi=50, layout="3x4")).render(
        render_data.synthetic_record(seconds=4.0), seed=0
    )
    v1 = next(lead for lead in out.leads if lead["name"] == "V1")  # 5.0–7.5 s
    assert v1["start_sample"] == v1["end_sample"] and not v1["missing"]


@pytest.mark.parametrize(
    ("index", "reason"), [(0, "nan_signal"), (1, "absurd_amplitude"), (2, "empty_signal")]
)
def test_unrenderable_records_raise_with_a_reason(index, reason, render_data):
    with pytest.raises(RecordError, match=rf"^{reason}: "):
        Renderer(RenderParams(dpi=50)).render(render_data.bad_records()[index], seed=0)


def test_small_pages_for_tiny_models(render_data):
    record = render_data.synthetic_record()
    assert Renderer(RenderParams(**CLEAN, dpi=50)).render(record, 0).width == 550
    tile = Renderer(RenderParams(**CLEAN, dpi=50, max_side_px=112)).render(record, 0)
    assert (tile.width, tile.height) == (112, 87)
    assert max(lead["x"].max() for lead in tile.leads) < 112


def test_header_prints_metadata_and_rate(render_data):
    record = {
        **render_data.synthetic_record(bpm=75.0),
        "age": 63.0,
        "sex": "F",
        "recorded_at": "2020-01-02T03:04:05",
    }
    with_header = Renderer(RenderParams(**{**PLAIN, "dpi": 60, "header_probability": 1.0})).render(record, 0)
    without = Renderer(RenderParams(**{**PLAIN, "dpi": 60})).render(record, 0)
    band = slice(0, round(25 * 60 / 25.4))  # the top 25 mm
    assert (with_header.image[band] < 100).sum() > 200
    assert (without.image[band] < 100).sum() == 0
    assert with_header.distortions["header"] and not without.distortions["header"]
    lead_ii = record["signal"][1]
    lines = header_lines(record, estimate_heart_rate(lead_ii, record["fs"]))
    assert lines[1] == "Age: 63 yr    Sex: Female    Vent. rate: 75 bpm"
    assert "2020-01-02 03:04:05" in lines[0] and "synthetic/1" in lines[0]


def test_params_reject_layouts_without_enough_rhythm_leads():
    with pytest.raises(ValidationError, match="layout 3x4\\+3 needs 3 leads"):
        RenderParams(layout="3x4+3", rhythm_leads=["II"])
    with pytest.raises(ValidationError, match="not standard leads"):
        RenderParams(rhythm_leads=["X7"])
