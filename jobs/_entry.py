"""Shared body of the ``jobs/*.py`` entry points that ``ray job submit`` runs.

Each entry point loads the job's typed config (``--config`` plus ``key.sub=value``
overrides), connects to Ray (``RAY_ADDRESS``, which the Jobs API sets for the driver,
or an embedded local Ray) and calls the same ``run(cfg)`` as the ``pulse`` CLI.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from pathlib import Path

# The checkout beside this file wins over a pulse installed in the cluster image.
sys.path.insert(1, str(Path(__file__).resolve().parents[1]))

JOB_MODULES: dict[str, str] = {
    "ingest": "pulse.data_ray.ingest",
    "render": "pulse.data_ray.render.job",
    "build": "pulse.data_ray.instruct.job",
    "train": "pulse.train_ray.job",
    "serve": "pulse.serve.job",
    "ecgbench_sweep": "pulse.ecgbench.sweep:SweepConfig",
}
"""``module`` (its config class is ``CONFIG_CLASS``) or ``module:ConfigClass``."""


def load_job(job: str):
    """Import the module behind ``job``; returns (module, config class). A missing stage is a clear error."""
    module_name, _, config_attribute = JOB_MODULES[job].partition(":")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name and module_name.startswith(exc.name):
            raise SystemExit(
                f"pulse job {job!r} is not available in this checkout: module {module_name} not found"
            ) from None
        raise SystemExit(f"pulse job {job!r}: cannot import {module_name}: {exc}") from exc
    except ImportError as exc:
        raise SystemExit(f"pulse job {job!r}: cannot import {module_name}: {exc}") from exc
    for attribute in (config_attribute or "CONFIG_CLASS", "run"):
        if not hasattr(module, attribute):
            raise SystemExit(f"pulse job {job!r}: {module_name} has no {attribute}")
    return module, getattr(module, config_attribute or "CONFIG_CLASS")


def run_job(job: str, argv: list[str] | None = None) -> int:
    """Parse ``--config`` + overrides, connect to Ray, call ``run(cfg)``; returns the exit code."""
    from pulse.config import ConfigError, load_config
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
    result = module.run(cfg)
    return int(result) if isinstance(result, int) else 0
