"""Distortions of a printed page: their config (probability + range each), sampling, and effects.

Sampling draws every value from one seeded ``numpy.random.Generator`` in a fixed order and
returns only what fired, as plain JSON-able values (the *sampled* parameters, not the ranges).
Effects come in three groups applied in this order by the renderer:

1. paper (wrinkles, creases, yellowing, colour temperature): one low-resolution shading map
   and per-channel gains, upsampled and multiplied into the page in a single uint8 pass;
2. geometry (rotation, perspective, padding, crop, resolution): see ``geometry.py``;
3. camera (shadow, blur, Gaussian and salt-and-pepper noise, JPEG artefacts).
"""

from __future__ import annotations

from typing import Any

import cv2
import numpy as np
from pydantic import field_validator, model_validator

from pulse.config import StrictModel
from pulse.data_ray.render.textures import TextureBank

SHADING_SCALE = 4  # shading maps are computed at 1/4 resolution; they are smooth anyway
BACKGROUNDS: tuple[tuple[int, int, int], ...] = ((28, 28, 30), (92, 74, 58), (150, 150, 145), (235, 235, 230))


class Op(StrictModel):
    """A distortion that fires with probability ``p`` (given that the image is distorted)."""

    p: float = 0.0

    @field_validator("p")
    @classmethod
    def _probability(cls, value: float) -> float:
        if not 0.0 <= value <= 1.0:
            raise ValueError(f"p must be between 0 and 1, got {value}")
        return value

    @model_validator(mode="after")
    def _ranges_ordered(self):
        for name, value in self:
            if isinstance(value, tuple) and len(value) == 2 and value[0] > value[1]:
                raise ValueError(f"{name}: low {value[0]} is above high {value[1]}")
        return self


class Wrinkles(Op):
    p: float = 0.5
    strength: tuple[float, float] = (0.06, 0.18)


class Creases(Op):
    p: float = 0.4
    vertical: tuple[int, int] = (1, 3)
    horizontal: tuple[int, int] = (0, 2)
    angle_jitter_deg: float = 4.0
    strength: tuple[float, float] = (0.08, 0.25)


class Yellowing(Op):
    p: float = 0.4
    strength: tuple[float, float] = (0.05, 0.3)


class ColorTemperature(Op):
    p: float = 0.3
    kelvin: tuple[float, float] = (3000.0, 9000.0)


class Rotation(Op):
    p: float = 0.5
    degrees: tuple[float, float] = (-5.0, 5.0)


class Perspective(Op):
    p: float = 0.3
    corner_shift: tuple[float, float] = (0.01, 0.06)
    """Largest corner displacement as a fraction of the page's short side."""


class Padding(Op):
    p: float = 0.2
    fraction: tuple[float, float] = (0.0, 0.08)


class Crop(Op):
    p: float = 0.2
    fraction: tuple[float, float] = (0.0, 0.04)


class Resolution(Op):
    p: float = 0.3
    scale: tuple[float, float] = (0.45, 1.0)


class Shadow(Op):
    p: float = 0.2
    strength: tuple[float, float] = (0.15, 0.45)


class Blur(Op):
    p: float = 0.3
    sigma_px: tuple[float, float] = (0.4, 1.4)


class GaussianNoise(Op):
    p: float = 0.3
    sigma: tuple[float, float] = (3.0, 14.0)


class SaltPepper(Op):
    p: float = 0.1
    amount: tuple[float, float] = (0.0005, 0.004)


class JpegArtefacts(Op):
    p: float = 0.3
    quality: tuple[int, int] = (25, 85)


class DistortionParams(StrictModel):
    """Every distortion's probability and range; all fire independently on a distorted image."""

    wrinkles: Wrinkles = Wrinkles()
    creases: Creases = Creases()
    yellowing: Yellowing = Yellowing()
    color_temperature: ColorTemperature = ColorTemperature()
    rotation: Rotation = Rotation()
    perspective: Perspective = Perspective()
    padding: Padding = Padding()
    crop: Crop = Crop()
    resolution: Resolution = Resolution()
    shadow: Shadow = Shadow()
    blur: Blur = Blur()
    gaussian_noise: GaussianNoise = GaussianNoise()
    salt_pepper: SaltPepper = SaltPepper()
    jpeg: JpegArtefacts = JpegArtefacts()


def _uniform(rng: np.random.Generator, bounds: tuple[float, float], digits: int = 4) -> float:
    return round(float(rng.uniform(bounds[0], bounds[1])), digits)


def sample_distortions(params: DistortionParams, rng: np.random.Generator) -> dict[str, Any]:
    """Decide which distortions fire and draw their values; returns ``{name: sampled values}``."""
    out: dict[str, Any] = {}
    # Every op draws its coin and values even when it does not fire, so changing one op's p
    # does not reshuffle the values of the others.
    for name in DistortionParams.model_fields:
        op = getattr(params, name)
        fires = bool(rng.random() < op.p)
        values = _SAMPLERS[name](op, rng)
        if fires:
            out[name] = values
    if any(k in out for k in ("rotation", "perspective", "padding")):
        out["background_rgb"] = list(BACKGROUNDS[int(rng.integers(len(BACKGROUNDS)))])
    return out


_SAMPLERS = {
    "wrinkles": lambda op, rng: {
        "strength": _uniform(rng, op.strength),
        "texture": int(rng.integers(TextureBank.SIZE)),
        "light_deg": _uniform(rng, (0, 360), 1),
        "flip": bool(rng.random() < 0.5),
    },
    "creases": lambda op, rng: {
        "vertical": int(rng.integers(op.vertical[0], op.vertical[1] + 1)),
        "horizontal": int(rng.integers(op.horizontal[0], op.horizontal[1] + 1)),
        "angle_deg": _uniform(rng, (-op.angle_jitter_deg, op.angle_jitter_deg), 2),
        "strength": _uniform(rng, op.strength),
        "jitter": [_uniform(rng, (-0.04, 0.04)) for _ in range(8)],
    },
    "yellowing": lambda op, rng: {"strength": _uniform(rng, op.strength)},
    "color_temperature": lambda op, rng: {"kelvin": round(_uniform(rng, op.kelvin, 0))},
    "rotation": lambda op, rng: {"degrees": _uniform(rng, op.degrees, 3)},
    "perspective": lambda op, rng: {
        "corner_shift": _uniform(rng, op.corner_shift),
        "corners": [[_uniform(rng, (-1, 1)), _uniform(rng, (-1, 1))] for _ in range(4)],
    },
    "padding": lambda op, rng: {"fraction": [_uniform(rng, op.fraction) for _ in range(4)]},
    "crop": lambda op, rng: {"fraction": [_uniform(rng, op.fraction) for _ in range(4)]},
    "resolution": lambda op, rng: {"scale": _uniform(rng, op.scale, 3)},
    "shadow": lambda op, rng: {
        "strength": _uniform(rng, op.strength),
        "angle_deg": _uniform(rng, (0, 360), 1),
        "offset": _uniform(rng, (-0.3, 0.5)),
        "softness": _uniform(rng, (0.05, 0.3)),
    },
    "blur": lambda op, rng: {"sigma_px": _uniform(rng, op.sigma_px, 3)},
    "gaussian_noise": lambda op, rng: {
        "sigma": _uniform(rng, op.sigma, 2),
        "offset": [int(rng.integers(1 << 16)), int(rng.integers(1 << 16))],
    },
    "salt_pepper": lambda op, rng: {
        "amount": _uniform(rng, op.amount, 5),
        "seed": int(rng.integers(1 << 31)),
    },
    "jpeg": lambda op, rng: {"quality": int(rng.integers(op.quality[0], op.quality[1] + 1))},
}


def kelvin_gains(kelvin: float) -> np.ndarray:
    """RGB gains (max 1) of a black-body light at ``kelvin`` (Tanner Helland's fit), white at ~6600 K."""
    t = kelvin / 100.0
    red = 255.0 if t <= 66 else 329.7 * (t - 60) ** -0.1332
    green = 99.47 * np.log(t) - 161.12 if t <= 66 else 288.12 * (t - 60) ** -0.0755
    blue = 255.0 if t >= 66 else (0.0 if t <= 19 else 138.52 * np.log(t - 10) - 305.04)
    gains = np.clip(np.array([red, green, blue], dtype=np.float32), 1.0, 255.0) / 255.0
    return gains / gains.max()


def _fold_profile(distance: np.ndarray, width: float, strength: float) -> np.ndarray:
    """A fold seen from above: a dark core, one side darker and the other lit."""
    u = distance / width
    return strength * (0.6 * u * np.exp(-(u**2)) - 0.7 * np.exp(-((u / 0.25) ** 2)))


def paper_shading(
    sampled: dict[str, Any], height: int, width: int, textures: TextureBank
) -> tuple[np.ndarray | None, np.ndarray]:
    """Low-res multiplicative shading (wrinkles, creases) and RGB gains (yellowing, temperature)."""
    h, w = max(2, height // SHADING_SCALE), max(2, width // SHADING_SCALE)
    shade = None
    if "wrinkles" in sampled:
        s = sampled["wrinkles"]
        gx, gy = textures.gradients(s["texture"], h, w, s["flip"])
        angle = np.deg2rad(s["light_deg"])
        shade = 1.0 + s["strength"] * (np.cos(angle) * gx + np.sin(angle) * gy)
    if "creases" in sampled:
        s = sampled["creases"]
        shade = np.ones((h, w), np.float32) if shade is None else shade
        ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
        theta = np.deg2rad(s["angle_deg"])
        width_px = 0.012 * max(h, w)
        for axis, count in (("v", s["vertical"]), ("h", s["horizontal"])):
            for k in range(count):
                frac = (k + 1) / (count + 1) + s["jitter"][(k + (4 if axis == "h" else 0)) % 8]
                if axis == "v":
                    dist = (xs - frac * w) * np.cos(theta) + (ys - h / 2) * np.sin(theta)
                else:
                    dist = (ys - frac * h) * np.cos(theta) - (xs - w / 2) * np.sin(theta)
                shade += _fold_profile(dist, width_px, s["strength"])
    gains = np.ones(3, dtype=np.float32)
    if "yellowing" in sampled:
        a = sampled["yellowing"]["strength"]
        gains *= np.array([1.0 - 0.05 * a, 1.0 - 0.2 * a, 1.0 - 0.65 * a], dtype=np.float32)
    if "color_temperature" in sampled:
        gains *= kelvin_gains(sampled["color_temperature"]["kelvin"])
    if shade is not None:
        shade = np.clip(shade / max(1.0, float(np.percentile(shade, 99.5))), 0.0, 1.0).astype(np.float32)
    return shade, gains


def shadow_map(sampled: dict[str, Any], height: int, width: int) -> np.ndarray:
    """A soft shadow over part of the page (low resolution, values in (0, 1])."""
    s = sampled["shadow"]
    h, w = max(2, height // SHADING_SCALE), max(2, width // SHADING_SCALE)
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
    theta = np.deg2rad(s["angle_deg"])
    extent = max(h, w)
    dist = ((xs - w / 2) * np.cos(theta) + (ys - h / 2) * np.sin(theta)) / extent - s["offset"]
    mask = 1.0 / (1.0 + np.exp(-dist / s["softness"]))
    return (1.0 - s["strength"] * mask).astype(np.float32)


def apply_shading(image: np.ndarray, shade: np.ndarray | None, gains: np.ndarray) -> np.ndarray:
    """Multiply ``image`` by an upsampled shading map and per-channel gains in one uint8 pass."""
    height, width = image.shape[:2]
    if shade is None:
        if np.allclose(gains, 1.0):
            return image
        lut = np.clip(np.arange(256, dtype=np.float32)[:, None] * gains[None, :], 0, 255).astype(np.uint8)
        return cv2.merge([cv2.LUT(image[..., c], lut[:, c]) for c in range(3)])
    low = np.clip(shade[..., None] * gains[None, None, :] * 255.0, 0, 255).astype(np.uint8)
    full = cv2.resize(low, (width, height), interpolation=cv2.INTER_LINEAR)
    return cv2.multiply(image, full, scale=1.0 / 255.0)


def apply_camera(image: np.ndarray, sampled: dict[str, Any], textures: TextureBank) -> np.ndarray:
    """Shadow, blur, Gaussian noise and salt-and-pepper, in that order (JPEG is done at encode)."""
    height, width = image.shape[:2]
    if "shadow" in sampled:
        image = apply_shading(image, shadow_map(sampled, height, width), np.ones(3, np.float32))
    if "blur" in sampled:
        image = cv2.GaussianBlur(image, (0, 0), sampled["blur"]["sigma_px"])
    if "gaussian_noise" in sampled:
        s = sampled["gaussian_noise"]
        noise = textures.noise(height, width, s["sigma"], s["offset"])
        image = np.clip(image.astype(np.int16) + noise, 0, 255).astype(np.uint8)
    if "salt_pepper" in sampled:
        s = sampled["salt_pepper"]
        rng = np.random.default_rng(s["seed"])
        count = int(s["amount"] * height * width)
        ys, xs = rng.integers(0, height, count), rng.integers(0, width, count)
        image = image.copy() if not image.flags.writeable else image
        image[ys, xs] = np.where(rng.random(count) < 0.5, 0, 255)[:, None].astype(np.uint8)
    return image
