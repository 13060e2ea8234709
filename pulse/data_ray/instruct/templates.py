"""Template instructions for label-only sources (CODE-15%, CPSC 2018, G12EC, Chapman-Shaoxing, Ningbo).

Every question is close-ended or short-answer and phrased as ECGBench asks it, so the answers
score under the ECGBench rules: yes/no per label, "which of these classes" (codes joined by
``"; "``), NORM/ABNORMAL, 8-option MCQ answered with a letter, plus rhythm, rate and axis
questions read off the labels. Choices are seeded per record, so a rerun writes the same rows.
"""

from __future__ import annotations

import random
from typing import Any

from pulse.data_ray.instruct.prompts import fill, label_name, load_prompt_file
from pulse.data_ray.instruct.rows import conversation, instruction_row

LETTERS = "ABCDEFGH"


class TemplateBook:
    """A loaded template file with the lookups the generators need."""

    def __init__(self, path: str):
        self.spec = load_prompt_file(path)
        self.version = self.spec["version"]
        self.rhythm = set(self.spec.get("rhythm_labels", []))
        self.features = set(self.spec.get("feature_labels", []))
        self.overrides = dict(self.spec.get("name_overrides", {}))
        self.equivalent: dict[str, set[str]] = {}
        for group in self.spec.get("equivalent", []):
            for label in group:
                self.equivalent.setdefault(label, set()).update(group)

    def name(self, label: str) -> str:
        return label_name(label, self.overrides)

    def task_of(self, label: str) -> str:
        if label in self.rhythm:
            return "rhythm"
        return "feature" if label in self.features else "morphology"

    def blocked(self, labels: list[str]) -> set[str]:
        """Labels a negative may not name: the record's own and their equivalents."""
        out = set(labels)
        for label in labels:
            out |= self.equivalent.get(label, set())
        return out


def template_rows(
    record: dict[str, Any], book: TemplateBook, negatives: int = 2, options: int = 8, seed: int = 0
):
    """All template instructions of one record (an empty list when it has no usable labels)."""
    rng = random.Random(f"{seed}:{record['record_id']}")
    labels = sorted(set(record.get("labels_std") or []))
    generator = f"template:{book.version}"
    rows: list[dict[str, Any]] = []

    def add(key: str, task: str, qtype: str, question: str, answer: str) -> None:
        rows.append(
            instruction_row(
                record,
                key,
                task=task,
                qtype=qtype,
                generator=generator,
                conversations=conversation(question, answer),
            )
        )

    dataset = record.get("dataset")
    prompts = book.spec["yes_no"]["prompts"]
    for label in labels:
        add(
            f"yn:{label}",
            book.task_of(label),
            "close",
            fill(rng.choice(prompts), name=book.name(label)),
            "yes",
        )
    pool = [lab for lab in book.spec["mcq"]["pool"] if lab not in book.blocked(labels)]
    for label in rng.sample(pool, min(negatives, len(pool))) if labels else []:
        add(
            f"yn:{label}",
            book.task_of(label),
            "close",
            fill(rng.choice(prompts), name=book.name(label)),
            "no",
        )

    for set_name, spec in book.spec.get("class_sets", {}).items():
        if dataset not in spec["datasets"]:
            continue
        answer = class_set_answer(record, spec)
        if answer is None:
            continue
        class_list = ", ".join(f"{code}({name})" for code, name in spec["classes"].items())
        add(
            f"classes:{set_name}",
            spec["task"],
            "close",
            fill(rng.choice(spec["prompts"]), class_list=class_list),
            answer,
        )

    normal = book.spec.get("normal_abnormal")
    if normal and dataset in normal["datasets"] and labels:
        is_normal = set(labels) <= set(normal["normal_labels"])
        add(
            "normal",
            "morphology",
            "close",
            rng.choice(normal["prompts"]),
            "NORM" if is_normal else "ABNORMAL",
        )

    mcq = book.spec.get("mcq")
    if mcq and dataset in mcq["datasets"] and labels:
        question, letter = mcq_question(labels, pool, book, rng, options)
        gold = labels[0] if len(labels) == 1 else None
        task = book.task_of(gold) if gold else "morphology"
        add("mcq", task, "mcq", fill(rng.choice(mcq["prompts"]), options=question), letter)

    rows.extend(_rhythm_rows(record, labels, book, rng, add) or [])
    return rows


def class_set_answer(record: dict[str, Any], spec: dict[str, Any]) -> str | None:
    """Class codes of ``record`` in a class set, joined by ``"; "``; None when the set says nothing."""
    if spec.get("column"):
        present = [c for c in record.get(spec["column"]) or [] if c in spec["classes"]]
    else:
        mapping = spec.get("from_std", {})
        present = [mapping[lab] for lab in record.get("labels_std") or [] if lab in mapping]
    codes = [code for code in spec["classes"] if code in set(present)]
    if codes:
        return "; ".join(codes)
    return spec.get("empty_answer")


def mcq_question(
    labels: list[str], pool: list[str], book: TemplateBook, rng: random.Random, options: int = 8
) -> tuple[str, str]:
    """An ``options``-way MCQ: one of the record's labels plus seeded negatives; returns (text, letter)."""
    gold = rng.choice(labels)
    negatives = rng.sample(pool, min(options - 1, len(pool)))
    choices = [*negatives, gold]
    rng.shuffle(choices)
    lines = [
        f"{LETTERS[i]}. {book.name(lab)[:1].upper()}{book.name(lab)[1:]}" for i, lab in enumerate(choices)
    ]
    return "\n".join(lines), LETTERS[choices.index(gold)]


def category_of(labels: list[str], categories: dict[str, list[str]]) -> str | None:
    """The single category whose labels occur; None when none or several do."""
    hits = [name for name, members in categories.items() if set(members) & set(labels)]
    return hits[0] if len(hits) == 1 else None


def _rhythm_rows(record, labels, book: TemplateBook, rng: random.Random, add) -> None:
    rhythm = [lab for lab in labels if lab in book.rhythm]
    spec = book.spec.get("rhythm")
    if spec and len(rhythm) == 1:
        name = book.name(rhythm[0])
        for qtype in ("open", "fill"):
            prompt = rng.choice(spec[f"{qtype}_prompts"])
            add(f"rhythm:{qtype}", "rhythm", qtype, prompt, fill(spec[f"{qtype}_answer"], name=name))
    rate = book.spec.get("rate")
    category = category_of(labels, rate["categories"]) if rate else None
    if category:
        add("rate", "feature", "close", rng.choice(rate["prompts"]), category)
    axis = book.spec.get("axis")
    category = category_of(labels, axis["categories"]) if axis else None
    if category:
        add("axis", "feature", "close", rng.choice(axis["prompts"]), fill(axis["answer"], category=category))
