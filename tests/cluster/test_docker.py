"""The cluster images install pulse with exactly the pins of pyproject.toml (no docker daemon here)."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
PYPROJECT = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]


def pin(name: str) -> str:
    return next(d for d in PYPROJECT["dependencies"] if re.match(rf"{re.escape(name)}(\[.*\])?==", d)).split(
        "=="
    )[1]


@pytest.mark.parametrize("dockerfile", ["Dockerfile", "Dockerfile.cuda"])
def test_image_matches_pyproject_pins(dockerfile):
    text = (REPO / "docker" / dockerfile).read_text()
    assert text.startswith("# ") and f"docker build -f docker/{dockerfile}" in text.splitlines()[1]
    assert re.search(rf"ARG RAY_IMAGE=rayproject/ray:{re.escape(pin('ray'))}-py311-", text)
    assert f'"torch=={pin("torch")}"' in text
    assert "torchvision" not in text.replace("no torchvision", "")
    assert "tomllib.load(open('pyproject.toml'" in text and "['dependencies']" in text
    assert "COPY --chown=ray:users . ." in text and "pip install --no-deps -e ." in text
    ignore = (REPO / "docker" / f"{dockerfile}.dockerignore").read_text().splitlines()
    assert {".git", "outputs"} <= set(ignore)
