"""Versioned prompt/template files and readable label names.

Prompt files are YAML with a ``version`` key (recorded as the ``generator`` of every row they
produce). A path is taken as given, else relative to the shipped ``configs/`` folder.
Label names come from the CinC-2021 SNOMED mapping bundled in ``pulse/assets`` (``Dx`` column),
with per-file overrides.
"""

from __future__ import annotations

import csv
import io as _stdio
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml

from pulse import io
from pulse.config import PACKAGE_ROOT, ConfigError, resolve_config_path

DX_MAPPING_DIR = PACKAGE_ROOT / "assets" / "realdata" / "cinc2021"
REPO_CONFIG_DIR = PACKAGE_ROOT.parent / "configs"


def resolve_prompt_path(path: str) -> str:
    """A prompt file as given, else under the shipped configs (package or repository checkout)."""
    try:
        return resolve_config_path(path)
    except ConfigError:
        relative = path[len("configs/") :] if path.startswith("configs/") else path
        candidate = REPO_CONFIG_DIR / relative
        if candidate.exists():
            return str(candidate)
        raise


@lru_cache(maxsize=32)
def load_prompt_file(path: str) -> dict[str, Any]:
    """Load a prompt/template YAML; it must carry a ``version`` string."""
    resolved = resolve_prompt_path(path)
    data = yaml.safe_load(io.read_text(resolved))
    if not isinstance(data, dict) or not isinstance(data.get("version"), str):
        raise ConfigError(f"{resolved}: a prompt file must be a mapping with a 'version' string")
    return data


@lru_cache(maxsize=4)
def cinc_label_names(mapping_dir: str = str(DX_MAPPING_DIR)) -> dict[str, str]:
    """Abbreviation -> readable name (``AF`` -> ``atrial fibrillation``) from the dx_mapping CSVs."""
    names: dict[str, str] = {}
    for filename in ("dx_mapping_scored.csv", "dx_mapping_unscored.csv"):
        path = str(Path(mapping_dir) / filename)
        if not io.exists(path):
            continue
        for row in csv.DictReader(_stdio.StringIO(io.read_text(path))):
            abbreviation, name = row.get("Abbreviation"), row.get("Dx")
            if abbreviation and name:
                names.setdefault(abbreviation.strip(), name.strip())
    return names


def label_name(label: str, overrides: dict[str, str] | None = None) -> str:
    """A readable name for a ``labels_std`` code; unknown codes are returned unchanged."""
    if overrides and label in overrides:
        return overrides[label]
    return cinc_label_names().get(label, label)


def fill(template: str, **values: Any) -> str:
    """``str.format`` that names the missing placeholder and the template on failure."""
    try:
        return template.format(**values)
    except KeyError as exc:
        raise ConfigError(f"prompt template needs {{{exc.args[0]}}}: {template[:80]!r}") from None
