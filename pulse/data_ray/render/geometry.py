"""Coordinate transforms shared by the image warp and the recorded trace coordinates.

Every geometric distortion is a 3x3 homography in pixel coordinates with pixel centres on
integers (OpenCV's convention). The renderer composes them into one matrix, warps the page
once, and maps the plotted-sample coordinates through the same matrix, so the coordinates
stay exact. Resizing is the one step done separately (``cv2.resize`` with area averaging,
which keeps thin traces visible when shrinking); ``resize_matrix`` is its exact mapping.
"""

from __future__ import annotations

import cv2
import numpy as np


def identity() -> np.ndarray:
    return np.eye(3, dtype=np.float64)


def translation(dx: float, dy: float) -> np.ndarray:
    m = identity()
    m[0, 2], m[1, 2] = dx, dy
    return m


def rotation(degrees: float, width: int, height: int) -> np.ndarray:
    """Rotate by ``degrees`` (counter-clockwise on screen) about the image centre."""
    centre = ((width - 1) / 2, (height - 1) / 2)
    m = identity()
    m[:2] = cv2.getRotationMatrix2D(centre, degrees, 1.0)
    return m


def perspective(corner_shifts: np.ndarray, width: int, height: int) -> np.ndarray:
    """Move the four page corners (TL, TR, BR, BL) by ``corner_shifts`` (4 x 2, pixels)."""
    src = np.float32([[0, 0], [width - 1, 0], [width - 1, height - 1], [0, height - 1]])
    dst = (src + np.asarray(corner_shifts, dtype=np.float32)).astype(np.float32)
    return cv2.getPerspectiveTransform(src, dst).astype(np.float64)


def resize_matrix(width: int, height: int, new_width: int, new_height: int) -> np.ndarray:
    """The mapping ``cv2.resize`` applies: ``x' = (x + 0.5) * sx - 0.5``."""
    sx, sy = new_width / width, new_height / height
    m = identity()
    m[0, 0], m[1, 1] = sx, sy
    m[0, 2], m[1, 2] = 0.5 * sx - 0.5, 0.5 * sy - 0.5
    return m


def transform_points(matrix: np.ndarray, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Apply a homography to coordinate arrays; returns float32 (x, y)."""
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    w = matrix[2, 0] * x + matrix[2, 1] * y + matrix[2, 2]
    tx = (matrix[0, 0] * x + matrix[0, 1] * y + matrix[0, 2]) / w
    ty = (matrix[1, 0] * x + matrix[1, 1] * y + matrix[1, 2]) / w
    return tx.astype(np.float32), ty.astype(np.float32)


def transform_box(matrix: np.ndarray, box: list[float]) -> list[float]:
    """Axis-aligned bounds of a transformed box ``[x0, y0, x1, y1]``."""
    x0, y0, x1, y1 = box
    xs, ys = transform_points(matrix, np.array([x0, x1, x1, x0]), np.array([y0, y0, y1, y1]))
    return [float(xs.min()), float(ys.min()), float(xs.max()), float(ys.max())]


def is_identity(matrix: np.ndarray) -> bool:
    return bool(np.allclose(matrix, np.eye(3), atol=1e-12))


def warp(
    image: np.ndarray, matrix: np.ndarray, width: int, height: int, border: tuple[int, int, int]
) -> np.ndarray:
    """Warp ``image`` by ``matrix`` onto a ``width`` x ``height`` canvas filled with ``border``."""
    if is_identity(matrix) and image.shape[:2] == (height, width):
        return image
    flags = cv2.INTER_LINEAR
    if np.allclose(matrix[2], [0, 0, 1]):
        return cv2.warpAffine(
            image,
            matrix[:2],
            (width, height),
            flags=flags,
            borderMode=cv2.BORDER_CONSTANT,
            borderValue=border,
        )
    return cv2.warpPerspective(
        image, matrix, (width, height), flags=flags, borderMode=cv2.BORDER_CONSTANT, borderValue=border
    )


def resize(image: np.ndarray, scale: float) -> tuple[np.ndarray, np.ndarray]:
    """Resize by ``scale``; returns the image and the exact coordinate mapping."""
    height, width = image.shape[:2]
    new_w, new_h = max(1, round(width * scale)), max(1, round(height * scale))
    interp = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
    resized = cv2.resize(image, (new_w, new_h), interpolation=interp)
    return resized, resize_matrix(width, height, new_w, new_h)
