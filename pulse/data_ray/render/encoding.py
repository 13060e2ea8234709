"""PNG/JPEG encoding of RGB pages (OpenCV, deterministic byte output)."""

from __future__ import annotations

import cv2
import numpy as np


def encode_image(image: np.ndarray, image_format: str, quality: int = 92) -> bytes:
    """PNG or JPEG bytes of an RGB uint8 image."""
    bgr = cv2.cvtColor(image, cv2.COLOR_RGB2BGR)
    if image_format == "png":
        ok, buf = cv2.imencode(".png", bgr, [cv2.IMWRITE_PNG_COMPRESSION, 1])
    else:
        ok, buf = cv2.imencode(".jpg", bgr, [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
    if not ok:
        raise RuntimeError(f"OpenCV could not encode a {image.shape} image as {image_format}")
    return buf.tobytes()


def decode_image(data: bytes) -> np.ndarray:
    """RGB uint8 array from PNG/JPEG bytes."""
    return cv2.cvtColor(cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)
