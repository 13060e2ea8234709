"""``pulse ecgbench``: score predictions, run a model, judge, build own items, sweep models × subsets.

Examples:
    pulse ecgbench score --subset cpsc-test --gold data/ECGBench --predictions answers.jsonl --mode strict
    pulse ecgbench run --subset cpsc-test --gold data/ECGBench --base-url http://localhost:8000/v1 \\
        --model pulse-7b --out runs/pulse-7b/cpsc-test.jsonl
    pulse ecgbench judge --subset ptb-test-report --gold data/ECGBench --predictions answers.jsonl \\
        --judge-url https://api.openai.com/v1 --judge-model gpt-4o --out runs/judge
    pulse ecgbench nlg --gold data/ECGBench --predictions answers.jsonl
    pulse ecgbench items --records out/records --images out/images --out out/bench_items.jsonl
    pulse ecgbench sweep --config configs/ecgbench/sweep_local.yaml output_dir=runs/sweep
"""

from __future__ import annotations

import argparse
import json
import math
import sys

from pulse.ecgbench.subsets import SUBSETS


def _json_default(value):
    return None if isinstance(value, float) and math.isnan(value) else str(value)


def _print_json(obj: dict) -> None:
    # NaN is not JSON: print null so any JSON parser reads the line.
    clean = {k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in obj.items()}
    print(json.dumps(clean, default=_json_default))


def _add_gold(p: argparse.ArgumentParser) -> None:
    p.add_argument("--subset", required=True, choices=sorted(SUBSETS), help="ECGBench config name")
    p.add_argument(
        "--gold", required=True, help="HF release root / converted JSON root, or the subset's file"
    )
    p.add_argument("--allow-partial", action="store_true", help="accept fewer items than published")


def _add_endpoint(p: argparse.ArgumentParser, prefix: str = "") -> None:
    p.add_argument(f"--{prefix}base-url", required=True, help="OpenAI-compatible base URL (…/v1)")
    p.add_argument(f"--{prefix}model", required=True, help="model name sent to the endpoint")
    p.add_argument(
        f"--{prefix}api-key-env", default="OPENAI_API_KEY", help="env var holding the API key (optional)"
    )
    p.add_argument(f"--{prefix}concurrency", type=int, default=4, help="requests in flight")
    p.add_argument(f"--{prefix}rate", type=float, default=None, help="global requests per second cap")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the ``score``, ``run``, ``judge``, ``nlg``, ``items`` and ``sweep`` sub-subcommands."""
    sub = parser.add_subparsers(dest="ecgbench_command", metavar="COMMAND")
    score = sub.add_parser("score", help="score a predictions JSONL (rule-based subsets)")
    _add_gold(score)
    score.add_argument("--predictions", required=True, help="answers JSONL (question_id/id, text/response)")
    score.add_argument("--mode", choices=("paper", "strict"), default="paper")

    run = sub.add_parser("run", help="answer a subset with an OpenAI-compatible endpoint (resumable)")
    _add_gold(run)
    _add_endpoint(run)
    run.add_argument("--out", required=True, help="predictions JSONL to write (existing answers are kept)")
    run.add_argument("--max-tokens", type=int, default=1024)

    judge = sub.add_parser("judge", help="LLM-judge report or arena answers")
    _add_gold(judge)
    _add_endpoint(judge, "judge-")
    judge.add_argument("--predictions", required=True)
    judge.add_argument("--out", required=True, help="folder for per-item judge records")
    judge.add_argument("--rubric", default=None, help="rubric YAML (default: the shipped paper rubric)")

    nlg = sub.add_parser("nlg", help="BLEU-1..4, METEOR, ROUGE-L, CIDEr, BERTScore of generated reports")
    nlg.add_argument("--gold", required=True)
    nlg.add_argument("--predictions", required=True)
    nlg.add_argument("--allow-partial", action="store_true")
    nlg.add_argument("--no-bertscore", action="store_true", help="skip BERTScore (no encoder needed)")

    items = sub.add_parser("items", help="benchmark items from pulse's own records + images")
    items.add_argument("--records", required=True, help="ingest output folder (records/*.parquet)")
    items.add_argument("--images", required=True, help="render output folder (images/*.parquet)")
    items.add_argument("--out", required=True, help="items JSONL to write")
    items.add_argument("--split", default="test")
    items.add_argument("--seed", type=int, default=0)

    sweep = sub.add_parser("sweep", help="models × subsets, resumable; results, tables, plots")
    sweep.add_argument("--config", "-c", required=True, help="sweep YAML")
    sweep.add_argument("overrides", nargs="*", metavar="key.sub=value")


def _score(args: argparse.Namespace) -> int:
    from pulse.ecgbench.load import load_subset
    from pulse.ecgbench.score import read_predictions, score_items

    gold = load_subset(args.gold, args.subset, allow_partial=args.allow_partial)
    preds = read_predictions(args.predictions)
    _print_json(score_items(args.subset, gold, preds, args.mode, allow_partial=args.allow_partial))
    return 0


def main(args: argparse.Namespace) -> int:
    """Dispatch a parsed ``pulse ecgbench`` command; user errors print one line and return 2."""
    handlers = {"score": _score}
    for name in ("run", "judge", "nlg", "items", "sweep"):
        handlers[name] = _lazy(name)
    command = getattr(args, "ecgbench_command", None)
    if command is None:
        print("pulse ecgbench: choose a command (score, run, judge, nlg, items, sweep); see --help")
        return 2
    try:
        return int(handlers[command](args) or 0)
    except (ValueError, FileNotFoundError, KeyError) as exc:
        print(f"pulse ecgbench {command}: {exc}", file=sys.stderr)
        return 2


def _lazy(name: str):
    def handler(args: argparse.Namespace) -> int:
        from pulse.ecgbench import commands

        return getattr(commands, name)(args)

    return handler
