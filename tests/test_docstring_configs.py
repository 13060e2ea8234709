"""Every ``configs/….yaml`` that the package, the job scripts, the docs or the cluster files name exists."""

from __future__ import annotations

import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
CONFIG_PATH = re.compile(r"(?<![\w/.-])configs/[\w./-]+?\.yaml")
SCANNED = ["pulse/**/*.py", "jobs/*.py", "cluster/**/*.yaml", "cluster/*.py", "docs/**/*.md", "README.md"]


def named_config_paths() -> dict[str, list[str]]:
    named: dict[str, list[str]] = {}
    for pattern in SCANNED:
        for path in REPO.glob(pattern):
            if "configs" in path.relative_to(REPO).parts[:2]:
                continue  # the shipped configs themselves (pulse/configs is a link to configs/)
            for match in CONFIG_PATH.findall(path.read_text(encoding="utf-8")):
                named.setdefault(match, []).append(path.relative_to(REPO).as_posix())
    return named


def test_every_named_config_file_exists():
    named = named_config_paths()
    assert len(named) > 10, "the scan found the config paths the docs and docstrings name"
    missing = {path: where for path, where in named.items() if not (REPO / path).is_file()}
    assert not missing, f"named but not shipped: {missing}"


def test_the_scan_catches_a_missing_name(tmp_path):
    assert CONFIG_PATH.findall("pulse serve --config configs/serve/tiny_cpu.yaml port=1") == [
        "configs/serve/tiny_cpu.yaml"
    ]
    assert not (REPO / "configs/serve/tiny_cpu.yaml").is_file()
