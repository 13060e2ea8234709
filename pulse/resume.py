"""Safe resume: an output folder remembers the config that wrote it.

A resumable job keeps ``<output_dir>/_progress/`` (its progress markers) and, before it writes
anything, ``_progress/fingerprint.json``: a hash of every config field that changes its output
(each job names the fields that do not, e.g. worker counts, Ray and storage settings). A rerun

- with the same fingerprint resumes (or, when ``_progress/done.json`` says the run finished,
  has nothing to do and says so at once);
- with a different fingerprint is refused with a :class:`~pulse.config.ConfigError` naming the
  changed keys, so the recorded ``config.yaml`` / ``run_info.json`` always describe the data;
- with ``overwrite=true`` removes the job's old outputs and starts from scratch.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel

from pulse import io
from pulse.config import ConfigError

PROGRESS_DIR = "_progress"
FINGERPRINT_FILE = "fingerprint.json"
DONE_FILE = "done.json"
ALWAYS_IGNORED = ("overwrite", "ray", "storage")
"""Never part of a fingerprint: where the job runs and how it reaches storage."""
_MISSING = object()


@dataclass
class ResumeState:
    """What a job finds in its output folder: ``fresh`` (start), ``resume`` or ``done``."""

    status: Literal["fresh", "resume", "done"]
    done: dict[str, Any] | None = None
    """The finished run's record (``mark_done``), when ``status == "done"``."""


def flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    """``{"a": {"b": 1}, "c": [2]}`` -> ``{"a.b": 1, "c.0": 2}`` (empty containers kept as values)."""
    if isinstance(value, dict) and value:
        items = value.items()
    elif isinstance(value, list) and value:
        items = ((str(i), v) for i, v in enumerate(value))
    else:
        return {prefix: value}
    flat: dict[str, Any] = {}
    for key, child in items:
        flat.update(flatten(child, f"{prefix}.{key}" if prefix else str(key)))
    return flat


def _ignored(key: str, ignore: Iterable[str]) -> bool:
    return any(key == name or key.startswith(name + ".") for name in ignore)


def output_config(cfg: BaseModel, ignore: Iterable[str] = ()) -> dict[str, Any]:
    """The flattened config fields that change the job's output."""
    skip = (*ALWAYS_IGNORED, *ignore)
    return {k: v for k, v in flatten(cfg.model_dump(mode="json")).items() if not _ignored(k, skip)}


def fingerprint(flat: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(flat, sort_keys=True, default=str).encode()).hexdigest()[:16]


def changed_keys(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    """Flattened keys whose values differ (or that only one side has)."""
    return sorted(k for k in set(old) | set(new) if old.get(k, _MISSING) != new.get(k, _MISSING))


def _show(value: Any) -> str:
    if value is _MISSING:
        return "unset"
    text = json.dumps(value, default=str)
    return text if len(text) <= 40 else text[:37] + "..."


def describe_changes(old: dict[str, Any], new: dict[str, Any], most: int = 6) -> str:
    keys = changed_keys(old, new)
    parts = [f"{k} {_show(old.get(k, _MISSING))} -> {_show(new.get(k, _MISSING))}" for k in keys[:most]]
    if len(keys) > most:
        parts.append(f"and {len(keys) - most} more")
    return ", ".join(parts)


def _read_json(path: str, storage: io.StorageOptions | None) -> dict[str, Any] | None:
    if not io.exists(path, storage):
        return None
    return json.loads(io.read_text(path, storage))


def remove_outputs(output_dir: str, outputs: Iterable[str], storage: io.StorageOptions | None) -> None:
    """Delete the job's own outputs (named relative to ``output_dir``) and its progress folder."""
    for name in (*outputs, PROGRESS_DIR, "run_info.json", "config.yaml"):
        io.delete(io.join(output_dir, name), storage)


def prepare(
    cfg: BaseModel,
    output_dir: str,
    job: str,
    *,
    outputs: Iterable[str],
    ignore: Iterable[str] = (),
    storage: io.StorageOptions | None = None,
    dir_key: str = "output_dir",
    overwrite: bool | None = None,
) -> ResumeState:
    """Check ``output_dir`` against ``cfg`` before a job writes there (see module doc).

    ``outputs`` are the folders/files the job writes under ``output_dir``: ``overwrite`` removes
    them, and a folder that has them but no fingerprint (written by another job or an old
    version) is refused rather than mixed with. ``overwrite`` defaults to ``cfg.overwrite``.
    Raises :class:`ConfigError` on a mismatch.
    """
    outputs = list(outputs)
    flat = output_config(cfg, ignore)
    digest = fingerprint(flat)
    progress = io.join(output_dir, PROGRESS_DIR)
    fingerprint_path = io.join(progress, FINGERPRINT_FILE)
    if overwrite is None:
        overwrite = bool(getattr(cfg, "overwrite", False))
    if overwrite:
        remove_outputs(output_dir, outputs, storage)
    else:
        recorded = _read_json(fingerprint_path, storage)
        if recorded is not None and recorded.get("job", job) != job:
            raise ConfigError(
                f"{output_dir} holds the output of `pulse {recorded['job']}`, not {job}; "
                f"use a new {dir_key} (each stage writes its own folder)"
            )
        if recorded is not None and recorded.get("fingerprint") != digest:
            raise ConfigError(
                f"{output_dir} holds a {job} run with a different config "
                f"({describe_changes(recorded.get('config', {}), flat)}); "
                f"use a new {dir_key}, or overwrite=true to rebuild it from scratch"
            )
        if recorded is not None:
            done = _read_json(io.join(progress, DONE_FILE), storage)
            return ResumeState("done", done) if done is not None else ResumeState("resume")
        present = [name for name in outputs if io.exists(io.join(output_dir, name), storage)]
        if present:
            raise ConfigError(
                f"{output_dir} already holds {', '.join(present)} without a recorded {job} config; "
                f"use a new {dir_key}, or overwrite=true to rebuild it from scratch"
            )
    record = {"job": job, "fingerprint": digest, "config": flat}
    io.write_text(fingerprint_path, json.dumps(record, indent=1, sort_keys=True), storage)
    return ResumeState("fresh")


def mark_done(output_dir: str, record: dict[str, Any], storage: io.StorageOptions | None = None) -> None:
    """Record that the run finished (``record``: its summary); a rerun then has nothing to do."""
    io.write_text(io.join(output_dir, PROGRESS_DIR, DONE_FILE), json.dumps(record, default=str), storage)


def clear_done(output_dir: str, storage: io.StorageOptions | None = None) -> None:
    io.delete(io.join(output_dir, PROGRESS_DIR, DONE_FILE), storage)


def nothing_to_do(job: str, output_dir: str) -> str:
    return (
        f"[{job}] nothing to do: {output_dir} already holds a finished run of this config "
        "(overwrite=true rebuilds it)"
    )
