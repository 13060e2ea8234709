"""Helpers for the endpoint tests: free ports, ECG-like PNG data URLs, deploying a config for a module."""

from __future__ import annotations

import base64
import contextlib
import io
import socket
from pathlib import Path

import numpy as np
from PIL import Image

from pulse.serve.config import ServeConfig


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def png_bytes(width: int = 90, height: int = 60, seed: int = 0, fmt: str = "PNG") -> bytes:
    """A small image with an ECG-paper-like grid and a trace (content only matters for determinism)."""
    rng = np.random.RandomState(seed)
    pixels = np.full((height, width, 3), 255, dtype=np.uint8)
    pixels[::5, :, 1:] = 200
    pixels[:, ::5, 1:] = 200
    trace = (height / 2 + 8 * np.sin(np.arange(width) / 3) + rng.randn(width)).astype(int).clip(0, height - 1)
    pixels[trace, np.arange(width)] = 0
    buf = io.BytesIO()
    Image.fromarray(pixels).save(buf, fmt)
    return buf.getvalue()


def data_url(data: bytes, mime: str = "image/png") -> str:
    return f"data:{mime};base64,{base64.b64encode(data).decode()}"


def image_message(text: str, url: str) -> dict:
    return {
        "role": "user",
        "content": [{"type": "image_url", "image_url": {"url": url}}, {"type": "text", "text": text}],
    }


def make_config(checkpoint: Path, **overrides) -> ServeConfig:
    """A tiny-model config on a free port with fractional CPUs (fits the 2-core CI box)."""
    data = {
        "models": [{"name": "pulse-tiny", "checkpoint": str(checkpoint), "max_batch_size": 8}],
        "port": free_port(),
        "num_cpus": 0.5,
        "auth": {"api_key_env": None},
        "health_check_period_s": 1.0,
        "graceful_shutdown_timeout_s": 10.0,
    }
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(data.get(key), dict):
            data[key] = {**data[key], **value}
        else:
            data[key] = value
    return ServeConfig.model_validate(data)


@contextlib.contextmanager
def running(cfg: ServeConfig):
    """Deploy ``cfg`` on the session Ray; always delete the app and shut Serve down afterwards."""
    from ray import serve

    from pulse.serve import job

    try:
        yield job.start(cfg)
    finally:
        with contextlib.suppress(Exception):
            job.stop(cfg)
        # Free the HTTP port/proxy so the next module (or another engineer's test) can start Serve anew.
        serve.shutdown()
        _wait_for_serve_actors_to_exit()


def _wait_for_serve_actors_to_exit(timeout_s: float = 60) -> None:
    """serve.shutdown() returns before its proxy actor is gone; a new Serve started meanwhile can
    find that dying proxy by name and fail with ActorDiedError."""
    import time

    import ray

    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        names = [a["name"] for a in ray.util.list_named_actors(all_namespaces=True)]
        if not any(name.startswith("SERVE_") for name in names):
            return
        time.sleep(0.5)
