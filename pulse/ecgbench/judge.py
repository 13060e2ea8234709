"""LLM judges for report generation and ECG Arena, through any OpenAI-compatible endpoint.

As in the paper: one user message built from a rubric, temperature 0, JSON output, each aspect
scored 0–10, item score = mean of its aspect scores ×10, subset score = mean over items. Arena
judges turns 1–2 only. Unlike the published scripts, results are keyed by the full item id (all
500 report ids end in "-0"), and a reply that is not valid rubric JSON is retried, then recorded as
an ``invalid_judge_json`` error row (counted, never silently dropped). Judgements are appended to
``<out_dir>/judgements.jsonl``; a rerun skips items already judged without error.
"""

from __future__ import annotations

import json
import math
import time
from pathlib import Path

import yaml
from pydantic import Field

from pulse import io
from pulse.config import StrictModel
from pulse.ecgbench.metrics import judge_item_score
from pulse.ecgbench.runner import EndpointConfig
from pulse.summary import StageSummary

DEFAULT_RUBRICS = Path(__file__).resolve().parents[1] / "configs" / "ecgbench" / "judge_rubrics.yaml"
JUDGE_KIND = {"ptb-test-report": "report", "arena": "arena"}


class Rubric(StrictModel):
    """One judge prompt; ``{ground_truth}`` and ``{response}`` are replaced verbatim."""

    template: str
    required_keys: list[str] = Field(default_factory=list)
    """Aspects that must carry a Score; empty: every top-level key counts (the report scorer)."""
    judged_turns: int = Field(1, ge=1)
    truth_turn: str = "{answer}"
    response_turn: str = "{answer}"


class JudgeRubrics(StrictModel):
    report: Rubric
    arena: Rubric


def load_rubrics(path: str | None = None) -> JudgeRubrics:
    """Rubrics from a YAML file (default: the shipped paper rubrics)."""
    text = io.read_text(path) if path else DEFAULT_RUBRICS.read_text()
    return JudgeRubrics.model_validate(yaml.safe_load(text))


def _turn_block(rubric: Rubric, pattern: str, turns: list[dict]) -> str:
    picked = turns[: rubric.judged_turns]
    return "\n\n".join(
        pattern.replace("{question}", t["question"]).replace("{answer}", str(t["answer"])) for t in picked
    )


def judge_prompt(rubric: Rubric, gold: dict, prediction: dict) -> str:
    """The judge's user message for one item (arena: question/answer blocks of the judged turns)."""
    if rubric.judged_turns > 1 or len(gold["turns"]) > 1:
        predicted = prediction.get("predict_convs") or [
            {"question": gold["question"], "answer": prediction["text"]}
        ]
        truth = _turn_block(rubric, rubric.truth_turn, gold["turns"])
        response = _turn_block(rubric, rubric.response_turn, predicted)
    else:
        truth, response = str(gold["answer"]), prediction["text"]
    return rubric.template.replace("{ground_truth}", truth).replace("{response}", response)


def parse_judgement(text: str | None, required_keys: list[str]) -> tuple[dict[str, float] | None, str | None]:
    """``({aspect: score}, None)`` for valid rubric JSON, else ``(None, reason)``."""
    try:
        data = json.loads(text or "")
    except json.JSONDecodeError as exc:
        return None, f"invalid_judge_json: {exc.msg} at char {exc.pos}"
    if not isinstance(data, dict) or not data:
        return None, "invalid_judge_json: not a JSON object"
    missing = [k for k in required_keys if k not in data]
    if missing:
        return None, f"invalid_judge_json: missing aspects {missing}"
    scores: dict[str, float] = {}
    for key in required_keys or list(data):
        entry = data[key]
        raw = entry.get("Score", entry.get("score")) if isinstance(entry, dict) else None
        if isinstance(raw, bool) or not isinstance(raw, int | float) or not 0 <= raw <= 10:
            return None, f"invalid_judge_json: {key}.Score is {raw!r}, not a number in 0-10"
        scores[key] = float(raw)
    return scores, None


def _read_judgements(path: str, storage: io.StorageOptions | None) -> dict[str, dict]:
    if not io.exists(path, storage):
        return {}
    rows = [json.loads(line) for line in io.read_text(path, storage).splitlines() if line.strip()]
    return {r["id"]: r for r in rows}


def judge_items(
    subset: str,
    gold_items: list[dict],
    predictions: list[dict],
    judge: EndpointConfig,
    out_dir: str,
    rubrics: JudgeRubrics | None = None,
    max_attempts: int = 3,
    storage: io.StorageOptions | None = None,
) -> dict:
    """Judge every answered item; returns ``{"subset", "n", "<report|arena>_score", "judge_errors", ...}``."""
    from pulse.llm import ChatRequest, SamplingParams
    from pulse.llm.http_engine import generate_http

    started = time.time()
    kind = JUDGE_KIND.get(subset)
    if kind is None:
        raise ValueError(f"{subset} is rule-scored; judges exist for {sorted(JUDGE_KIND)}")
    rubric = getattr(rubrics or load_rubrics(), kind)
    gold_by_id = {g["id"]: g for g in gold_items}
    out_path = io.join(out_dir, "judgements.jsonl")
    records = {k: v for k, v in _read_judgements(out_path, storage).items() if not v.get("error")}
    todo = {
        p["id"]: judge_prompt(rubric, gold_by_id[p["id"]], p) for p in predictions if p["id"] in gold_by_id
    }
    todo = {k: v for k, v in todo.items() if k not in records}
    engine = judge.engine().model_copy(update={"extra_body": {"response_format": {"type": "json_object"}}})
    params = SamplingParams(max_tokens=judge.max_tokens, temperature=0.0)
    pending = dict(todo)
    for attempt in range(1, max_attempts + 1):
        if not pending:
            break
        ids = list(pending)
        results = generate_http(
            engine, [ChatRequest([{"role": "user", "content": pending[i]}], params) for i in ids]
        )
        for item_id, result in zip(ids, results, strict=True):
            scores, error = parse_judgement(result.text, rubric.required_keys)
            error = result.error or error
            records[item_id] = {
                "id": item_id,
                "scores": scores,
                "score": judge_item_score(list(scores.values())) if scores else None,
                "raw": result.text,
                "attempts": attempt,
                "error": error,
            }
            if error is None:
                pending.pop(item_id)
    ordered = [records[g["id"]] for g in gold_items if g["id"] in records]
    io.write_text(out_path, "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in ordered), storage)
    errors = [r for r in ordered if r["error"]]
    if errors:
        io.write_text(
            io.join(out_dir, "errors", "judgements.jsonl"),
            "".join(json.dumps(r) + "\n" for r in errors),
            storage,
        )
    scored = [r["score"] for r in ordered if r["score"] is not None]
    key = f"{kind}_score"
    summary = StageSummary.from_errors(
        f"ecgbench judge {subset}",
        [r["error"] for r in ordered],
        outputs={"judgements": out_path},
        seconds=time.time() - started,
    )
    summary.print()
    return {
        "subset": subset,
        "n": len(scored),
        key: sum(scored) / len(scored) if scored else math.nan,
        "judge_errors": len(errors),
        "judge_model": judge.model,
    }
