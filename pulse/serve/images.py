"""Image inputs: ``data:`` URLs and (optionally) allow-listed remote URLs, decoded safely.

Every failure is an ``APIError`` (400) naming what was wrong. The byte limit is checked
before base64 decoding and the pixel limit before the pixels are decoded, so neither a
huge payload nor a decompression bomb is ever expanded in memory.
"""

from __future__ import annotations

import base64
import binascii
import io as _stdio
import re
import warnings
from urllib.parse import urlparse

from PIL import Image

from pulse.serve.config import LimitsConfig, RemoteImagesConfig
from pulse.serve.protocol import APIError

_DATA_URL = re.compile(
    r"^data:(?P<mime>[\w.+-]+/[\w.+-]+)?(?P<params>(;[\w.+-]+=[\w.+-]+)*)(?P<b64>;base64)?,"
)


def host_allowed(host: str, allowed: list[str]) -> bool:
    """Exact host match, or ``*.example.org`` matching any subdomain of example.org."""
    host = host.lower().rstrip(".")
    for pattern in allowed:
        pattern = pattern.lower().rstrip(".")
        if pattern.startswith("*."):
            if host.endswith(pattern[1:]):
                return True
        elif host == pattern:
            return True
    return False


def decode_data_url(url: str, limits: LimitsConfig, param: str) -> bytes:
    """The raw bytes of a base64 ``data:`` URL, within ``limits.max_image_bytes``."""
    match = _DATA_URL.match(url)
    if not match or not match.group("b64"):
        raise APIError(400, "image_url must be a base64 data URL (data:image/png;base64,...)", param=param)
    mime = (match.group("mime") or "").lower()
    if mime and not mime.startswith("image/"):
        raise APIError(
            400, f"Unsupported content type in data URL: {mime}", code="invalid_image", param=param
        )
    payload = url[match.end() :].strip()
    if len(payload) * 3 // 4 > limits.max_image_bytes + 3:
        raise APIError(
            413,
            f"Image too large: ~{len(payload) * 3 // 4} bytes > {limits.max_image_bytes}",
            code="image_too_large",
            param=param,
        )
    try:
        data = base64.b64decode(payload, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise APIError(400, f"Invalid base64 image data: {exc}", code="invalid_image", param=param) from None
    if len(data) > limits.max_image_bytes:
        raise APIError(
            413,
            f"Image too large: {len(data)} bytes > {limits.max_image_bytes}",
            code="image_too_large",
            param=param,
        )
    return data


def open_image(data: bytes, limits: LimitsConfig, param: str) -> Image.Image:
    """Decode image bytes to RGB after checking format and pixel count from the header."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(_stdio.BytesIO(data))
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise APIError(400, "Image has too many pixels", code="image_too_many_pixels", param=param) from None
    except Exception as exc:  # PIL raises many types for garbage input
        raise APIError(
            400, f"Cannot decode image: {type(exc).__name__}", code="invalid_image", param=param
        ) from None
    if (image.format or "").upper() not in limits.image_formats:
        raise APIError(
            400,
            f"Unsupported image format {image.format}; accepted: {', '.join(limits.image_formats)}",
            code="unsupported_image_format",
            param=param,
        )
    width, height = image.size
    if width * height > limits.max_image_pixels:
        raise APIError(
            400,
            f"Image has too many pixels: {width}x{height} > {limits.max_image_pixels}",
            code="image_too_many_pixels",
            param=param,
        )
    try:
        image.load()
        return image.convert("RGB")
    except Exception as exc:
        raise APIError(400, f"Cannot decode image: {exc}", code="invalid_image", param=param) from None


async def fetch_remote(url: str, limits: LimitsConfig, remote: RemoteImagesConfig, param: str) -> bytes:
    """Download an allow-listed http(s) image, streaming and stopping at the byte limit."""
    import httpx

    parsed = urlparse(url)
    if not remote.enabled:
        raise APIError(400, "Remote image URLs are disabled on this endpoint; send a data URL", param=param)
    if parsed.scheme not in {"http", "https"} or not parsed.hostname:
        raise APIError(400, f"Unsupported image URL scheme: {parsed.scheme or '(none)'}", param=param)
    if not host_allowed(parsed.hostname, remote.allowed_hosts):
        raise APIError(
            403, f"Image host not allowed: {parsed.hostname}", code="host_not_allowed", param=param
        )
    chunks: list[bytes] = []
    size = 0
    try:
        # No redirects: a redirect could leave the allow-list.
        async with (
            httpx.AsyncClient(timeout=remote.timeout_s, follow_redirects=False) as client,
            client.stream("GET", url) as resp,
        ):
            if resp.status_code != 200:
                raise APIError(400, f"Image URL returned HTTP {resp.status_code}", param=param)
            async for chunk in resp.aiter_bytes():
                size += len(chunk)
                if size > limits.max_image_bytes:
                    raise APIError(
                        413,
                        f"Image too large: > {limits.max_image_bytes} bytes",
                        code="image_too_large",
                        param=param,
                    )
                chunks.append(chunk)
    except httpx.HTTPError as exc:
        raise APIError(400, f"Cannot fetch image URL: {type(exc).__name__}", param=param) from None
    return b"".join(chunks)


async def load_images(urls: list[str], limits: LimitsConfig, remote: RemoteImagesConfig) -> list[Image.Image]:
    """Decode every image of a request, in order; the first bad one raises ``APIError``."""
    images = []
    for i, url in enumerate(urls):
        param = f"image_url[{i}]"
        if url.startswith("data:"):
            data = decode_data_url(url, limits, param)
        else:
            data = await fetch_remote(url, limits, remote, param)
        images.append(open_image(data, limits, param))
    return images
