import numpy as np
import pytest
from pydantic import ValidationError

from pulse.data_ray.render.distortions import DistortionParams, kelvin_gains, sample_distortions
from pulse.data_ray.render.renderer import Renderer, RenderParams

NAMES = list(DistortionParams.model_fields)


def only(name: str, **values) -> DistortionParams:
    """Distortion params where just ``name`` fires (p=1), with optional range overrides."""
    ops = {n: {"p": 0.0} for n in NAMES}
    ops[name] = {"p": 1.0, **values}
    return DistortionParams.model_validate(ops)


def dark_fraction(image: np.ndarray, xs: np.ndarray, ys: np.ndarray) -> float:
    """Share of in-frame coordinates with a dark (trace) pixel within one pixel."""
    gray = image.min(axis=2)
    h, w = gray.shape
    inside = (xs >= 0) & (xs <= w - 1) & (ys >= 0) & (ys <= h - 1)
    cx, cy = np.rint(xs[inside]).astype(int), np.rint(ys[inside]).astype(int)
    best = np.full(cx.shape, 255)
    for dy in (-1, 0, 1):
        for dx in (-1, 0, 1):
            best = np.minimum(best, gray[np.clip(cy + dy, 0, h - 1), np.clip(cx + dx, 0, w - 1)])
    return float((best < 120).mean())


@pytest.mark.parametrize(
    ("name", "values"),
    [
        ("rotation", {"degrees": (4.0, 5.0)}),
        ("perspective", {"corner_shift": (0.05, 0.06)}),
        ("padding", {"fraction": (0.05, 0.1)}),
        ("crop", {"fraction": (0.03, 0.05)}),
        ("resolution", {"scale": (0.5, 0.6)}),
    ],
)
def test_coordinates_stay_on_the_trace_after_each_geometric_distortion(name, values, render_data):
    params = RenderParams(
        dpi=80,
        clean_fraction=0.0,
        grid_probability=0.0,
        lead_labels=False,
        calibration_pulse=False,
        header_probability=0.0,
        image_format="png",
        line_width_mm=0.5,
        distortions=only(name, **values),
    )
    record = render_data.synthetic_record(fs=250.0)
    clean = Renderer(params.model_copy(update={"clean_fraction": 1.0})).render(record, seed=5)
    out = Renderer(params).render(record, seed=5)
    assert name in out.distortions
    x = np.concatenate([lead["x"] for lead in out.leads])
    y = np.concatenate([lead["y"] for lead in out.leads])
    clean_x = np.concatenate([lead["x"] for lead in clean.leads])
    assert not np.allclose(x, clean_x)  # the distortion really moved the trace
    assert dark_fraction(out.image, x, y) > 0.95
    assert dark_fraction(out.image, x + 9, y - 9) < 0.5  # a wrong mapping would be caught
    for lead in out.leads:
        x0, y0, x1, y1 = lead["bbox"]
        assert x0 <= lead["x"].min() + 1e-3 and lead["x"].max() <= x1 + 1e-3
        assert y0 <= lead["y"].min() + 1e-3 and lead["y"].max() <= y1 + 1e-3


def test_sampled_values_are_recorded_within_their_ranges():
    params = DistortionParams()
    seen: dict[str, int] = {}
    for seed in range(200):
        sampled = sample_distortions(params, np.random.default_rng(seed))
        for name, _values in sampled.items():
            seen[name] = seen.get(name, 0) + 1
        if "rotation" in sampled:
            assert -5.0 <= sampled["rotation"]["degrees"] <= 5.0
        if "jpeg" in sampled:
            assert 25 <= sampled["jpeg"]["quality"] <= 85
    # Each op fires at roughly its probability (200 draws; loose bounds).
    assert 70 <= seen["rotation"] <= 130 and 5 <= seen["salt_pepper"] <= 40
    assert set(seen) - {"background_rgb"} == set(NAMES)


def test_ranges_and_probabilities_are_validated():
    with pytest.raises(ValidationError, match=r"degrees: low 5\.0 is above high -5\.0"):
        DistortionParams.model_validate({"rotation": {"degrees": [5, -5]}})
    with pytest.raises(ValidationError, match=r"p must be between 0 and 1, got 1\.5"):
        DistortionParams.model_validate({"blur": {"p": 1.5}})
    with pytest.raises(ValidationError, match="Extra inputs"):
        DistortionParams.model_validate({"rotation": {"angle": 3}})


def test_colour_temperature_gains():
    warm, cool = kelvin_gains(3000), kelvin_gains(9000)
    assert warm[0] == pytest.approx(1.0) and warm[2] < 0.7  # warm light: less blue
    assert cool[2] == pytest.approx(1.0) and cool[0] < 0.95  # cool light: less red
    assert kelvin_gains(6600) == pytest.approx(np.ones(3), abs=0.02)


def test_every_distortion_at_once_on_a_full_size_page(render_data, cinc_records):
    """The one full-size (200 dpi letter) distorted render: all ops fire and the page still reads."""
    ops = {n: {"p": 1.0} for n in NAMES}
    ops["resolution"] = {"p": 1.0, "scale": (0.9, 0.9)}
    params = RenderParams(clean_fraction=0.0, header_probability=1.0, distortions=ops)
    out = Renderer(params).render(cinc_records[0], seed=2)
    assert set(NAMES) <= set(out.distortions)
    assert out.image_format == "jpeg" and out.encoded[:2] == b"\xff\xd8"
    pad_l, _, pad_r, _ = out.distortions["padding"]["fraction"]
    crop_l, _, crop_r, _ = out.distortions["crop"]["fraction"]
    padded = 2200 + round(pad_l * 2200) + round(pad_r * 2200)
    cropped = padded - round(crop_l * padded) - round(crop_r * padded)
    assert out.width == round(cropped * 0.9)  # padding, then crop, then the 0.9x resolution
    assert out.dpi == 180
    assert 0.2 < out.image.mean() / 255 < 0.95  # neither blank nor black
