"""The demo's proof of learning: held-out items answered by the trained and the untrained model.

The demo adds a task whose answer is fully determined by the image, the heart-rate class of a
synthetic rhythm strip (``pulse.train_ray.synthetic``), handed to ``pulse train`` as a user's
LLaVA JSON (array + image folder) mixed with the ``pulse build`` output. Held-out strips (another
seed) and the held-out ECGBench-style items of the bundled records are then answered greedily,
in-process, by the exported model and by the same architecture untrained, and scored with the
ECGBench rules beside chance.
"""

from __future__ import annotations

import io as _stdio
import json
import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pulse import io
from pulse.ecgbench.extract import labels_in_text
from pulse.train_ray.synthetic import HR_CLASSES, heart_rate_rows

if TYPE_CHECKING:
    from pulse.demo import DemoBench, DemoLearning

HR_TASK = "heart-rate class (synthetic strips)"


def write_heart_rate_llava(folder: str, n: int, seed: int) -> tuple[str, str]:
    """``n`` heart-rate rows as a LLaVA JSON array + image folder; returns (json path, image folder)."""
    root = Path(folder)
    (root / "images").mkdir(parents=True, exist_ok=True)
    records = []
    for row in heart_rate_rows(n, seed=seed):
        name = f"{row['id']}.png"
        (root / "images" / name).write_bytes(row["image"])
        records.append(
            {
                "id": row["id"],
                "image": name,
                "conversations": row["conversations"],
                "metadata": {"subtask": "rhythm", "type": "close-ended"},
                "source": "synthetic-heart-rate",
            }
        )
    path = root / "heart_rate.json"
    path.write_text(json.dumps(records))
    return str(path), str(root / "images")


def heart_rate_items(n: int, seed: int) -> list[dict[str, Any]]:
    """Held-out strips as items ``{id, image, question, answer}``."""
    return [
        {
            "id": r["id"],
            "image": r["image"],
            "question": r["conversations"][0]["value"].removeprefix("<image>\n"),
            "answer": r["conversations"][1]["value"],
        }
        for r in heart_rate_rows(n, seed=seed)
    ]


def answer_items(model, processor, items: list[dict], max_new_tokens: int, batch_size: int = 8) -> list[str]:
    """Greedy answers (left-padded batches), with the chat template serving uses."""
    import torch
    from PIL import Image

    processor.tokenizer.padding_side = "left"
    answers: list[str] = []
    for start in range(0, len(items), batch_size):
        chunk = items[start : start + batch_size]
        prompts = [
            processor.apply_chat_template(
                [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": it["question"]}]}],
                add_generation_prompt=True,
                tokenize=False,
            )
            for it in chunk
        ]
        images = [Image.open(_stdio.BytesIO(it["image"])).convert("RGB") for it in chunk]
        inputs = processor(images=images, text=prompts, return_tensors="pt", padding=True)
        with torch.no_grad():
            out = model.generate(**inputs, max_new_tokens=max_new_tokens, do_sample=False)
        answers += processor.batch_decode(out[:, inputs["input_ids"].shape[1] :], skip_special_tokens=True)
    return answers


def heart_rate_accuracy(answers: list[str], items: list[dict]) -> float:
    """Percent of answers whose only class word is the gold class (ECGBench strict extraction)."""
    classes = list(HR_CLASSES)
    correct = [
        labels_in_text(a, classes, "strict") == [it["answer"]] for a, it in zip(answers, items, strict=True)
    ]
    return 100.0 * sum(correct) / len(correct) if correct else math.nan


def chance(result: dict[str, Any], n_options: int | None) -> tuple[str, float | None]:
    """The headline metric of a scored subset and its chance level."""
    if "accuracy" in result:
        return "accuracy", (100.0 / n_options if n_options else None)
    return "AUC", 50.0  # ECGBench's AUC on hard 0/1 predictions is balanced accuracy: 50 = chance


def _cell(value: float | None) -> str:
    if value is None:
        return "-"
    return "nan*" if isinstance(value, float) and math.isnan(value) else f"{value:.1f}"


def print_learning_table(rows: list[dict[str, Any]]) -> None:
    """``rows``: {task, metric, n, trained, untrained, chance}; marks and explains any nan."""
    print("\n| held-out task | metric | n | trained | untrained | chance |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        cells = " | ".join(_cell(r[k]) for k in ("trained", "untrained", "chance"))
        print(f"| {r['task']} | {r['metric']} | {r['n']} | {cells} |")
    if any(isinstance(r[k], float) and math.isnan(r[k]) for r in rows for k in ("trained", "untrained")):
        print(
            "* nan: ECGBench's AUC averages roc_auc per label, and a label whose gold value is the same "
            "for every held-out item (only positives or only negatives in this small split) has no AUC; "
            "the published scorer then returns nan (pulse_reference.md §5)."
        )
    print(
        f"learned (trained beats chance and the untrained model): {', '.join(learned_tasks(rows)) or 'none'}"
    )


def learned_tasks(rows: list[dict[str, Any]]) -> list[str]:
    """Tasks where the trained model beats both chance and the untrained model."""
    return [
        r["task"]
        for r in rows
        if r["chance"] is not None
        and _above(r["trained"], r["chance"])
        and (r["untrained"] is None or math.isnan(r["untrained"]) or _above(r["trained"], r["untrained"]))
    ]


def _above(value: float | None, level: float) -> bool:
    return value is not None and not math.isnan(value) and value > level


def held_out_items(bench: DemoBench, out: str) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """The demo's ECGBench-style items (at most ``bench.max_items``) and their subsets, from the
    ingest and render outputs under ``out``; the endpoint benchmark and the learning check share them."""
    from pulse.ecgbench.own_items import build_items

    items, subsets = build_items(io.join(out, "ingest"), io.join(out, "render"), split=bench.split)
    return (items[: bench.max_items] if bench.max_items else items), subsets


def learning_table(
    learning: DemoLearning, bench: DemoBench, held_out: tuple, out: str, export_dir: str, build_config
) -> list[dict[str, Any]]:
    """``held_out`` items (:func:`held_out_items`) answered in-process by the trained export and by the
    untrained model, beside held-out heart-rate strips; also written to ``<out>/learning.json``."""
    from pulse.ecgbench.score import score_items
    from pulse.models.loader import load_pretrained_dir
    from pulse.models.tiny_llava import build_tiny_llava

    trained, processor = load_pretrained_dir(export_dir)
    untrained, _ = build_tiny_llava(build_config)
    models = {"trained": trained.eval(), "untrained": untrained.eval()}
    strips = heart_rate_items(learning.heldout_rows, learning.heldout_seed)
    rows = [{"task": HR_TASK, "metric": "accuracy", "n": len(strips), "chance": 100.0 / 3}]
    for name, model in models.items():
        rows[0][name] = heart_rate_accuracy(answer_items(model, processor, strips, 6), strips)
    items, subsets = held_out
    answers = {name: answer_items(m, processor, items, bench.max_tokens) for name, m in models.items()}
    for subset_name, subset in sorted(subsets.items()):
        gold = [it for it in items if it["subset"] == subset_name]
        if not gold:
            continue
        row: dict[str, Any] = {"task": f"{subset_name} (bundled records)", "n": len(gold)}
        for name in models:
            preds = [{"id": it["id"], "text": a} for it, a in zip(items, answers[name], strict=True)]
            preds = [p for p in preds if p["id"] in {g["id"] for g in gold}]
            result = score_items(subset, gold, preds, mode=bench.mode, allow_partial=True)
            n_options = len(subset.fallback_choices or ()) if subset.kind == "mcq" else None
            row["metric"], row["chance"] = chance(result, n_options)
            row[name] = result.get("accuracy", result.get("auc"))
        rows.append(row)
    io.write_text(io.join(out, "learning.json"), json.dumps(rows, indent=2))
    return rows
