"""Fixtures only the endpoint tests need."""

from __future__ import annotations

import pytest

from tests.serve.serve_testlib import data_url, png_bytes


@pytest.fixture(scope="session")
def ecg_data_url() -> str:
    return data_url(png_bytes())
