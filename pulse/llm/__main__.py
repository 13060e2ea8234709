"""Ask an engine a question from the shell: ``python -m pulse.llm --config configs/llm/<name>.yaml``.

Checks an engine config (a local model, an endpoint, a GPU vLLM setup) before a long job
uses it: ``python -m pulse.llm --config configs/llm/openai_endpoint.yaml model=gpt-4o
--prompt "What is atrial fibrillation?"``. Overrides are ``key=value`` as for every job.
"""

from __future__ import annotations

import argparse
import sys
import time

import yaml
from pydantic import ValidationError

from pulse import io
from pulse.config import apply_override, parse_override, resolve_config_path
from pulse.llm import LLMGenerationError, generate_local, parse_engine_config


def load_engine_config(path: str | None, overrides: list[str]):
    """An engine config from a YAML file (or none) plus ``key=value`` overrides."""
    data = yaml.safe_load(io.read_text(resolve_config_path(path))) if path else {}
    data = data or {}
    for text in overrides:
        keys, value = parse_override(text)
        apply_override(data, keys, value)
    return parse_engine_config(data)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m pulse.llm", description=__doc__.splitlines()[0])
    parser.add_argument("--config", "-c", help="engine YAML (a path, or relative to the shipped configs/)")
    parser.add_argument("--prompt", "-p", action="append", required=True, help="a user message (repeatable)")
    parser.add_argument("--system", help="an optional system message")
    parser.add_argument("--max-tokens", type=int, default=128)
    parser.add_argument("--temperature", type=float, default=0.0)
    parser.add_argument("overrides", nargs="*", metavar="key=value")
    args = parser.parse_args(argv)
    try:
        engine = load_engine_config(args.config, args.overrides)
    except ValidationError as exc:
        print(f"python -m pulse.llm: invalid engine config:\n{exc}", file=sys.stderr)
        return 2
    system = [{"role": "system", "content": args.system}] if args.system else []
    conversations = [[*system, {"role": "user", "content": p}] for p in args.prompt]
    started = time.perf_counter()
    try:
        texts = generate_local(
            engine, conversations, {"max_tokens": args.max_tokens, "temperature": args.temperature}
        )
    except LLMGenerationError as exc:
        print(f"python -m pulse.llm: {exc}", file=sys.stderr)
        return 1
    for prompt, text in zip(args.prompt, texts, strict=True):
        print(f"> {prompt}\n{text}\n")
    print(f"[{engine.kind}] {len(texts)} replies in {time.perf_counter() - started:.1f}s", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
