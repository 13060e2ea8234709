"""Shared body of the ``jobs/*.py`` entry points that ``ray job submit`` runs.

Each entry point loads the job's typed config (``--config`` plus ``key.sub=value``
overrides), connects to Ray (``RAY_ADDRESS``, which the Jobs API sets for the driver,
or an embedded local Ray), calls the same ``run(cfg)`` as the ``pulse`` CLI and, as the CLI
does, prints the job's summary and exits with its code (``pulse.jobs.finish``).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

# The checkout beside this file wins over a pulse installed in the cluster image.
sys.path.insert(1, str(Path(__file__).resolve().parents[1]))


def load_job(job: str):
    """The job's (module, config class) from pulse's job registry; a missing stage is a clear exit."""
    from pulse.jobs import JobUnavailable
    from pulse.jobs import load_job as registry_load_job

    try:
        return registry_load_job(job)
    except JobUnavailable as exc:
        raise SystemExit(f"pulse {exc}") from None


def run_job(job: str, argv: list[str] | None = None) -> int:
    """Parse ``--config`` + overrides, connect to Ray, call ``run(cfg)``; returns the exit code."""
    from pulse.config import ConfigError, load_config
    from pulse.jobs import finish
    from pulse.runtime import init_ray

    parser = argparse.ArgumentParser(prog=f"jobs/{job}.py", description=f"Ray Jobs entry point: {job}")
    parser.add_argument("--config", "-c", help="YAML config (a path, or relative to the shipped configs/)")
    parser.add_argument("overrides", nargs="*", metavar="key.sub=value")
    args = parser.parse_args(argv)
    module, config_class = load_job(job)
    try:
        cfg = load_config(config_class, args.config, args.overrides)
    except ConfigError as exc:
        print(f"jobs/{job}.py: {exc}", file=sys.stderr)
        return 2
    init_ray(getattr(cfg, "ray", None))
    return finish(module.run(cfg))
