"""``pulse ecgbench``: download, score predictions, run a model, judge, build own items, sweep.

Examples (docs/ecgbench.md walks through them):
    pulse ecgbench download --local-dir data/ECGBench
    pulse ecgbench score --subset cpsc-test --gold data/ECGBench --predictions answers.jsonl --mode strict \\
        --output-dir runs/score/cpsc-test
    pulse ecgbench run --subset cpsc-test --gold data/ECGBench --base-url http://localhost:8000/v1 \\
        --model pulse-7b --output-dir runs/pulse-7b/cpsc-test
    pulse ecgbench judge --subset ptb-test-report --gold data/ECGBench --predictions answers.jsonl \\
        --judge-base-url https://api.openai.com/v1 --judge-model gpt-4o --out runs/judge
    pulse ecgbench nlg --gold data/ECGBench --predictions answers.jsonl
    pulse ecgbench items --records out/ingest --images out/render --out out/bench
    pulse ecgbench run --subset own-ptbxl --gold out/bench --base-url ... --model m --output-dir runs/own
    pulse ecgbench sweep --config configs/ecgbench/sweep_local.yaml output_dir=runs/sweep
"""

from __future__ import annotations

import argparse
import sys

from pulse.ecgbench.subsets import DEFAULT_ROOT, HF_REPO, OWN_PREFIX, SUBSETS


def subset_name(value: str) -> str:
    """An ECGBench config name or an ``own-<dataset>`` subset of ``pulse ecgbench items``."""
    if value in SUBSETS or (value.startswith(OWN_PREFIX) and len(value) > len(OWN_PREFIX)):
        return value
    raise argparse.ArgumentTypeError(f"{value!r}: choose one of {sorted(SUBSETS)} or own-<dataset>")


def _add_gold(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--subset",
        required=True,
        type=subset_name,
        metavar="SUBSET",
        help=f"ECGBench config ({', '.join(SUBSETS)}) or own-<dataset> from `ecgbench items`",
    )
    p.add_argument(
        "--gold",
        required=True,
        help="HF release root (pulse ecgbench download), converted JSON root, items folder, or one file",
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
    """Add the ``download``, ``score``, ``run``, ``judge``, ``nlg``, ``items`` and ``sweep`` commands."""
    sub = parser.add_subparsers(dest="ecgbench_command", metavar="COMMAND")
    download = sub.add_parser("download", help=f"download the HF release {HF_REPO} (huggingface_hub)")
    download.add_argument("--local-dir", default=DEFAULT_ROOT, help=f"target folder (default {DEFAULT_ROOT})")
    download.add_argument("--subsets", nargs="*", default=[], choices=sorted(SUBSETS), help="default: all 9")
    download.add_argument("--revision", default=None, help="branch, tag or commit of the dataset repo")

    score = sub.add_parser("score", help="score a predictions JSONL (rule-based subsets)")
    _add_gold(score)
    score.add_argument("--predictions", required=True, help="answers JSONL (question_id/id, text/response)")
    score.add_argument("--mode", choices=("paper", "strict"), default="paper")
    _add_output_dir(score)

    run = sub.add_parser("run", help="answer a subset with an OpenAI-compatible endpoint (resumable)")
    _add_gold(run)
    _add_endpoint(run)
    run.add_argument("--out", default=None, help="predictions JSONL (default <output-dir>/predictions.jsonl)")
    run.add_argument("--max-tokens", type=int, default=1024)
    run.add_argument("--mode", choices=("paper", "strict"), default="paper", help="headline mode")
    _add_output_dir(run)

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
    items.add_argument("--out", required=True, help="folder: own-<dataset>.json, images/, subsets.json")
    items.add_argument("--split", default="test")
    items.add_argument("--seed", type=int, default=0)

    sweep = sub.add_parser("sweep", help="models × subsets, resumable; results, tables, plots")
    sweep.add_argument("--config", "-c", required=True, help="sweep YAML")
    sweep.add_argument("overrides", nargs="*", metavar="key.sub=value")


def _add_output_dir(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--output-dir",
        default=None,
        help="results folder: results.json/.csv/.md and answers.jsonl (as a sweep writes)",
    )
    p.add_argument("--name", default=None, help="model name in the results (default: the answers' model_id)")


COMMANDS = ("download", "score", "run", "judge", "nlg", "items", "sweep")


def main(args: argparse.Namespace) -> int:
    """Dispatch a parsed ``pulse ecgbench`` command; user errors print one line and return 2."""
    handlers = {name: _lazy(name) for name in COMMANDS}
    command = getattr(args, "ecgbench_command", None)
    if command is None:
        print(f"pulse ecgbench: choose a command ({', '.join(COMMANDS)}); see --help")
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
