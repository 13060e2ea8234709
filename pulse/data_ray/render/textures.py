"""Procedural textures generated once per worker: crumpled-paper relief and camera noise tiles.

Nothing is loaded from disk: the wrinkle relief is ridged multi-octave value noise (sharp
creases where the noise crosses zero), generated from a fixed seed so every worker builds
the same bank; each image picks a texture, a flip and a light direction.
"""

from __future__ import annotations

import cv2
import numpy as np

BANK_SEED = 20241025


def _value_noise(rng: np.random.Generator, height: int, width: int, cells: int) -> np.ndarray:
    """Smooth noise in [-1, 1]: a ``cells``-wide random lattice upsampled bicubically."""
    lattice = rng.uniform(-1.0, 1.0, (cells + 3, int(cells * width / height) + 3)).astype(np.float32)
    return cv2.resize(lattice, (width, height), interpolation=cv2.INTER_CUBIC)


def crumple_relief(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    """A height field of crumpled paper: ridged noise, several octaves, normalised to [0, 1]."""
    relief = np.zeros((height, width), dtype=np.float32)
    amplitude = 1.0
    for cells in (3, 6, 12, 24):
        relief += amplitude * (1.0 - np.abs(_value_noise(rng, height, width, cells)))
        amplitude *= 0.55
    relief -= relief.min()
    return relief / max(float(relief.max()), 1e-6)


class TextureBank:
    """Wrinkle reliefs (as light-ready gradients) and a Gaussian noise tile, built once."""

    SIZE = 6
    RELIEF_SHAPE = (432, 560)
    NOISE_TILE = 512
    NOISE_UNIT = 16.0  # the tile stores N(0, 1) * 16 as int16

    def __init__(self, seed: int = BANK_SEED):
        rng = np.random.default_rng(seed)
        self._gradients = []
        for _ in range(self.SIZE):
            relief = crumple_relief(rng, *self.RELIEF_SHAPE)
            gy, gx = np.gradient(relief * 40.0)
            scale = max(float(np.percentile(np.hypot(gx, gy), 99)), 1e-6)
            self._gradients.append((gx / scale, gy / scale))
        tile = rng.standard_normal((self.NOISE_TILE, self.NOISE_TILE, 3)) * self.NOISE_UNIT
        self._noise = np.round(tile).astype(np.int16)

    def gradients(self, index: int, height: int, width: int, flip: bool) -> tuple[np.ndarray, np.ndarray]:
        """Relief slope (x, y) of texture ``index`` at ``height`` x ``width``; ``flip`` mirrors it."""
        gx, gy = self._gradients[index % self.SIZE]
        gx = cv2.resize(gx, (width, height), interpolation=cv2.INTER_LINEAR)
        gy = cv2.resize(gy, (width, height), interpolation=cv2.INTER_LINEAR)
        if flip:
            gx, gy = -gx[:, ::-1], gy[:, ::-1]
        return gx, gy

    def noise(self, height: int, width: int, sigma: float, offset: list[int]) -> np.ndarray:
        """Per-channel Gaussian noise (int16) of standard deviation ``sigma`` covering the image."""
        tile = np.round(self._noise.astype(np.float32) * (sigma / self.NOISE_UNIT)).astype(np.int16)
        tile = np.roll(tile, (offset[0] % self.NOISE_TILE, offset[1] % self.NOISE_TILE), axis=(0, 1))
        reps = (-(-height // self.NOISE_TILE), -(-width // self.NOISE_TILE), 1)
        return np.tile(tile, reps)[:height, :width]
