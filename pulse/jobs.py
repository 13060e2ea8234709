"""The one job registry: every pulse job, read by the CLI, ``jobs/*.py``, ``pulse submit`` and the
KubeRay manifest generator (``cluster/manifests.py``).

A config job's module exposes ``CONFIG_CLASS`` (or names its config class after a colon) and
``run(cfg)``, which returns a ``pulse.summary.StageSummary``; :func:`finish` is the one place that
prints it and turns it into the exit code (the CLI and ``jobs/*.py`` call it). A command job's module
exposes ``add_arguments(parser)`` and ``main(args)``.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Literal

from pulse.summary import StageSummary


@dataclass(frozen=True)
class Job:
    name: str
    module: str
    """``package.module`` or ``package.module:ConfigClass``."""
    summary: str
    kind: Literal["config", "command"] = "config"
    cli: bool = True
    """listed as a ``pulse`` subcommand."""
    submit: bool = False
    """has a ``jobs/<name>.py`` entry point that ``pulse submit`` and KubeRay RayJobs run."""
    worker_group: str | None = None
    """the KubeRay worker group its RayJob needs beside the CPU group (``None`` = CPU only)."""

    @property
    def module_name(self) -> str:
        return self.module.partition(":")[0]

    @property
    def config_attribute(self) -> str:
        return self.module.partition(":")[2] or "CONFIG_CLASS"


JOBS: dict[str, Job] = {
    job.name: job
    for job in (
        Job(
            "ingest",
            "pulse.data_ray.ingest",
            "Read raw ECG datasets (native layouts) into record Parquet.",
            submit=True,
        ),
        Job(
            "render",
            "pulse.data_ray.render.job",
            "Render records to paper-ECG images (image Parquet).",
            submit=True,
        ),
        Job(
            "build",
            "pulse.data_ray.instruct.job",
            "Build instruction data (templates / LLM synthesis, judge, write).",
            submit=True,
            worker_group="gpu-infer",
        ),
        Job(
            "import-llava",
            "pulse.data_ray.llava_format.job",
            "Import LLaVA-format data (ECGInstruct.json, LLaVA JSON/JSONL + tar shards) to instruction Parquet.",
        ),
        Job(
            "train",
            "pulse.train_ray.job",
            "Finetune LLaVA-NeXT with Ray Train (DDP / DeepSpeed ZeRO).",
            submit=True,
            worker_group="gpu-train",
        ),
        Job(
            "serve",
            "pulse.serve.job",
            "Serve a checkpoint behind an OpenAI-compatible Ray Serve endpoint.",
            submit=True,
        ),
        Job("demo", "pulse.demo", "Run the whole loop on the bundled real records on an embedded Ray."),
        Job(
            "ecgbench",
            "pulse.ecgbench.cli",
            "ECGBench: score predictions, run a model, sweep models x subsets.",
            kind="command",
        ),
        Job(
            "ecgbench_sweep",
            "pulse.ecgbench.sweep:SweepConfig",
            "ECGBench sweep over models x subsets (the `pulse ecgbench sweep` config job).",
            cli=False,
            submit=True,
        ),
        Job(
            "convert",
            "pulse.models.convert",
            "Convert an original-LLaVA checkpoint (PULSE-7B) to a Hugging Face LLaVA-NeXT folder.",
            kind="command",
        ),
        Job(
            "submit",
            "pulse.submit",
            "Submit a pulse job to a Ray cluster through the Jobs API.",
            kind="command",
        ),
    )
}
SUBMITTABLE = tuple(name for name, job in JOBS.items() if job.submit)


def register(job: Job) -> None:
    """Add a job (e.g. a plugin's); a name is registered once."""
    if job.name in JOBS:
        raise ValueError(f"job {job.name!r} is already registered")
    JOBS[job.name] = job


class JobUnavailable(RuntimeError):
    """A registered job whose module cannot be imported in this installation."""


def load_job(name: str):
    """Import a config job's module; returns (module, config class)."""
    job = JOBS[name]
    try:
        module = importlib.import_module(job.module_name)
    except ModuleNotFoundError as exc:
        if exc.name and job.module_name.startswith(exc.name):
            raise JobUnavailable(
                f"job {name!r} is not available: module {job.module_name} not found"
            ) from None
        raise JobUnavailable(f"job {name!r}: cannot import {job.module_name}: {exc}") from exc
    except ImportError as exc:
        raise JobUnavailable(f"job {name!r}: cannot import {job.module_name}: {exc}") from exc
    for attribute in (job.config_attribute, "run"):
        if not hasattr(module, attribute):
            raise JobUnavailable(f"job {name!r}: {job.module_name} has no {attribute}")
    return module, getattr(module, job.config_attribute)


def finish(result: StageSummary) -> int:
    """A config job's ``run(cfg)`` result, shown: prints the summary, returns the exit code.

    The one place the CLI and ``jobs/*.py`` (and ``pulse ecgbench sweep``) map a job's result to
    what the terminal shows and the process exit status.
    """
    if not isinstance(result, StageSummary):
        raise TypeError(f"a job's run(cfg) returns a StageSummary, not {type(result).__name__}")
    result.print()
    return result.exit_code
