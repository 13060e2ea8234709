"""Handlers of ``pulse ecgbench run|judge|nlg|items|sweep`` (parsing lives in ``cli.py``)."""

from __future__ import annotations

import argparse
import json
import math

from pulse.ecgbench.runner import EndpointConfig


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


def run(args: argparse.Namespace) -> int:
    from pulse.ecgbench.load import load_subset
    from pulse.ecgbench.runner import run_items
    from pulse.runtime import init_ray

    init_ray()
    items = load_subset(args.gold, args.subset, allow_partial=args.allow_partial)
    run_items(items, _endpoint(args), args.out)
    return 0


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
    from pulse import io
    from pulse.ecgbench.own_items import build_items

    built, subsets = build_items(args.records, args.images, args.split, args.seed)
    rows = [{**item, "image": None} for item in built]  # images stay in the images Parquet
    io.write_text(args.out, "".join(json.dumps(r) + "\n" for r in rows))
    _print(
        {"items": len(built), "subsets": {k: f"{s.kind}, {len(s.labels)} labels" for k, s in subsets.items()}}
    )
    return 0


def sweep(args: argparse.Namespace) -> int:
    from pulse.config import ConfigError, load_config
    from pulse.ecgbench.sweep import SweepConfig
    from pulse.ecgbench.sweep import run as run_sweep

    try:
        cfg = load_config(SweepConfig, args.config, args.overrides)
    except ConfigError as exc:
        raise ValueError(str(exc)) from None
    run_sweep(cfg)
    return 0
