"""PULSE-7B on a fixed slice of each rule-scored ECGBench subset, next to the published numbers (one GPU).

Prepared for a lent GPU machine: one call, nothing downloaded there. Needs a converted PULSE-7B
(``pulse convert PULSE-ECG/PULSE-7B /models/pulse-7b``) and the ECGBench release
(``pulse ecgbench download``) on local disk:

  python benchmarks/pulse7b_gpu.py --checkpoint /models/pulse-7b --gold data/ECGBench --per-subset 32

The paper's protocol: llava_v1 template (the converted folder's chat template), greedy decoding,
1024 new tokens, ``<image>`` first. The first ``--per-subset`` items of each subset (file order) are
answered by pulse's transformers engine (the same loader and flat merge as ``pulse serve``) and
scored by pulse's scorer in paper mode. It prints one row per subset: pulse's score on the slice,
the published PULSE-7B score and the difference, and writes ``--out`` (JSON). A slice is noisy; the
full sweep is ``pulse ecgbench sweep --config configs/ecgbench/sweep_pulse7b.yaml``.
"""

from __future__ import annotations

import argparse
import io as stdio
import json
import time

RULE_SCORED = [
    "ptb-test",
    "code15-test",
    "ecgqa-test",
    "cpsc-test",
    "csn-test-no-cot",
    "g12-test-no-cot",
    "mmmu-ecg",
]


def answer(engine, items: list[dict], max_tokens: int) -> list[dict]:
    from PIL import Image

    from pulse.ecgbench.load import item_image_bytes
    from pulse.llm.base import ChatRequest
    from pulse.llm.config import SamplingParams

    requests = []
    for item in items:
        image = Image.open(stdio.BytesIO(item_image_bytes(item))).convert("RGB")
        content = [{"type": "image"}, {"type": "text", "text": item["question"]}]
        requests.append(
            ChatRequest(
                [{"role": "user", "content": content}],
                SamplingParams(max_tokens=max_tokens, temperature=0.0),
                images=(image,),
            )
        )
    results = engine.generate(requests)
    return [
        {"id": item["id"], "text": (r.text or "").strip(), "prompt": item["question"], "error": r.error}
        for item, r in zip(items, results, strict=True)
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--checkpoint", default="/models/pulse-7b")
    parser.add_argument("--gold", default="data/ECGBench")
    parser.add_argument("--per-subset", type=int, default=32)
    parser.add_argument("--max-tokens", type=int, default=1024)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--subsets", nargs="*", default=RULE_SCORED)
    parser.add_argument("--out", default="pulse7b_slice.json")
    args = parser.parse_args(argv)

    from pulse.ecgbench.load import load_subset
    from pulse.ecgbench.report import load_published
    from pulse.ecgbench.score import score_items
    from pulse.ecgbench.subsets import get_subset
    from pulse.llm.config import TransformersEngineConfig
    from pulse.llm.transformers_engine import TransformersEngine

    start = time.monotonic()
    engine = TransformersEngine(
        TransformersEngineConfig(
            model_source=args.checkpoint,
            dtype="bfloat16",
            device="cuda",
            batch_size=args.batch_size,
            max_input_tokens=4096,
            max_model_len=4096 + args.max_tokens,
        )
    )
    print(
        f"loaded {args.checkpoint} ({type(engine.model).__name__}) in {time.monotonic() - start:.0f}s",
        flush=True,
    )
    published = load_published()["PULSE-7B"]
    rows = []
    for name in args.subsets:
        began = time.monotonic()
        items = load_subset(args.gold, name, allow_partial=True)[: args.per_subset]
        predictions = answer(engine, items, args.max_tokens)
        scores = score_items(name, items, predictions, mode="paper", allow_partial=True)
        for metric in get_subset(name).metric_keys:
            ours, theirs = scores[metric], published.get(name, {}).get(metric)
            delta = None if theirs is None or ours is None else round(ours - theirs, 1)
            rows.append(
                {
                    "subset": name,
                    "metric": metric,
                    "n": scores["n"],
                    "pulse": ours,
                    "published": theirs,
                    "delta": delta,
                    "seconds": round(time.monotonic() - began, 1),
                }
            )
            print(
                f"{name:18s} {metric:13s} n={scores['n']:4d} pulse={ours} published={theirs} delta={delta}",
                flush=True,
            )
    with open(args.out, "w") as handle:
        json.dump(
            {"checkpoint": args.checkpoint, "per_subset": args.per_subset, "rows": rows}, handle, indent=2
        )
    print(f"total {time.monotonic() - start:.0f}s -> {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
