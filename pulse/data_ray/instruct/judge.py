"""LLM judge: JSON scores 0-5 on relevance, clarity and answerability, with reasons.

:class:`JudgePrompts` holds the pure halves; :func:`parse_verdict` reads the judge's JSON (also
when wrapped in prose or code fences). :func:`judge` runs the engine, asks again (sampling, so
the answer can change) for rows whose output was malformed, up to ``max_retries`` times, then
records the rest as ``judge_malformed`` error rows. The row's ``judge_score`` is the mean of
the three scores; below ``threshold`` it becomes a ``judge_below_threshold`` error row, and a
verdict of ``"consistent": false`` a ``judge_unfaithful`` one.
"""

from __future__ import annotations

import json
import re
from typing import Any

from pulse.data_ray.instruct.config import JudgeConfig
from pulse.data_ray.instruct.prompts import fill, label_name, load_prompt_file
from pulse.data_ray.instruct.rows import IMAGE_TOKEN, ROW_COLUMNS, with_error

CRITERIA = ("relevance", "clarity", "answerability")
MALFORMED = "judge_malformed"
JSON_OBJECT = re.compile(r"\{.*\}", re.S)


class MalformedVerdict(ValueError):
    """The judge's output is not the JSON asked for."""


def parse_verdict(text: str | None) -> tuple[float, str, bool | None]:
    """(mean score, reasons, consistent) from the judge's output; raises :class:`MalformedVerdict`."""
    match = JSON_OBJECT.search(text or "")
    if not match:
        raise MalformedVerdict("no JSON object in the output")
    try:
        data = json.loads(match.group(0))
    except json.JSONDecodeError as exc:
        raise MalformedVerdict(f"invalid JSON ({exc.msg})") from None
    if not isinstance(data, dict):
        raise MalformedVerdict("the JSON is not an object")
    scores, reasons = [], []
    lowered = {str(k).lower(): v for k, v in data.items()}
    for name in CRITERIA:
        if name not in lowered:
            raise MalformedVerdict(f"missing {name!r}")
        entry = lowered[name]
        score = entry.get("score") if isinstance(entry, dict) else entry
        if isinstance(score, str):
            try:
                score = float(score)
            except ValueError:
                raise MalformedVerdict(f"{name} score {score!r} is not a number") from None
        if isinstance(score, bool) or not isinstance(score, int | float) or not 0 <= score <= 5:
            raise MalformedVerdict(f"{name} score {score!r} is not a number in 0-5")
        scores.append(float(score))
        if isinstance(entry, dict) and entry.get("reason"):
            reasons.append(f"{name}: {entry['reason']}")
    consistent = lowered.get("consistent")
    consistent = consistent if isinstance(consistent, bool) else None
    return sum(scores) / len(scores), "; ".join(reasons), consistent


def generator_kind(row: dict[str, Any]) -> str:
    """Which generator made a row, in the vocabulary of ``routes`` (templates, synthesis, ...)."""
    if row.get("request") == "multi_turn":
        return "multi_turn"
    if row.get("request"):
        return "synthesis"
    base = (row.get("generator") or "").split(":", 1)[0]
    return "templates" if base == "template" else base


class JudgePrompts:
    """Pure preprocess/postprocess of the judge for one attempt (retries sample, the first may not)."""

    def __init__(self, cfg: JudgeConfig, attempt: int = 0):
        self.cfg = cfg
        self.attempt = attempt
        self.spec = load_prompt_file(cfg.prompts)

    def messages(self, row: dict[str, Any]) -> list[dict[str, str]]:
        labels = ", ".join(label_name(lab) for lab in row.get("labels_std") or []) or "none given"
        lines = []
        for turn in row["conversations"]:
            speaker = "Question" if turn["from"] == "human" else "Answer"
            lines.append(f"{speaker}: {turn['value'].removeprefix(IMAGE_TOKEN)}")
        user = fill(
            self.spec["user"],
            report=row.get("context") or "(no report; labels only)",
            labels=labels,
            conversation="\n".join(lines),
        )
        return [{"role": "system", "content": self.spec["system"]}, {"role": "user", "content": user}]

    def preprocess(self, row: dict[str, Any]) -> dict[str, Any]:
        temperature = self.cfg.temperature if self.attempt == 0 else max(self.cfg.temperature, 0.7)
        params = {"max_tokens": self.cfg.max_tokens, "temperature": temperature, "seed": self.attempt}
        return {**row, "messages": self.messages(row), "sampling_params": params}

    def postprocess(self, row: dict[str, Any]) -> dict[str, Any]:
        out = {name: row.get(name) for name in ROW_COLUMNS}
        if row.get("llm_error"):
            return {**out, "error": f"{MALFORMED}: engine failed ({row['llm_error']})"}
        try:
            score, reason, consistent = parse_verdict(row.get("generated_text"))
        except MalformedVerdict as exc:
            return {**out, "error": f"{MALFORMED}: {exc}"}
        out.update(judge_score=score, judge_reason=reason or None)
        if consistent is False:
            return with_error(out, "judge_unfaithful", reason[:200] or "judge says inconsistent")
        if score < self.cfg.threshold:
            return with_error(out, "judge_below_threshold", f"{score:.2f} < {self.cfg.threshold:g}")
        return out


def is_malformed(row: dict[str, Any]) -> bool:
    return (row.get("error") or "").startswith(MALFORMED)


def judge(ds, cfg: JudgeConfig):
    """Score the rows whose generator is in ``cfg.apply_to``; other rows pass through unchanged."""
    from pulse.llm import apply_llm

    def wanted(row: dict[str, Any]) -> bool:
        return not row.get("error") and generator_kind(row) in cfg.apply_to

    ds = ds.materialize()  # split twice below: upstream LLM stages must run once
    parts = [ds.filter(lambda row: not wanted(row))]
    todo = ds.filter(wanted)
    for attempt in range(cfg.max_retries + 1):
        prompts = JudgePrompts(cfg, attempt)
        judged = apply_llm(todo, cfg.engine, prompts.preprocess, prompts.postprocess).materialize()
        parts.append(judged.filter(lambda row: not is_malformed(row)))
        todo = judged.filter(is_malformed)
        if attempt == cfg.max_retries or todo.count() == 0:
            parts.append(todo)
            break
        todo = todo.map(lambda row: {**row, "error": None})
    return parts[0].union(*parts[1:])
