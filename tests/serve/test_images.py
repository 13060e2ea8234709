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


# --- what real clients send ---------------------------------------------------------------


def test_base64_wrapped_at_76_columns_like_the_base64_tool_writes():
    import base64
    import textwrap

    data = png_bytes()
    wrapped = "\n".join(textwrap.wrap(base64.b64encode(data).decode(), 76))
    assert "\n" in wrapped
    assert decode_data_url("data:image/png;base64," + wrapped, LIMITS, "p") == data
    crlf = wrapped.replace("\n", "\r\n") + "\r\n"
    assert decode_data_url("data:image/png;base64," + crlf, LIMITS, "p") == data


def test_multi_picture_jpeg_from_a_phone_camera_is_accepted():
    buf = io.BytesIO()
    first = Image.new("RGB", (40, 30), (250, 10, 10))
    first.save(buf, "MPO", save_all=True, append_images=[Image.new("RGB", (20, 15), (0, 0, 255))])
    assert Image.open(io.BytesIO(buf.getvalue())).format == "MPO"
    image = open_image(buf.getvalue(), LIMITS, "p")
    assert image.size == (40, 30) and image.getpixel((5, 5))[0] > 200  # the first (main) picture


def test_exif_orientation_is_applied_so_photos_arrive_upright():
    # A 60x20 landscape picture, stored rotated as a 20x60 portrait with EXIF orientation 6 (rotate 90 CW).
    upright = Image.new("RGB", (60, 20), (255, 255, 255))
    upright.paste((255, 0, 0), (0, 0, 10, 20))  # red band on the left edge
    stored = upright.transpose(Image.Transpose.ROTATE_90)  # what a sideways camera writes
    exif = Image.Exif()
    exif[0x0112] = 6
    buf = io.BytesIO()
    stored.save(buf, "JPEG", exif=exif.tobytes(), quality=95)
    image = open_image(buf.getvalue(), LIMITS, "p")
    assert image.size == (60, 20)
    assert image.getpixel((3, 10))[0] > 200 and image.getpixel((3, 10))[1] < 80
    assert image.getpixel((50, 10)) > (200, 200, 200)


@pytest.mark.parametrize(
    "url",
    ["http://[::1", "http://exa mple.org/x.png", "http://h:99999/x", "https://\x00/x", "ftp://x/y", "//x"],
)
def test_malformed_image_urls_are_a_400_with_remote_images_off(url):
    with pytest.raises(APIError) as info:
        asyncio.run(load_images([url], LIMITS, RemoteImagesConfig()))
    assert info.value.status == 400 and "disabled" in info.value.message


@pytest.mark.parametrize(
    "url", ["http://[::1", "http://h:99999/x", "http://h\x00st/x", "http://127.0.0.1:0/x"]
)
def test_malformed_image_urls_are_a_4xx_with_remote_images_on(url):
    remote = RemoteImagesConfig(enabled=True, allowed_hosts=["h", "127.0.0.1"], allow_private_addresses=True)
    with pytest.raises(APIError) as info:
        asyncio.run(fetch_remote(url, LIMITS, remote, "p"))
    assert 400 <= info.value.status < 500


# --- remote images against a real local HTTP server -----------------------------------------


@pytest.fixture(scope="module")
def http_server():
    """A real HTTP server on 127.0.0.1: /ok.png, /slow.png (trickles bytes), /gzip.png (gzip body)."""
    import gzip
    import http.server
    import threading
    import time

    payload = png_bytes(seed=5)

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            if self.path == "/gzip.png":
                body = gzip.compress(b"\0" * 2_000_000)  # ~2 KB on the wire, 2 MB decoded
                self.send_response(200)
                self.send_header("Content-Encoding", "gzip")
            else:
                body = payload
                self.send_response(200)
            self.send_header("Content-Type", "image/png")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if self.path == "/slow.png":
                for i in range(0, len(body), 16):  # each read is fast; the whole download is not
                    self.wfile.write(body[i : i + 16])
                    self.wfile.flush()
                    time.sleep(0.05)
            else:
                self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server.server_address[1], payload
    server.shutdown()


def test_allow_listed_host_that_resolves_to_loopback_is_refused(http_server):
    port, _ = http_server
    remote = RemoteImagesConfig(enabled=True, allowed_hosts=["localhost", "127.0.0.1"])
    for host in ("localhost", "127.0.0.1"):
        with pytest.raises(APIError) as info:
            asyncio.run(fetch_remote(f"http://{host}:{port}/ok.png", LIMITS, remote, "p"))
        assert info.value.status == 403 and "non-public address" in info.value.message


def test_remote_fetch_when_private_addresses_are_allowed(http_server):
    port, payload = http_server
    remote = RemoteImagesConfig(enabled=True, allowed_hosts=["localhost"], allow_private_addresses=True)
    assert asyncio.run(fetch_remote(f"http://localhost:{port}/ok.png", LIMITS, remote, "p")) == payload


def test_remote_download_has_a_total_deadline(http_server):
    import time

    port, payload = http_server
    assert len(payload) > 16 * 20  # at 16 B / 50 ms this takes > 1 s
    remote = RemoteImagesConfig(
        enabled=True, allowed_hosts=["127.0.0.1"], allow_private_addresses=True, timeout_s=0.5
    )
    started = time.monotonic()
    with pytest.raises(APIError) as info:
        asyncio.run(fetch_remote(f"http://127.0.0.1:{port}/slow.png", LIMITS, remote, "p"))
    assert info.value.status == 504 and time.monotonic() - started < 2


def test_compressed_bodies_are_refused_before_any_decoding(http_server):
    port, _ = http_server
    remote = RemoteImagesConfig(enabled=True, allowed_hosts=["127.0.0.1"], allow_private_addresses=True)
    with pytest.raises(APIError) as info:
        asyncio.run(fetch_remote(f"http://127.0.0.1:{port}/gzip.png", LIMITS, remote, "p"))
    assert info.value.status == 400 and "compressed" in info.value.message


def test_public_address_check():
    from pulse.serve.images import address_is_public

    assert address_is_public("93.184.216.34") and address_is_public("2606:2800:220:1::")
    for private in (
        "127.0.0.1",
        "10.1.2.3",
        "192.168.0.1",
        "169.254.169.254",
        "::1",
        "::ffff:127.0.0.1",
        "0.0.0.0",
    ):
        assert not address_is_public(private), private
