"""Rule-based scoring of the 7 ECGBench subsets with fixed answers, in paper or strict mode.

Predictions are JSONL in the PULSE layout (``question_id``, ``prompt``, ``text``, ...) or the
baseline harness layout (``id``, ``response``); both are read as the published scorer reads them.
Paper mode iterates predictions in file order, so the seeded random fallback for unparseable MCQ
answers (seed 42) is bit-exact for the same file.
"""

from __future__ import annotations

import json
import random
from collections.abc import Sequence

from pulse import io
from pulse.ecgbench import extract, metrics
from pulse.ecgbench.subsets import Subset, get_subset

RANDOM_SEED = 42


class MissingPredictionsError(ValueError):
    """Gold items without a prediction (allowed only with ``allow_partial``)."""


def normalise_prediction(row: dict) -> dict:
    """``{id, text, prompt, error, ...}`` from a PULSE-layout or baseline-layout answer row."""
    text = row.get("text")
    if text is None:
        text = row.get("response")
    metadata = row.get("metadata") or {}
    return {
        **row,
        "id": str(row.get("question_id", row.get("id"))),
        "text": "" if text is None else str(text),
        "prompt": row.get("prompt"),
        "error": row.get("error") or metadata.get("error"),
    }


def read_predictions(path: str, storage: io.StorageOptions | None = None) -> list[dict]:
    """Predictions of a JSONL file, in file order (blank lines skipped)."""
    lines = io.read_text(path, storage).splitlines()
    return [normalise_prediction(json.loads(line)) for line in lines if line.strip()]


def _match(subset: Subset, gold_items: Sequence[dict], predictions: Sequence[dict], allow_partial: bool):
    gold_by_id = {item["id"]: item for item in gold_items}
    pairs, seen, unknown = [], set(), 0
    for pred in predictions:
        if pred["id"] not in gold_by_id:
            unknown += 1
        elif pred["id"] not in seen:
            seen.add(pred["id"])
            pairs.append((gold_by_id[pred["id"]], pred))
    missing = [item["id"] for item in gold_items if item["id"] not in seen]
    if missing and not allow_partial:
        raise MissingPredictionsError(
            f"{subset.name}: {len(missing)} of {len(gold_items)} gold items have no prediction "
            f"(first: {missing[:3]}); pass --allow-partial to score the answered ones"
        )
    return pairs, missing, unknown


def _detail(gold: dict, pred: dict, extracted, correct: bool | None, **extra) -> dict:
    """One per-item answer row: the prediction, its gold answer, what the scorer extracted."""
    return {
        "question_id": pred["id"],
        "prompt": pred.get("prompt") or gold.get("question"),
        "text": pred["text"],
        "gold": gold["answer"],
        "extracted": extracted,
        "correct": correct,
        **extra,
        "error": pred.get("error"),
    }


def _multilabel(
    subset: Subset, pairs: list[tuple[dict, dict]], mode: extract.Mode, details: list | None
) -> dict:
    golds, preds = [], []
    for gold, pred in pairs:
        if subset.name == "code15-test":
            golds.append(extract.code15_gold_labels(str(gold["answer"]), subset.labels, mode))
            preds.append(extract.code15_pred_labels(pred["text"], subset.labels, mode))
        else:
            golds.append(extract.labels_in_text(str(gold["answer"]), subset.labels, mode))
            preds.append(extract.labels_in_text(pred["text"], subset.labels, mode))
    if details is not None:
        details.extend(
            _detail(g, p, labels, set(labels) == set(gold_labels), gold_labels=gold_labels)
            for (g, p), labels, gold_labels in zip(pairs, preds, golds, strict=True)
        )
    if mode == "paper":
        return metrics.multilabel_paper(preds, golds)
    result = metrics.multilabel_strict(preds, golds, subset.strict_label_space)
    result["unparseable"] = sum(1 for p in preds if not p)
    return result


def _ecgqa(pairs: list[tuple[dict, dict]], mode: extract.Mode, details: list | None) -> dict:
    correct, unparseable = [], 0
    for gold, pred in pairs:
        candidates = extract.ecgqa_candidates(pred.get("prompt") or gold["question"], mode)
        chosen = extract.ecgqa_predicted(pred["text"], candidates, mode)
        unparseable += not chosen
        gold_list = gold["answer"] if isinstance(gold["answer"], list) else [gold["answer"]]
        correct.append(extract.ecgqa_correct(chosen, gold_list, mode))
        if details is not None:
            details.append(_detail(gold, pred, chosen, correct[-1]))
    result = {"accuracy": metrics.accuracy(correct)}
    if mode == "strict":
        result["unparseable"] = unparseable
    return result


def mcq_gold(subset: Subset, value: str, mode: extract.Mode) -> str | None:
    """CSN/G12 gold is the value's first character; MMMU gold is the whole value (strict: its letter)."""
    if subset.name != "mmmu-ecg":
        return value[:1]
    return value if mode == "paper" else extract.extract_choice_strict(value, subset.fallback_choices)


def _mcq(subset: Subset, pairs: list[tuple[dict, dict]], mode: extract.Mode, details: list | None) -> dict:
    # The published scorer seeds once at import and is run once per subset: a fresh seed per subset,
    # drawn in item order, reproduces its random fallback bit for bit.
    rng = random.Random(RANDOM_SEED)
    correct, unparsed = [], 0
    for gold, pred in pairs:
        choice = extract.extract_choice(pred["text"], mode, subset.fallback_choices)
        guessed = choice is None and mode == "paper"
        if choice is None:
            unparsed += 1
            if mode == "paper":
                choice = rng.choice(list(subset.fallback_choices))
        correct.append(choice is not None and choice == mcq_gold(subset, str(gold["answer"]), mode))
        if details is not None:
            details.append(
                _detail(gold, pred, choice, correct[-1], **({"random_fallback": True} if guessed else {}))
            )
    key = "random_fallback" if mode == "paper" else "unparseable"
    return {"accuracy": metrics.accuracy(correct), key: unparsed}


def score_items(
    subset: str | Subset,
    gold_items: Sequence[dict],
    predictions: Sequence[dict],
    mode: str = "paper",
    allow_partial: bool = False,
    details: list | None = None,
) -> dict:
    """Score predictions against normalised gold items (``pulse.ecgbench.load``).

    Args:
        subset: ECGBench config name (one of the 7 rule-scored subsets) or a ``Subset`` (own items).
        gold_items: items from ``load_subset`` or ``own_items.build_items``.
        predictions: rows with ``id``/``question_id`` and ``text``/``response`` (raw or normalised).
        mode: ``paper`` (the published scorer, quirks included) or ``strict`` (fixed).
        allow_partial: score only the answered items instead of failing on missing predictions.
        details: a list to extend with one answer row per scored item (``question_id``, ``text``,
            ``gold``, ``extracted``, ``correct``, ``error``; what ``answers.jsonl`` holds).

    Returns:
        ``{"subset", "n", <metrics ×100>, "mode", ...counts}``; multi-label subsets give ``auc``, ``f1``,
        ``hamming_loss``; the others ``accuracy``. Strict mode adds ``unparseable``, paper-mode MCQ
        ``random_fallback``.
    """
    spec = subset if isinstance(subset, Subset) else get_subset(subset)
    checked = extract.check_mode(mode)
    if spec.kind in ("report", "arena"):
        raise ValueError(
            f"{spec.name} is scored by an LLM judge: use `pulse ecgbench judge --subset {spec.name}`"
        )
    rows = [normalise_prediction(p) for p in predictions]
    pairs, missing, unknown = _match(spec, gold_items, rows, allow_partial)
    if spec.kind == "multilabel":
        body = _multilabel(spec, pairs, checked, details)
    elif spec.kind == "ecgqa":
        body = _ecgqa(pairs, checked, details)
    else:
        body = _mcq(spec, pairs, checked, details)
    result: dict = {"subset": spec.name, "n": len(pairs)}
    result.update({k: body.pop(k) for k in spec.metric_keys})
    result["mode"] = checked
    result.update(body)
    result["error_rows"] = sum(1 for _, pred in pairs if pred.get("error"))
    if missing:
        result["missing"] = len(missing)
    if unknown:
        result["unknown_ids"] = unknown
    return result
