"""Fixtures for the LLM seam tests: the scripted OpenAI-compatible server, a tiny PNG data URL."""

from __future__ import annotations

import base64
import io

import pytest

from tests.llm.openai_stub import StubOpenAIServer


@pytest.fixture(scope="module")
def stub_server():
    server = StubOpenAIServer(latency_s=0.0).start()
    yield server
    server.stop()


@pytest.fixture
def png_data_url() -> str:
    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (64, 48), (255, 230, 230)).save(buf, "PNG")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()
