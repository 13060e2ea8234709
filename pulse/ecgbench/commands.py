"""Handlers of ``pulse ecgbench download|score|run|judge|nlg|items|sweep`` (parsing lives in ``cli.py``)."""

from __future__ import annotations

import argparse
import json
import math
import sys

from pulse.ecgbench.runner import EndpointConfig
from pulse.ecgbench.subsets import SUBSETS


def _endpoint(args: argparse.Namespace, prefix: str = "") -> EndpointConfig:
    get = lambda name: getattr(args, prefix + name)  # noqa: E731
    return EndpointConfig(
        name=get("model"),
        base_url=get("base_url"),
        model=get("model"),
        api_key_env=get("api_key_env"),
        max_concurrent_requests=get("concurrency"),
        qps=get("rate"),
        **({"max_tokens": args.max_tokens} if not prefix else {}),
    )


def _print(result: dict) -> None:
    print(json.dumps({k: None if isinstance(v, float) and math.isnan(v) else v for k, v in result.items()}))


def download(args: argparse.Namespace) -> int:
    from pulse.ecgbench.download import download as fetch

    paths = fetch(args.local_dir, args.subsets, args.revision)
    _print({"downloaded": len(paths), "local_dir": args.local_dir, "next": f"--gold {args.local_dir}"})
    return 0


def _scored(args: argparse.Namespace, gold: list[dict], preds: list[dict], sources: dict) -> int:
    """Print the headline result, write the results folder if asked; 2 when nothing was scored."""
    from pulse.ecgbench.load import subset_spec
    from pulse.ecgbench.results import nothing_scored, score_both_modes, write_results

    spec = subset_spec(args.gold, args.subset)
    model = args.name or next((p["model_id"] for p in preds if p.get("model_id")), None) or "predictions"
    rows, answers = score_both_modes(spec, gold, preds, args.mode, model, args.allow_partial)
    headline = next(r for r in rows if r["mode"] == args.mode)
    _print({k: v for k, v in headline.items() if k != "model"})
    if args.output_dir:
        specs = None if spec.name in SUBSETS else {spec.name: spec}
        write_results(args.output_dir, rows, args.mode, answers, sources, specs)
    reason = nothing_scored(headline, spec)
    if reason:
        print(
            f"pulse ecgbench {args.ecgbench_command}: nothing scored: {spec.name}: {reason}", file=sys.stderr
        )
        return 2
    return 0


def score(args: argparse.Namespace) -> int:
    from pulse.ecgbench.load import load_subset
    from pulse.ecgbench.score import read_predictions

    gold = load_subset(args.gold, args.subset, allow_partial=args.allow_partial)
    preds = read_predictions(args.predictions)
    return _scored(args, gold, preds, {"gold": args.gold, "predictions": args.predictions})


def run(args: argparse.Namespace) -> int:
    from pulse import io
    from pulse.ecgbench.load import load_subset
    from pulse.ecgbench.runner import check_images, run_items
    from pulse.ecgbench.score import read_predictions
    from pulse.runtime import init_ray

    if not args.out and not args.output_dir:
        raise ValueError("give --output-dir (results folder) or --out (predictions JSONL)")
    out = args.out or io.join(args.output_dir, "predictions.jsonl")
    items = load_subset(args.gold, args.subset, allow_partial=args.allow_partial)
    check_images(items)  # before Ray starts: a file without images is refused at once
    init_ray()
    run_items(items, _endpoint(args), out)
    if not args.output_dir:
        return 0
    if SUBSETS.get(args.subset) is not None and SUBSETS[args.subset].kind in ("report", "arena"):
        print(f"{args.subset} is judged: `pulse ecgbench judge --subset {args.subset} --predictions {out}`")
        return 0
    return _scored(args, items, read_predictions(out), {"gold": args.gold, "predictions": out})


def judge(args: argparse.Namespace) -> int:
    from pulse.ecgbench.judge import judge_items, load_rubrics
    from pulse.ecgbench.load import load_subset
    from pulse.ecgbench.score import read_predictions

    items = load_subset(args.gold, args.subset, allow_partial=args.allow_partial)
    preds = read_predictions(args.predictions)
    _print(
        judge_items(args.subset, items, preds, _endpoint(args, "judge_"), args.out, load_rubrics(args.rubric))
    )
    return 0


def nlg(args: argparse.Namespace) -> int:
    from pulse.ecgbench.load import load_subset
    from pulse.ecgbench.nlg import report_metrics
    from pulse.ecgbench.score import read_predictions

    gold = {g["id"]: g for g in load_subset(args.gold, "ptb-test-report", allow_partial=args.allow_partial)}
    preds = [p for p in read_predictions(args.predictions) if p["id"] in gold]
    if len(preds) != len(gold) and not args.allow_partial:
        raise ValueError(f"ptb-test-report: {len(gold) - len(preds)} reports have no prediction")
    refs = [str(gold[p["id"]]["answer"]) for p in preds]
    _print(
        {
            "subset": "ptb-test-report",
            **report_metrics(refs, [p["text"] for p in preds], not args.no_bertscore),
        }
    )
    return 0


def items(args: argparse.Namespace) -> int:
    from pulse.ecgbench.own_items import build_items, check_out_dir, write_items

    check_out_dir(args.out)  # before reading any Parquet
    built, subsets = build_items(args.records, args.images, args.split, args.seed)
    if not built:
        raise ValueError(
            f"no {args.split} records with labels and an image under {args.records} and {args.images}"
        )
    paths = write_items(built, subsets, args.out)
    _print(
        {
            "items": len(built),
            "subsets": {k: f"{s.size} items, {s.kind}, {len(s.labels)} labels" for k, s in subsets.items()},
            "files": paths,
            "next": f"pulse ecgbench run --subset {next(iter(paths))} --gold {args.out} ...",
        }
    )
    return 0


def sweep(args: argparse.Namespace) -> int:
    from pulse.config import ConfigError, load_config
    from pulse.ecgbench.sweep import SweepConfig
    from pulse.ecgbench.sweep import run as run_sweep
    from pulse.jobs import finish

    try:
        cfg = load_config(SweepConfig, args.config, args.overrides)
    except ConfigError as exc:
        raise ValueError(str(exc)) from None
    return finish(run_sweep(cfg))
