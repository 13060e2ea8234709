"""Learning check: does the trainer teach a tiny LLaVA-NeXT to read an ECG strip?

Task: heart-rate class (bradycardia / normal / tachycardia) of rendered rhythm strips synthesised
at known rates (``pulse.train_ray.synthetic``). The tiny random model is trained by the real
``pulse train`` path (Ray Train, 2 workers, Ray Data streaming, checkpoint, HF export); held-out
strips are answered greedily by the *exported* checkpoint and scored with the ECGBench strict
label extractor and accuracy. The untrained model (same seed, same export path) is scored
beside it. Pass: trained accuracy >= 2x chance (2/3).

  python benchmarks/learning_check.py                       # ~3-6 min on 2 CPU cores
  python benchmarks/learning_check.py --steps 200 --strategy zero2
"""

from __future__ import annotations

import argparse
import io as _stdio
import tempfile
import time

import torch

from pulse.config import load_config
from pulse.ecgbench.extract import labels_in_text
from pulse.ecgbench.metrics import accuracy
from pulse.models.loader import load_pretrained_dir
from pulse.models.tiny_llava import LlavaBuildConfig, build_tiny_llava
from pulse.train_ray.collate import to_messages
from pulse.train_ray.config import TrainConfig
from pulse.train_ray.job import run
from pulse.train_ray.synthetic import HR_CLASSES, heart_rate_rows, write_instruction_parquet

CLASSES = list(HR_CLASSES)


def answer_all(model, processor, rows: list[dict], batch_size: int = 16) -> list[str]:
    """Greedy answers to each row's question (left-padded batches)."""
    from PIL import Image

    processor.tokenizer.padding_side = "left"
    answers = []
    for start in range(0, len(rows), batch_size):
        chunk = rows[start : start + batch_size]
        prompts = [
            processor.apply_chat_template(
                to_messages(r["conversations"])[:1], add_generation_prompt=True, tokenize=False
            )
            for r in chunk
        ]
        images = [Image.open(_stdio.BytesIO(r["image"])).convert("RGB") for r in chunk]
        inputs = processor(images=images, text=prompts, return_tensors="pt", padding=True)
        with torch.no_grad():
            out = model.generate(**inputs, max_new_tokens=6, do_sample=False)
        answers += processor.batch_decode(out[:, inputs["input_ids"].shape[1] :], skip_special_tokens=True)
    return answers


def score(answers: list[str], rows: list[dict]) -> float:
    """Exact-match accuracy in [0, 1] (ECGBench's ``accuracy`` reports percent)."""
    gold = [r["conversations"][1]["value"] for r in rows]
    correct = [labels_in_text(a, CLASSES, "strict") == [g] for a, g in zip(answers, gold, strict=True)]
    return accuracy(correct) / 100


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--train", type=int, default=384)
    parser.add_argument("--test", type=int, default=90)
    parser.add_argument("--steps", type=int, default=120)
    parser.add_argument("--lr", type=float, default=2e-3)
    parser.add_argument("--strategy", default="ddp")
    args = parser.parse_args()
    work = tempfile.mkdtemp(prefix="pulse-learning-check-")
    write_instruction_parquet(heart_rate_rows(args.train, seed=0), f"{work}/train", shard_size=64)
    test_rows = heart_rate_rows(args.test, seed=12345)
    cfg = load_config(
        TrainConfig,
        "configs/train/tiny-cpu.yaml",
        [
            "name=learning-check",
            f"storage_path={work}/runs",
            f"data.train_path={work}/train",
            f"strategy={args.strategy}",
            f"max_steps={args.steps}",
            f"lr={args.lr}",
            "global_batch_size=16",
            "micro_batch_size=4",
            f"checkpoint_every={args.steps}",
            "warmup_ratio=0.05",
        ],
    )
    started = time.time()
    result = run(cfg)
    train_s = time.time() - started
    trained, processor = load_pretrained_dir(result.export_dir)
    untrained, _ = build_tiny_llava(LlavaBuildConfig(**cfg.model.build.model_dump()))
    untrained.eval()
    trained_answers = answer_all(trained, processor, test_rows)
    acc_trained = score(trained_answers, test_rows)
    acc_untrained = score(answer_all(untrained, processor, test_rows), test_rows)
    chance = 1 / len(CLASSES)
    print(
        f"examples: {list(zip(trained_answers[:6], [r['conversations'][1]['value'] for r in test_rows[:6]], strict=True))}"
    )
    print(
        f"learning check ({args.strategy}, {args.steps} steps, {args.train} train / {args.test} held-out strips, "
        f"train+export {train_s:.0f}s, total {time.time() - started:.0f}s)\n"
        f"  held-out accuracy: trained {acc_trained:.3f} | untrained {acc_untrained:.3f} | chance {chance:.3f}\n"
        f"  trained / chance = {acc_trained / chance:.2f}x  -> {'PASS' if acc_trained >= 2 * chance else 'FAIL'} (needs >= 2x)\n"
        f"  loss {result.metrics.get('first_loss', float('nan')):.3f} -> {result.metrics.get('final_loss', float('nan')):.3f}"
    )


if __name__ == "__main__":
    main()
