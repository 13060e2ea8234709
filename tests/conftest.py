"""Shared fixtures: one real local Ray per test session, a real S3 server on 127.0.0.1, test data paths."""

from __future__ import annotations

import os
import socket
import tempfile
import time
from pathlib import Path

import pytest

TESTS_DIR = Path(__file__).resolve().parent
DATA_DIR = TESTS_DIR / "data"

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("RAY_DATA_DISABLE_PROGRESS_BARS", "1")
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")


@pytest.fixture(scope="session")
def data_dir() -> Path:
    return DATA_DIR


@pytest.fixture(scope="session")
def ray_session():
    """A real local Ray for the whole session (never `ray stop`; a private temp dir)."""
    from pulse.runtime import RayOptions, init_ray

    previous = os.environ.pop("RAY_ADDRESS", None)
    ray = init_ray(RayOptions(num_cpus=8, temp_dir=tempfile.mkdtemp(prefix="pulse-test-ray-", dir="/tmp")))
    yield ray
    try:
        from ray import serve

        serve.shutdown()
    except Exception:  # serve may never have started
        pass
    ray.shutdown()
    os.environ.pop("RAY_ADDRESS", None)
    if previous:
        os.environ["RAY_ADDRESS"] = previous


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="session")
def s3_server():
    """A real S3 HTTP server (moto's standalone server) on 127.0.0.1; yields its endpoint URL.

    Credentials and endpoint are exported as the standard AWS environment variables, so
    ``pulse.io`` reaches it exactly the way it reaches AWS.
    """
    from moto.server import ThreadedMotoServer

    port = _free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    endpoint = f"http://127.0.0.1:{port}"
    saved = {
        k: os.environ.get(k)
        for k in ("AWS_ENDPOINT_URL", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_REGION")
    }
    os.environ.update(
        AWS_ENDPOINT_URL=endpoint,
        AWS_ACCESS_KEY_ID="testing",
        AWS_SECRET_ACCESS_KEY="testing",
        AWS_REGION="us-east-1",
    )
    for _ in range(50):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            break
        except OSError:
            time.sleep(0.1)
    yield endpoint
    server.stop()
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


@pytest.fixture
def s3_bucket(s3_server):
    """A fresh bucket on the local S3 server; yields ``s3://<bucket>``."""
    import uuid

    import boto3

    name = f"pulse-test-{uuid.uuid4().hex[:8]}"
    boto3.client("s3", endpoint_url=s3_server, region_name="us-east-1").create_bucket(Bucket=name)
    return f"s3://{name}"


@pytest.fixture(scope="session")
def tiny_llava_dir(tmp_path_factory) -> Path:
    """A tiny random LLaVA-NeXT saved in Hugging Face format (model + processor + chat template)."""
    from pulse.models.loader import save_pretrained_dir
    from pulse.models.tiny_llava import build_tiny_llava

    model, processor = build_tiny_llava()
    return save_pretrained_dir(model, processor, tmp_path_factory.mktemp("tiny-llava"))
