"""Image decoding and limits, without Serve: data URLs, bombs, formats, the remote allow-list."""

from __future__ import annotations

import asyncio
import io

import pytest
from PIL import Image

from pulse.serve.config import LimitsConfig, RemoteImagesConfig
from pulse.serve.images import decode_data_url, fetch_remote, host_allowed, load_images, open_image
from pulse.serve.protocol import APIError
from tests.serve.serve_testlib import data_url, png_bytes

LIMITS = LimitsConfig(max_image_bytes=50_000, max_image_pixels=200 * 200)


def encoded(size, fmt, mode="RGB") -> bytes:
    buf = io.BytesIO()
    Image.new(mode, size).save(buf, fmt)
    return buf.getvalue()


def test_png_and_jpeg_data_urls_decode_to_rgb():
    for data, mime in ((png_bytes(), "image/png"), (encoded((40, 30), "JPEG"), "image/jpeg")):
        images = asyncio.run(load_images([data_url(data, mime)], LIMITS, RemoteImagesConfig()))
        assert images[0].mode == "RGB"


@pytest.mark.parametrize(
    ("url", "status", "fragment"),
    [
        ("https://example.org/x.png", 400, "disabled"),
        ("data:image/png,rawnotbase64", 400, "base64 data URL"),
        ("data:text/plain;base64,aGVsbG8=", 400, "Unsupported content type"),
        ("data:image/png;base64,%%%%", 400, "Invalid base64"),
        ("data:image/png;base64," + "A" * 80_000, 413, "Image too large"),
    ],
)
def test_bad_urls(url, status, fragment):
    with pytest.raises(APIError) as info:
        asyncio.run(load_images([url], LIMITS, RemoteImagesConfig()))
    assert info.value.status == status and fragment in info.value.message
    assert info.value.param == "image_url[0]"


def test_pixel_limit_is_checked_before_decoding_a_bomb():
    bomb = encoded((6000, 6000), "PNG", mode="L")  # 36 Mpx that compress to a few KB
    assert len(bomb) < 50_000
    with pytest.raises(APIError, match="too many pixels"):
        open_image(bomb, LIMITS, "p")


def test_unsupported_format_and_truncated_image():
    with pytest.raises(APIError, match="Unsupported image format BMP"):
        open_image(encoded((20, 20), "BMP"), LIMITS, "p")
    with pytest.raises(APIError, match="Cannot decode image"):
        open_image(png_bytes()[:200], LIMITS, "p")


def test_decode_data_url_byte_limit_after_decoding():
    small = LimitsConfig(max_image_bytes=100)
    with pytest.raises(APIError) as info:
        decode_data_url(data_url(b"x" * 101), small, "p")
    assert info.value.status == 413


def test_host_allow_list():
    allowed = ["ecg.example.org", "*.hospital.net"]
    assert host_allowed("ecg.example.org", allowed)
    assert host_allowed("pacs.hospital.net", allowed)
    assert not host_allowed("hospital.net.evil.com", allowed)
    assert not host_allowed("example.org", allowed)


def test_remote_fetch_rejects_scheme_and_host_before_connecting():
    remote = RemoteImagesConfig(enabled=True, allowed_hosts=["127.0.0.1"])
    with pytest.raises(APIError, match="scheme"):
        asyncio.run(fetch_remote("file:///etc/passwd", LIMITS, remote, "p"))
    with pytest.raises(APIError) as info:
        asyncio.run(fetch_remote("http://10.0.0.1/x.png", LIMITS, remote, "p"))
    assert info.value.status == 403
