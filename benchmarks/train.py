"""Training throughput: DDP, ZeRO-2 and ZeRO-3 on Ray Train vs a plain single-process loop.

The baseline is a single-process PyTorch loop (no Ray, no process group) doing the same
optimizer steps on the same kind of batches (same tiny model, encoder, collate, global
batch). Each strategy runs through ``pulse.train_ray.job.run`` (2 workers, Ray Data streaming)
and reports the median steady-state samples/s and tokens/s of its steps (step 1, which
includes the pipeline start, is excluded). Ratios are against the baseline from the same run.

  python benchmarks/train.py                    # tiny model, 2 CPU workers, gloo
  python benchmarks/train.py --steps 30 --strategies ddp zero2
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time

import torch

from pulse.config import load_config
from pulse.models.tiny_llava import LlavaBuildConfig, build_model, build_processor
from pulse.train_ray.collate import decode_image, encode_sample, pad_batch
from pulse.train_ray.config import TrainableParts, TrainConfig
from pulse.train_ray.job import run
from pulse.train_ray.model import apply_trainable, freeze_unused
from pulse.train_ray.synthetic import heart_rate_rows, write_instruction_parquet

GLOBAL_BATCH = 8
MICRO_BATCH = 2


def baseline(rows: list[dict], steps: int, max_length: int) -> tuple[float, float]:
    """(samples/s, tokens/s) of a plain single-process loop over the same rows."""
    cfg = LlavaBuildConfig()
    processor = build_processor(cfg)
    model = build_model(cfg, processor.tokenizer)
    apply_trainable(model, TrainableParts(vision_tower=True))
    freeze_unused(model)
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=1e-3)
    accum = GLOBAL_BATCH // MICRO_BATCH
    rates = []
    cursor = 0
    for step in range(steps + 1):
        started, tokens = time.perf_counter(), 0
        for _ in range(accum):
            chunk = [rows[(cursor + i) % len(rows)] for i in range(MICRO_BATCH)]
            cursor += MICRO_BATCH
            samples = [
                encode_sample(processor, decode_image(r["image"]), r["conversations"], max_length).__dict__
                for r in chunk
            ]
            batch = pad_batch(samples, processor.tokenizer.pad_token_id)
            (model(**batch).loss / accum).backward()
            tokens += int(batch["attention_mask"].sum())
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        seconds = time.perf_counter() - started
        if step:
            rates.append((GLOBAL_BATCH / seconds, tokens / seconds))
    return statistics.median(r[0] for r in rates), statistics.median(r[1] for r in rates)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=12)
    parser.add_argument("--rows", type=int, default=160)
    parser.add_argument("--strategies", nargs="+", default=["ddp", "zero2", "zero3"])
    args = parser.parse_args()
    work = tempfile.mkdtemp(prefix="pulse-train-bench-")
    rows = heart_rate_rows(args.rows, seed=0)
    write_instruction_parquet(rows, f"{work}/data", shard_size=32)
    base_samples, base_tokens = baseline(rows, args.steps, 512)
    table = [("plain torch, 1 process", base_samples, base_tokens, None)]
    for strategy in args.strategies:
        cfg = load_config(
            TrainConfig,
            "configs/train/tiny-cpu.yaml",
            [
                f"name=bench-{strategy}",
                f"storage_path={work}/runs",
                f"data.train_path={work}/data",
                f"strategy={strategy}",
                f"max_steps={args.steps}",
                f"checkpoint_every={args.steps}",
                f"global_batch_size={GLOBAL_BATCH}",
                f"micro_batch_size={MICRO_BATCH}",
            ],
        )
        started = time.time()
        result = run(cfg)
        table.append(
            (
                f"ray {strategy}, 2 workers",
                result.metrics["samples_per_s"],
                result.metrics["tokens_per_s"],
                time.time() - started,
            )
        )
    print(f"\ntiny LLaVA-NeXT, global batch {GLOBAL_BATCH}, {args.steps} steps, CPU (gloo)")
    print(f"{'mode':28s} {'samples/s':>10s} {'tokens/s':>10s} {'x baseline':>11s} {'fit wall s':>11s}")
    for name, samples, tokens, wall in table:
        wall_text = f"{wall:11.0f}" if wall is not None else f"{'':>11s}"
        print(f"{name:28s} {samples:10.2f} {tokens:10.0f} {samples / base_samples:11.2f} {wall_text}")


if __name__ == "__main__":
    main()
