"""Image inputs: ``data:`` URLs and (optionally) allow-listed remote URLs, decoded safely.

Every failure is an ``APIError`` (4xx) naming what was wrong. The byte limit is checked
before base64 decoding and the pixel limit before the pixels are decoded, so neither a
huge payload nor a decompression bomb is ever expanded in memory. What real clients send is
accepted: base64 wrapped at 76 columns, multi-picture JPEGs (MPO, from phone cameras) and
EXIF-rotated photos, which are turned upright.

Remote downloads check every address a host name resolves to, on every connection (so a
DNS answer cannot point an allow-listed name at loopback or the LAN), run under one total
deadline, and count raw bytes on the wire: compressed bodies are refused, never expanded.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import io as _stdio
import ipaddress
import re
import socket
import warnings
from urllib.parse import urlsplit

from PIL import Image, ImageOps

from pulse.serve.config import LimitsConfig, RemoteImagesConfig
from pulse.serve.protocol import APIError

_DATA_URL = re.compile(
    r"^data:(?P<mime>[\w.+-]+/[\w.+-]+)?(?P<params>(;[\w.+-]+=[\w.+-]+)*)(?P<b64>;base64)?,"
)
_WHITESPACE = re.compile(rb"[ \t\r\n]+")
# Concurrent decodes per ingress replica: bounds decoded-pixel memory under a flood.
_DECODE_SLOTS = 2
_decode_semaphore: asyncio.Semaphore | None = None


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
    payload = url[match.end() :]
    if len(payload) * 3 // 4 > limits.max_image_bytes * 1.05 + 64:  # room for line breaks
        raise APIError(
            413,
            f"Image too large: ~{len(payload) * 3 // 4} bytes > {limits.max_image_bytes}",
            code="image_too_large",
            param=param,
        )
    try:
        # Line-wrapped base64 (what `base64` and MIME encoders write) is still base64.
        data = base64.b64decode(_WHITESPACE.sub(b"", payload.encode("ascii")), validate=True)
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


def _format_of(image: Image.Image) -> str:
    fmt = (image.format or "").upper()
    return "JPEG" if fmt == "MPO" else fmt  # MPO: JPEG with extra pictures; the first one is the photo


def open_image(data: bytes, limits: LimitsConfig, param: str) -> Image.Image:
    """Decode image bytes to upright RGB after checking format and pixel count from the header."""
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
    if _format_of(image) not in limits.image_formats:
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
        upright = ImageOps.exif_transpose(image) or image
        return upright.convert("RGB")
    except Exception as exc:
        raise APIError(
            400, f"Cannot decode image: {type(exc).__name__}: {exc}"[:300], code="invalid_image", param=param
        ) from None


def address_is_public(address: str) -> bool:
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped:
        ip = ip.ipv4_mapped
    return ip.is_global and not ip.is_multicast


def _network_backend(allow_private: bool, param: str):
    """An httpcore backend that resolves, checks and then connects to the checked address."""
    import httpcore

    class CheckedBackend(httpcore.AsyncNetworkBackend):
        def __init__(self) -> None:
            self.inner = httpcore.AnyIOBackend()

        async def connect_tcp(self, host, port, timeout=None, local_address=None, socket_options=None):
            loop = asyncio.get_running_loop()
            try:
                infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
            except (OSError, UnicodeError):
                raise APIError(400, f"Cannot resolve image host: {host[:100]}", param=param) from None
            addresses = [info[4][0] for info in infos]
            blocked = [a for a in addresses if not address_is_public(a)]
            if blocked and not allow_private:
                raise APIError(
                    403,
                    f"Image host {host[:100]} resolves to a non-public address ({blocked[0]})",
                    code="host_not_allowed",
                    param=param,
                )
            return await self.inner.connect_tcp(addresses[0], port, timeout, local_address, socket_options)

        async def sleep(self, seconds: float) -> None:
            await self.inner.sleep(seconds)

    return CheckedBackend()


async def fetch_remote(url: str, limits: LimitsConfig, remote: RemoteImagesConfig, param: str) -> bytes:
    """Download an allow-listed http(s) image under a total deadline, stopping at the byte limit."""
    if not remote.enabled:
        raise APIError(400, "Remote image URLs are disabled on this endpoint; send a data URL", param=param)
    try:
        parts = urlsplit(url)
        host = parts.hostname
        _ = parts.port  # raises ValueError for a port out of range
    except ValueError as exc:
        raise APIError(400, f"Malformed image URL: {exc}", param=param) from None
    if parts.scheme not in {"http", "https"} or not host:
        raise APIError(400, f"Unsupported image URL scheme: {parts.scheme[:20] or '(none)'}", param=param)
    if not host_allowed(host, remote.allowed_hosts):
        raise APIError(403, f"Image host not allowed: {host[:100]}", code="host_not_allowed", param=param)
    try:
        async with asyncio.timeout(remote.timeout_s):
            return await _download(url, limits, remote, param)
    except TimeoutError:
        raise APIError(
            504, f"Image URL took longer than {remote.timeout_s:g}s", "timeout", param=param
        ) from None


async def _download(url: str, limits: LimitsConfig, remote: RemoteImagesConfig, param: str) -> bytes:
    import httpcore

    backend = _network_backend(remote.allow_private_addresses, param)
    chunks: list[bytes] = []
    size = 0
    try:
        # httpcore hands over the bytes on the wire (no content decoding) and never follows redirects.
        async with (
            httpcore.AsyncConnectionPool(network_backend=backend, max_connections=1) as pool,
            pool.stream("GET", url, headers={"Accept-Encoding": "identity", "Accept": "image/*"}) as resp,
        ):
            if resp.status != 200:
                raise APIError(400, f"Image URL returned HTTP {resp.status}", param=param)
            headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in resp.headers}
            if headers.get("content-encoding", "identity").lower() not in {"identity", ""}:
                raise APIError(
                    400, "Image URL sent a compressed body; images must be sent as-is", param=param
                )
            async for chunk in resp.aiter_stream():
                size += len(chunk)
                if size > limits.max_image_bytes:
                    raise APIError(
                        413,
                        f"Image too large: > {limits.max_image_bytes} bytes",
                        code="image_too_large",
                        param=param,
                    )
                chunks.append(chunk)
    except APIError:
        raise
    except Exception as exc:  # httpcore's connect/protocol/URL errors, for a URL the client chose
        raise APIError(400, f"Cannot fetch image URL: {type(exc).__name__}", param=param) from None
    return b"".join(chunks)


async def _decode(data: bytes, limits: LimitsConfig, param: str) -> Image.Image:
    global _decode_semaphore
    if _decode_semaphore is None:
        _decode_semaphore = asyncio.Semaphore(_DECODE_SLOTS)
    async with _decode_semaphore:  # off the event loop, so /health never waits behind pixels
        return await asyncio.to_thread(open_image, data, limits, param)


async def load_images(urls: list[str], limits: LimitsConfig, remote: RemoteImagesConfig) -> list[Image.Image]:
    """Decode every image of a request, in order; the first bad one raises ``APIError``."""
    images = []
    for i, url in enumerate(urls):
        param = f"image_url[{i}]"
        if url.startswith("data:"):
            data = decode_data_url(url, limits, param)
        else:
            data = await fetch_remote(url, limits, remote, param)
        images.append(await _decode(data, limits, param))
    return images
