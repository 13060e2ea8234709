"""The ``pulse`` console script: one subcommand per job, each a thin call into ``run(cfg)``.

Config jobs take ``--config file.yaml`` plus dotted overrides (``train.lr=1e-5``). A job
module exposes ``CONFIG_CLASS``, ``run(cfg)`` and a module docstring used as help. Jobs
with their own sub-subcommands (``ecgbench``, ``submit``) expose ``add_arguments(parser)``
and ``main(args)`` instead.
"""

from __future__ import annotations

import argparse
import ast
import importlib
import importlib.metadata
import importlib.util
import os
import sys

from pulse.config import ConfigError, load_config
from pulse.jobs import JOBS, finish

CONFIG_JOBS: dict[str, tuple[str, str]] = {
    name: (job.module_name, job.summary) for name, job in JOBS.items() if job.cli and job.kind == "config"
}
CUSTOM_JOBS: dict[str, tuple[str, str]] = {
    name: (job.module_name, job.summary) for name, job in JOBS.items() if job.cli and job.kind == "command"
}


VERBOSE_HELP = "also show Ray's own logs: start-up notices, worker output, Ray Data progress"


def version() -> str:
    try:
        return importlib.metadata.version("pulse-ecg")
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


def module_docstring(module: str) -> str | None:
    """A job module's docstring without importing it (keeps ``--help`` fast)."""
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.origin:
        return None
    with open(spec.origin, encoding="utf-8") as handle:
        return ast.get_docstring(ast.parse(handle.read()))


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="pulse",
        description="pulse: teach multimodal LLMs to read ECG images, on Ray. "
        "Each job reads a YAML config (--config) and accepts dotted overrides (key.sub=value).",
    )
    parser.add_argument("--version", action="version", version=f"pulse {version()}")
    parser.add_argument("--verbose", "-v", action="store_true", help=VERBOSE_HELP)
    sub = parser.add_subparsers(dest="job", metavar="JOB")
    for name, (module, summary) in CONFIG_JOBS.items():
        try:
            epilog = module_docstring(module)
        except (ImportError, OSError, SyntaxError):
            epilog = None
        job = sub.add_parser(
            name,
            help=summary,
            description=summary + " Overrides: key.sub=value (YAML values; list items by index, e.g. "
            "sources.0.limit=5); unknown keys are errors.",
            epilog=epilog,
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        job.add_argument("--config", "-c", help="YAML config (a path, or relative to the shipped configs/)")
        job.add_argument("--print-config", action="store_true", help="print the resolved config and exit")
        job.add_argument("--verbose", "-v", action="store_true", default=argparse.SUPPRESS, help=VERBOSE_HELP)
        job.add_argument("overrides", nargs="*", metavar="key.sub=value", help="config overrides")
        if name == "serve":
            job.add_argument(
                "--checkpoint", help="serve this checkpoint under its own name (same as checkpoint=PATH)"
            )
        job.set_defaults(_module=module, _kind="config")
    for name, (module, summary) in CUSTOM_JOBS.items():
        job = sub.add_parser(name, help=summary, description=summary)
        job.set_defaults(_module=module, _kind="custom")
        try:
            importlib.import_module(module).add_arguments(job)
        except ImportError as exc:  # keep `pulse --help` working while a part is missing
            job.set_defaults(_import_error=str(exc))
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run one job; user errors (config, missing inputs, storage access) are one line, exit code 2."""
    try:
        return _main(argv)
    except BrokenPipeError:  # `pulse ... | head`: the reader left; no traceback, nothing more to write
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 2


def _main(argv: list[str] | None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    from pulse.runtime import set_verbose

    if getattr(args, "verbose", False):
        set_verbose(True)
    if not args.job:
        parser.print_help()
        return 2
    if argv is None and not getattr(args, "print_config", False):
        # The console script running a job: Ray's C++ noise on fd 2 stays off the terminal (not
        # with --verbose; see pulse/stderr_filter.py). Not for main([...]) called in-process.
        from pulse.stderr_filter import install

        install()
    if getattr(args, "_import_error", None):
        print(f"pulse {args.job}: unavailable ({args._import_error})", file=sys.stderr)
        return 2
    module = importlib.import_module(args._module)
    if args._kind == "custom":
        with user_errors(args.job):
            return int(module.main(args) or 0)
        return 2
    with user_errors(args.job):
        checkpoint = [f"checkpoint={args.checkpoint}"] if getattr(args, "checkpoint", None) else []
        cfg = load_config(module.CONFIG_CLASS, args.config, [*checkpoint, *args.overrides])
        if args.print_config:
            import yaml

            sys.stdout.write(yaml.safe_dump(cfg.model_dump(mode="json"), sort_keys=False))
            sys.stdout.flush()
            return 0
        return finish(module.run(cfg))
    return 2


class user_errors:
    """``with user_errors(job):`` a wrong input is the user's to fix: one line on stderr, not a traceback.

    Covers config errors, missing files and S3 access errors (with a hint about ``storage:`` and
    the ``AWS_*`` variables); anything else is a bug and keeps its traceback.
    """

    def __init__(self, job: str):
        self.job = job

    def __enter__(self) -> user_errors:
        return self

    def __exit__(self, kind, exc, tb) -> bool:
        if exc is None or isinstance(exc, BrokenPipeError):
            return False
        if isinstance(exc, ConfigError | FileNotFoundError | IsADirectoryError):
            message = str(exc)
        else:
            from pulse.io import storage_error_message

            message = storage_error_message(exc) if isinstance(exc, Exception) else None
            if message is None:
                return False
        print(f"pulse {self.job}: {' '.join(message.split())}", file=sys.stderr)
        return True


if __name__ == "__main__":
    sys.exit(main())
