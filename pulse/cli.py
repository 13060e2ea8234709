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
import importlib.util
import sys

from pulse.config import ConfigError, load_config
from pulse.jobs import JOBS

CONFIG_JOBS: dict[str, tuple[str, str]] = {
    name: (job.module_name, job.summary) for name, job in JOBS.items() if job.cli and job.kind == "config"
}
CUSTOM_JOBS: dict[str, tuple[str, str]] = {
    name: (job.module_name, job.summary) for name, job in JOBS.items() if job.cli and job.kind == "command"
}


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
    parser = build_parser()
    args = parser.parse_args(argv)
    if not args.job:
        parser.print_help()
        return 2
    if getattr(args, "_import_error", None):
        print(f"pulse {args.job}: unavailable ({args._import_error})", file=sys.stderr)
        return 2
    module = importlib.import_module(args._module)
    if args._kind == "custom":
        return int(module.main(args) or 0)
    try:
        checkpoint = [f"checkpoint={args.checkpoint}"] if getattr(args, "checkpoint", None) else []
        cfg = load_config(module.CONFIG_CLASS, args.config, [*checkpoint, *args.overrides])
    except ConfigError as exc:
        print(f"pulse {args.job}: {exc}", file=sys.stderr)
        return 2
    if args.print_config:
        import yaml

        print(yaml.safe_dump(cfg.model_dump(mode="json"), sort_keys=False))
        return 0
    try:
        result = module.run(cfg)
    except (FileNotFoundError, ConfigError) as exc:  # a wrong input is the user's to fix, not a traceback
        print(f"pulse {args.job}: {exc}", file=sys.stderr)
        return 2
    return int(result) if isinstance(result, int) else 0


if __name__ == "__main__":
    sys.exit(main())
