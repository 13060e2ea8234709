"""SYNTHETIC CODE-15% and MIMIC-IV-ECG datasets (no public samples exist; see readers/synthetic.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from pulse.data_ray.readers.synthetic import write_code15, write_mimic


@pytest.fixture(scope="session")
def mimic_root(tmp_path_factory) -> Path:
    return write_mimic(tmp_path_factory.mktemp("mimic-iv-ecg-synthetic"))


@pytest.fixture(scope="session")
def code15_root(tmp_path_factory) -> Path:
    return write_code15(tmp_path_factory.mktemp("code15-synthetic"))
