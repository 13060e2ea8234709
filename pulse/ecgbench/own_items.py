"""Benchmark items from pulse's own ingested records and rendered images, the way ECGBench was built.

The paper repurposed labelled datasets into questions: close-ended classification over the label
list when a dataset has fewer than 10 labels (as ptb-test and cpsc-test), an 8-option multiple
choice question (gold + 7 seeded random negatives, as csn/g12) otherwise. PTB-XL uses its 5
diagnostic superclasses; every other dataset its shared-vocabulary labels (``labels_std``).
Users get a benchmark on their own data and held-out splits without the HF download.

``write_items`` saves them in the converted ECGBench layout, so ``pulse ecgbench run|score
--subset own-<dataset> --gold <folder>`` read them like any subset::

    <folder>/own-<dataset>.json     [{id, subset, image: "images/own-<dataset>/<id>.png", conversations}]
    <folder>/images/own-<dataset>/  the rendered images (paths relative to the folder)
    <folder>/subsets.json           {own-<dataset>: {kind, labels, size, ...}}: how each subset is scored
"""

from __future__ import annotations

import json
import random
import re
from collections import defaultdict

import pyarrow.parquet as pq

from pulse import io
from pulse.ecgbench.subsets import MCQ_LETTERS, OWN_PREFIX, Subset

MANIFEST = "subsets.json"
CLOSE_ENDED_MAX_LABELS = 9
MCQ_OPTIONS = 8
RECORD_COLUMNS = ["record_id", "dataset", "split", "labels_std", "superclasses", "error"]
IMAGE_COLUMNS = ["record_id", "image", "image_format", "error"]

CLOSE_PROMPT = (
    "You are provided with an ECG image. Please classify the ECG image into the following diagnostic "
    "statement classes:\n{labels}\nDirectly output the class name and separate with a semicolon."
)
MCQ_PROMPT = (
    "Which of the following diagnoses does this ECG image show?\n{options}\n"
    "Answer with the option's letter from the given choices directly."
)


def _read(folder: str, sub: str, columns: list[str], storage: io.StorageOptions | None) -> list[dict]:
    fs, inner = io.filesystem(io.join(folder, sub), storage)
    return pq.read_table(inner, filesystem=fs, columns=columns).to_pylist()


def record_labels(record: dict) -> list[str]:
    """PTB-XL: diagnostic superclasses; other datasets: shared-vocabulary labels."""
    if record["dataset"] == "ptbxl":
        return list(record.get("superclasses") or [])
    return list(record.get("labels_std") or [])


def own_subset(dataset: str, label_space: list[str], size: int) -> Subset:
    """The Subset that scores a dataset's own items (multi-label if < 10 labels, else 8-option MCQ)."""
    if len(label_space) <= CLOSE_ENDED_MAX_LABELS:
        return Subset(f"{OWN_PREFIX}{dataset}", dataset, size, "multilabel", False, tuple(label_space))
    return Subset(f"{OWN_PREFIX}{dataset}", dataset, size, "mcq", False, tuple(label_space), MCQ_LETTERS)


def _mcq_item(record_id: str, labels: list[str], label_space: list[str], seed: int) -> tuple[str, str]:
    rng = random.Random(f"{seed}:{record_id}")
    gold = rng.choice(sorted(labels))
    pool = sorted(set(label_space) - set(labels))
    negatives = rng.sample(pool, min(MCQ_OPTIONS - 1, len(pool)))
    options = [gold, *negatives]
    rng.shuffle(options)
    letter = MCQ_LETTERS[options.index(gold)]
    listing = "\n".join(f"{MCQ_LETTERS[i]}. {label}" for i, label in enumerate(options))
    return MCQ_PROMPT.format(options=listing), f"{letter}. {gold}"


def build_items(
    records_dir: str,
    images_dir: str,
    split: str = "test",
    seed: int = 0,
    storage: io.StorageOptions | None = None,
) -> tuple[list[dict], dict[str, Subset]]:
    """Items (normalised like ``load.load_subset``) and their subsets, one subset per dataset.

    Args:
        records_dir: ingest output (``<records_dir>/records/*.parquet``, ``RECORD_SCHEMA``).
        images_dir: render output (``<images_dir>/images/*.parquet``, ``IMAGE_SCHEMA``).
        split: records of this split become items; label spaces come from all splits.
        seed: negatives and option order are drawn per record from ``(seed, record_id)``.
        storage: S3 options.

    Returns:
        ``(items, subsets)``; each item has ``id``, ``subset``, ``image`` bytes, ``question``,
        ``answer``, ``turns``; records without labels, without an image, or with an error are skipped.
    """
    records = [r for r in _read(records_dir, "records", RECORD_COLUMNS, storage) if not r["error"]]
    images: dict[str, bytes] = {}
    for row in sorted(_read(images_dir, "images", IMAGE_COLUMNS, storage), key=lambda r: r["record_id"]):
        if not row["error"] and row["image"] and row["record_id"] not in images:
            images[row["record_id"]] = row["image"]
    spaces: dict[str, set[str]] = defaultdict(set)
    for record in records:
        spaces[record["dataset"]].update(record_labels(record))
    items: list[dict] = []
    for record in sorted(records, key=lambda r: r["record_id"]):
        labels = record_labels(record)
        if record["split"] != split or not labels or record["record_id"] not in images:
            continue
        space = sorted(spaces[record["dataset"]])
        if len(space) <= CLOSE_ENDED_MAX_LABELS:
            question, answer = CLOSE_PROMPT.format(labels=", ".join(space)), "; ".join(sorted(labels))
        else:
            question, answer = _mcq_item(record["record_id"], labels, space, seed)
        items.append(
            {
                "id": record["record_id"],
                "subset": f"own-{record['dataset']}",
                "image": images[record["record_id"]],
                "image_path": None,
                "question": question,
                "answer": answer,
                "turns": [{"question": question, "answer": answer}],
            }
        )
    counts: dict[str, int] = defaultdict(int)
    for item in items:
        counts[item["subset"]] += 1
    subsets = {
        f"own-{ds}": own_subset(ds, sorted(space), counts[f"own-{ds}"])
        for ds, space in spaces.items()
        if counts[f"own-{ds}"]
    }
    return items, subsets


def _image_name(record_id: str, image: bytes, taken: set[str]) -> str:
    stem = re.sub(r"[^\w.-]", "_", record_id)
    suffix = ".jpg" if image.startswith(b"\xff\xd8\xff") else ".png"
    name, n = stem + suffix, 1
    while name in taken:  # ids that differ only in characters a file name cannot hold
        name, n = f"{stem}-{n}{suffix}", n + 1
    taken.add(name)
    return name


def check_out_dir(out_dir: str) -> None:
    """Items go to a folder; a ``.json``/``.jsonl`` name (the old single-file output) is refused."""
    if str(out_dir).endswith((".json", ".jsonl")):
        raise ValueError(
            f"--out {out_dir}: give a folder; it gets one <subset>.json per dataset, images/ and {MANIFEST}"
        )


def write_items(
    items: list[dict], subsets: dict[str, Subset], out_dir: str, storage: io.StorageOptions | None = None
) -> dict[str, str]:
    """Write items, their images and ``subsets.json`` under ``out_dir``; returns ``{subset: json path}``."""
    check_out_dir(out_dir)
    paths: dict[str, str] = {}
    for name in sorted(subsets):
        rows, taken = [], set()
        for item in (i for i in items if i["subset"] == name):
            relative = f"images/{name}/{_image_name(item['id'], item['image'], taken)}"
            io.write_bytes(io.join(out_dir, relative), item["image"], storage)
            conversations: list[dict] = []
            for i, turn in enumerate(item["turns"]):
                question = ("<image>\n" if i == 0 else "") + turn["question"]
                conversations += [
                    {"from": "human", "value": question},
                    {"from": "gpt", "value": turn["answer"]},
                ]
            rows.append({"id": item["id"], "subset": name, "image": relative, "conversations": conversations})
        paths[name] = io.join(out_dir, f"{name}.json")
        io.write_text(paths[name], json.dumps(rows, indent=1, ensure_ascii=False), storage)
    manifest = {
        name: {
            "title": s.title,
            "size": s.size,
            "kind": s.kind,
            "labels": list(s.labels),
            "fallback_choices": list(s.fallback_choices),
        }
        for name, s in sorted(subsets.items())
    }
    io.write_text(io.join(out_dir, MANIFEST), json.dumps(manifest, indent=1), storage)
    return paths


def read_manifest(folder: str, storage: io.StorageOptions | None = None) -> dict[str, Subset]:
    """The own subsets described by ``<folder>/subsets.json`` (written by ``write_items``)."""
    path = io.join(folder, MANIFEST)
    if not io.exists(path, storage):
        raise FileNotFoundError(f"{path}: no {MANIFEST}; build own items with `pulse ecgbench items`")
    data = json.loads(io.read_text(path, storage))
    return {
        name: Subset(
            name,
            spec["title"],
            int(spec["size"]),
            spec["kind"],
            False,
            tuple(spec["labels"]),
            tuple(spec["fallback_choices"]),
        )
        for name, spec in data.items()
    }
