"""``pulse submit``: run a pulse job on a Ray cluster through the Ray Jobs API.

    pulse submit render --config configs/render/demo.yaml --address http://HEAD:8265 workers=16

The checkout is shipped as the job's ``working_dir`` (outputs, caches and ``.git`` left
out), the entry point is ``python jobs/<job>.py --config … overrides`` (the same
``run(cfg)`` as the CLI), and ``runtime_env.pip`` pins pulse's own dependencies as in
``pyproject.toml`` (``--pip none`` when the cluster image already has them, which is
the case for the images built from ``docker/``). The config is validated here before
anything is uploaded. The job id is printed, then its logs are followed until it ends.

Token auth (on by default in Ray 2.60): the token is read from ``--auth-token-file``,
``RAY_AUTH_TOKEN``, ``RAY_AUTH_TOKEN_PATH`` or ``~/.ray/auth_token`` and sent as an
``Authorization: Bearer`` header; ``RAY_AUTH_MODE=disabled`` sends none. The token is
never put into the runtime_env, which the dashboard shows to anyone who can read it.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.metadata
import os
import shlex
import sys
import time
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pulse import io
from pulse.config import ConfigError, load_config, resolve_config_path
from pulse.jobs import SUBMITTABLE as JOBS
from pulse.jobs import JobUnavailable, load_job

REPO_ROOT = Path(__file__).resolve().parents[1]
WORKING_DIR_EXCLUDES = [
    "/.git",
    "/outputs",
    "**/__pycache__",
    "**/*.pyc",
    "/.pytest_cache",
    "/.ruff_cache",
    "/.benchmarks",
    "/.venv",
    "/*.egg-info",
    "/build",
    "/dist",
]
"""gitignore patterns, anchored at the working_dir root ("/build" drops the root's build/, not
pulse/data_ray/…/build/)."""
DEFAULT_ENV_VARS = {"PYTHONUNBUFFERED": "1", "RAY_DATA_DISABLE_PROGRESS_BARS": "1"}
TERMINAL_STATES = {"SUCCEEDED", "FAILED", "STOPPED"}


@dataclass
class Submission:
    """Everything ``JobSubmissionClient.submit_job`` receives."""

    entrypoint: str
    runtime_env: dict[str, Any]
    submission_id: str | None = None
    entrypoint_num_cpus: float | None = None
    entrypoint_resources: dict[str, float] = field(default_factory=dict)


def pinned_requirements(working_dir: Path = REPO_ROOT, extras: tuple[str, ...] = ()) -> list[str]:
    """pulse's dependencies as pinned in the shipped ``pyproject.toml`` (else the installed metadata)."""
    pyproject = working_dir / "pyproject.toml"
    if pyproject.is_file():
        project = tomllib.loads(pyproject.read_text())["project"]
        requirements = list(project["dependencies"])
        for extra in extras:
            requirements += project.get("optional-dependencies", {}).get(extra, [])
        return requirements
    requirements = []
    for requirement in importlib.metadata.requires("pulse-ecg") or []:
        marker = requirement.partition(";")[2]
        if "extra ==" not in marker or any(
            f"extra == '{e}'" in marker or f'extra == "{e}"' in marker for e in extras
        ):
            requirements.append(requirement.partition(";")[0].strip())
    return requirements


def config_argument(config: str | None, working_dir: Path) -> str | None:
    """The ``--config`` value as the cluster will see it: relative to working_dir, or a remote URI."""
    if config is None or io.is_remote(config):
        return config
    resolved = Path(resolve_config_path(config)).resolve()
    try:
        return resolved.relative_to(working_dir.resolve()).as_posix()
    except ValueError:
        raise ConfigError(
            f"--config {config} is outside the working_dir {working_dir} that is uploaded to the cluster; "
            "put it inside the checkout or on object storage (s3://…)"
        ) from None


def default_working_dir() -> Path:
    """The checkout this pulse was imported from, else the current directory (a pip-installed pulse)."""
    return REPO_ROOT if (REPO_ROOT / "jobs").is_dir() else Path.cwd()


def validate_config(job: str, config: str | None, overrides: list[str], working_dir: Path) -> None:
    """Load the typed config here so a bad key fails before anything is uploaded."""
    if job not in JOBS:
        raise ConfigError(f"Unknown job {job!r}; expected one of {', '.join(JOBS)}")
    try:
        config_class = load_job(job)[1]
    except JobUnavailable as exc:
        raise ConfigError(str(exc)) from None
    load_config(config_class, config, overrides)


def build_submission(
    job: str,
    config: str | None,
    overrides: list[str],
    working_dir: Path = REPO_ROOT,
    pip: str = "pinned",
    extras: tuple[str, ...] = (),
    env: dict[str, str] | None = None,
    submission_id: str | None = None,
    entrypoint_num_cpus: float | None = None,
    entrypoint_resources: dict[str, float] | None = None,
) -> Submission:
    """Build the entrypoint and runtime_env for ``job`` (pure: no network, no upload)."""
    if job not in JOBS:
        raise ConfigError(f"Unknown job {job!r}; expected one of {', '.join(JOBS)}")
    if not (working_dir / "jobs" / f"{job}.py").is_file():
        raise ConfigError(f"{working_dir} has no jobs/{job}.py; --working-dir must be a pulse checkout")
    parts = ["python", f"jobs/{job}.py"]
    cluster_config = config_argument(config, working_dir)
    if cluster_config:
        parts += ["--config", cluster_config]
    parts += overrides
    runtime_env: dict[str, Any] = {
        "working_dir": str(working_dir),
        "excludes": list(WORKING_DIR_EXCLUDES),
        "env_vars": {**DEFAULT_ENV_VARS, **(env or {})},
    }
    if pip == "pinned":
        runtime_env["pip"] = {"packages": pinned_requirements(working_dir, extras), "pip_check": False}
    elif pip != "none":
        raise ConfigError(f"--pip must be 'pinned' or 'none', got {pip!r}")
    return Submission(
        entrypoint=shlex.join(parts),
        runtime_env=runtime_env,
        submission_id=submission_id,
        entrypoint_num_cpus=entrypoint_num_cpus,
        entrypoint_resources=entrypoint_resources or {},
    )


def auth_headers(token_file: str | None = None) -> dict[str, str]:
    """``Authorization`` header for a token-auth cluster; empty when auth is disabled or no token exists."""
    if os.environ.get("RAY_AUTH_MODE", "").lower() == "disabled":
        return {}
    if token_file and not Path(token_file).is_file():
        raise ConfigError(f"--auth-token-file {token_file} does not exist")
    token = None if token_file else os.environ.get("RAY_AUTH_TOKEN")
    if not token:
        candidates = [
            token_file,
            os.environ.get("RAY_AUTH_TOKEN_PATH"),
            str(Path.home() / ".ray" / "auth_token"),
        ]
        for candidate in candidates:
            if candidate and Path(candidate).is_file():
                token = Path(candidate).read_text().strip()
                break
    return {"Authorization": f"Bearer {token}"} if token else {}


def submit(submission: Submission, address: str | None, headers: dict[str, str]):
    """Upload the working_dir and start the job; returns (client, job id)."""
    from ray.job_submission import JobSubmissionClient

    client = JobSubmissionClient(address, headers=headers)
    job_id = client.submit_job(
        entrypoint=submission.entrypoint,
        runtime_env=submission.runtime_env,
        submission_id=submission.submission_id,
        entrypoint_num_cpus=submission.entrypoint_num_cpus,
        entrypoint_resources=submission.entrypoint_resources or None,
    )
    return client, job_id


def follow(client, job_id: str) -> str:
    """Stream the job's logs to stdout until it ends; returns its final status."""

    async def stream() -> None:
        async for chunk in client.tail_job_logs(job_id):
            print(chunk, end="", flush=True)

    asyncio.run(stream())
    status = str(client.get_job_status(job_id))
    while status.rsplit(".", 1)[-1] not in TERMINAL_STATES:  # logs can close a moment before the status
        time.sleep(0.5)
        status = str(client.get_job_status(job_id))
    return status.rsplit(".", 1)[-1]


def parse_env(items: list[str]) -> dict[str, str]:
    """``KEY=VALUE`` sets a value; a bare ``KEY`` copies it from this shell."""
    env = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep:
            if key not in os.environ:
                raise ConfigError(f"--env {key}: not set in this shell")
            value = os.environ[key]
        env[key] = value
    return env


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """One sub-parser per job, so overrides may follow the options: ``pulse submit render -c x.yaml a=1``."""
    options = argparse.ArgumentParser(add_help=False)
    options.add_argument("--config", "-c", help="YAML config inside the checkout, a shipped name, or s3://")
    options.add_argument(
        "--address",
        help="Jobs API address, e.g. http://HEAD:8265 (default: RAY_API_SERVER_ADDRESS / RAY_ADDRESS)",
    )
    options.add_argument("--working-dir", type=Path, help="pulse checkout to upload (default: this one)")
    options.add_argument(
        "--pip",
        choices=("pinned", "none"),
        default="pinned",
        help="pinned: runtime_env pip = pyproject dependencies; none: the cluster image has them",
    )
    options.add_argument("--extra", action="append", default=[], help="also pin this pyproject extra")
    options.add_argument("--env", action="append", default=[], metavar="KEY[=VALUE]", help="job env var")
    options.add_argument("--submission-id", help="job id to use (default: generated)")
    options.add_argument("--entrypoint-num-cpus", type=float, help="CPUs reserved for the driver")
    options.add_argument("--auth-token-file", help="token file for a token-auth cluster")
    options.add_argument("--no-follow", action="store_true", help="print the job id and return")
    options.add_argument("overrides", nargs="*", metavar="key.sub=value", help="config overrides")
    jobs = parser.add_subparsers(dest="submit_job", metavar="JOB", required=True)
    for job in JOBS:
        jobs.add_parser(job, parents=[options], help=f"submit jobs/{job}.py")


def main(args: argparse.Namespace) -> int:
    try:
        working_dir = (args.working_dir or default_working_dir()).resolve()
        validate_config(args.submit_job, args.config, args.overrides, working_dir)
        submission = build_submission(
            args.submit_job,
            args.config,
            args.overrides,
            working_dir=working_dir,
            pip=args.pip,
            extras=tuple(args.extra),
            env=parse_env(args.env),
            submission_id=args.submission_id,
            entrypoint_num_cpus=args.entrypoint_num_cpus,
        )
        headers = auth_headers(args.auth_token_file)
    except (ConfigError, SystemExit) as exc:
        print(f"pulse submit: {exc}", file=sys.stderr)
        return 2
    try:
        client, job_id = submit(submission, args.address, headers)
    except Exception as exc:  # connection, auth and upload errors all end the command the same way
        hint = "" if headers else " (token-auth cluster? set RAY_AUTH_TOKEN or --auth-token-file)"
        print(
            f"pulse submit: could not submit to {args.address or 'RAY_ADDRESS'}: {exc}{hint}", file=sys.stderr
        )
        return 1
    print(f"pulse submit: job {job_id} submitted: {submission.entrypoint}", flush=True)
    if args.no_follow:
        return 0
    status = follow(client, job_id)
    print(f"pulse submit: job {job_id} {status}", flush=True)
    return 0 if status == "SUCCEEDED" else 1
