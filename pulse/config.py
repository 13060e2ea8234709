"""Typed job configs: pydantic models loaded from YAML with dotted CLI overrides.

Every job has one config model (``extra="forbid"``, so an unknown key is an error that
names the key). ``load_config(IngestConfig, "configs/ingest/bundled.yaml", ["limit=5"])``
reads the YAML, applies ``key.sub=value`` overrides (values parsed as YAML scalars),
and validates. ``write_run_info`` records the resolved config, package versions and
git SHA beside an output.
"""

from __future__ import annotations

import importlib.metadata
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError

from pulse import io

PACKAGE_ROOT = Path(__file__).resolve().parent
CONFIG_DIR = PACKAGE_ROOT / "configs"

C = TypeVar("C", bound="StrictModel")


class StrictModel(BaseModel):
    """Base for every config model: unknown keys are errors, assignments are validated."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class ConfigError(ValueError):
    """A config file or override that cannot be applied; the message names the key."""


def parse_override(text: str) -> tuple[list[str], Any]:
    """Split ``a.b.c=value`` into (["a", "b", "c"], parsed value)."""
    if "=" not in text:
        raise ConfigError(f"Override {text!r} is not of the form key.sub=value")
    key, raw = text.split("=", 1)
    key = key.strip().lstrip("-")
    if not key:
        raise ConfigError(f"Override {text!r} has an empty key")
    try:
        value = yaml.safe_load(raw) if raw != "" else ""
    except yaml.YAMLError:
        value = raw
    return key.split("."), value


def _section_model(annotation: Any) -> type[BaseModel] | None:
    return annotation if isinstance(annotation, type) and issubclass(annotation, BaseModel) else None


def seed_section_defaults(model: type[BaseModel], data: dict[str, Any], path: list[str]) -> None:
    """Copy the defaults of the sections ``path`` descends into, where ``data`` does not have them yet.

    Without it, ``train.overrides=[...]`` on a config whose ``train`` section is only a default
    would build that section from the one override and lose its other defaulted fields.
    """
    node, section = data, model
    for part in path[:-1]:
        field = section.model_fields.get(part) if section else None
        inner = _section_model(field.annotation) if field else None
        if inner is None or not isinstance(node, dict):
            return
        if node.get(part) is None:
            default = field.get_default(call_default_factory=True)
            if isinstance(default, BaseModel):
                node[part] = default.model_dump(exclude_unset=True)
        node, section = node.get(part), inner


def apply_override(data: dict[str, Any], path: list[str], value: Any) -> None:
    """Set ``data[a][b][c] = value``; numeric parts index into lists (``sources.0.limit=5``)."""
    node: Any = data
    for depth, part in enumerate(path):
        last = depth == len(path) - 1
        where = ".".join(path[: depth + 1])
        if isinstance(node, list):
            if not part.isdigit() or int(part) >= len(node):
                raise ConfigError(
                    f"Unknown config key: {'.'.join(path)} ({where} is not an index of the list)"
                )
            if last:
                node[int(part)] = value
                return
            node = node[int(part)]
            continue
        if not isinstance(node, dict):
            raise ConfigError(
                f"Unknown config key: {'.'.join(path)} ({'.'.join(path[:depth])} is not a section)"
            )
        if last:
            node[part] = value
            return
        if node.get(part) is None:
            node[part] = {}
        node = node[part]


def resolve_config_path(path: str | Path) -> str:
    """A config path as given, or relative to the shipped ``configs/`` folder."""
    text = str(path)
    if io.is_remote(text) or Path(text).exists():
        return text
    shipped = CONFIG_DIR / text
    if shipped.exists():
        return str(shipped)
    shipped = CONFIG_DIR / Path(text).relative_to("configs") if text.startswith("configs/") else None
    if shipped is not None and shipped.exists():
        return str(shipped)
    raise ConfigError(f"Config file not found: {text}")


def parse_yaml(text: str, where: str) -> Any:
    """YAML text -> data; a syntax error is a one-line ConfigError with its line and column."""
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        at = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise ConfigError(f"{where}: not valid YAML{at}: {problem}") from None


def load_config(model: type[C], path: str | Path | None = None, overrides: list[str] | None = None) -> C:
    """Load ``model`` from a YAML file (optional) plus dotted overrides; unknown keys are errors.

    ``run_dir=R`` (in the file or as an override) fills the paths of ``model.RUN_LAYOUT`` from the
    one run-folder convention (``pulse.run_layout``); explicit path overrides still win."""
    data: dict[str, Any] = {}
    if path:
        resolved = resolve_config_path(path)
        if not io.is_remote(resolved) and Path(resolved).is_dir():
            raise ConfigError(f"--config {path} is a folder, not a YAML file")
        loaded = parse_yaml(io.read_text(resolved), resolved)
        if loaded is None:
            loaded = {}
        if not isinstance(loaded, dict):
            raise ConfigError(f"{resolved}: top level must be a mapping, got {type(loaded).__name__}")
        data = loaded
    explicit = set()
    for text in overrides or []:
        keys, value = parse_override(text)
        seed_section_defaults(model, data, keys)
        apply_override(data, keys, value)
        explicit.add(".".join(str(k) for k in keys))
    run_dir = data.pop("run_dir", None)
    if run_dir is not None:
        layout = getattr(model, "RUN_LAYOUT", None)
        if not layout:
            raise ConfigError(f"{model.__name__} has no run folder layout; run_dir= does not apply")
        from pulse.run_layout import apply_layout

        apply_layout(data, layout, str(run_dir), explicit)
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(format_validation_error(model, exc)) from None


def format_validation_error(model: type[BaseModel], exc: ValidationError) -> str:
    lines = [f"Invalid {model.__name__}:"]
    for err in exc.errors():
        key = ".".join(str(p) for p in err["loc"])
        if err["type"] == "extra_forbidden":
            lines.append(f"  Unknown config key: {key}")
        else:
            lines.append(f"  {key}: {err['msg']}")
    return "\n".join(lines)


def package_versions() -> dict[str, str]:
    names = ["pulse-ecg", "ray", "torch", "transformers", "pyarrow", "numpy", "deepspeed", "vllm"]
    versions = {"python": sys.version.split()[0]}
    for name in names:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            continue
    return versions


def git_sha() -> str | None:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=PACKAGE_ROOT,
            capture_output=True,
            text=True,
            timeout=5,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None


def run_info(cfg: BaseModel, job: str) -> dict[str, Any]:
    return {
        "job": job,
        "config": cfg.model_dump(mode="json"),
        "versions": package_versions(),
        "git_sha": git_sha(),
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }


def write_run_info(
    cfg: BaseModel, output_dir: str, job: str, storage: io.StorageOptions | None = None
) -> str:
    """Write ``run_info.json`` (resolved config, versions, git SHA) and ``config.yaml`` into output_dir."""
    info = run_info(cfg, job)
    target = io.join(output_dir, "run_info.json")
    io.write_text(target, json.dumps(info, indent=2), storage)
    io.write_text(
        io.join(output_dir, "config.yaml"), yaml.safe_dump(info["config"], sort_keys=False), storage
    )
    return target
