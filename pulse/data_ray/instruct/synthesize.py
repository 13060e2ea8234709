"""Report-based LLM synthesis: pending plan rows -> instructions, through ``pulse.llm.apply_llm``.

:class:`SynthesisPrompts` holds the pure halves (row -> chat messages, generated text ->
conversation); :func:`synthesize` runs them on any engine. Output that does not parse
becomes a ``synthesis_unparsable`` error row; an engine failure keeps the engine's reason.
"""

from __future__ import annotations

import re
from typing import Any

from pulse.data_ray.instruct.config import SynthesisConfig
from pulse.data_ray.instruct.prompts import fill, label_name, load_prompt_file
from pulse.data_ray.instruct.rows import ROW_COLUMNS, conversation, with_error

SINGLE = re.compile(
    r"^\W*Task\W*:?\s*(?P<task>.+?)\s*^\W*Response\W*:?\s*(?P<response>.+)$", re.S | re.M | re.I
)
TURN = re.compile(r"^\W*(Human|User|Clinician|Assistant|AI)\W*:\s*", re.M | re.I)


def engine_name(engine: Any) -> str:
    """``<kind>/<model>`` of an engine config, for the ``generator`` column."""
    model = getattr(engine, "model", None) or getattr(engine, "model_source", None) or "?"
    return f"{engine.kind}/{model}"


def parse_single(text: str) -> list[dict[str, str]] | None:
    """``Task: ... Response: ...`` -> a two-turn conversation, or None."""
    match = SINGLE.search(text or "")
    if not match:
        return None
    task, response = match["task"].strip(), match["response"].strip()
    return conversation(task, response) if task and response else None


def parse_dialogue(text: str) -> list[dict[str, str]] | None:
    """``Human: ... Assistant: ...`` lines -> an alternating conversation (at least two exchanges), or None."""
    pieces = TURN.split(text or "")
    turns: list[tuple[str, str]] = []
    for speaker, body in zip(pieces[1::2], pieces[2::2], strict=False):
        role = "gpt" if speaker.lower() in ("assistant", "ai") else "human"
        body = body.strip()
        if not body:
            continue
        if turns and turns[-1][0] == role:
            turns[-1] = (role, turns[-1][1] + "\n" + body)
        else:
            turns.append((role, body))
    if turns and turns[0][0] != "human":
        return None
    if len(turns) % 2:
        turns = turns[:-1]
    return conversation(*(body for _, body in turns)) if len(turns) >= 4 else None


class SynthesisPrompts:
    """Pure preprocess/postprocess for synthesis rows (unit-testable without an engine)."""

    def __init__(self, cfg: SynthesisConfig):
        self.cfg = cfg
        self.spec = load_prompt_file(cfg.prompts)
        self.generator = f"{self.spec['version']}:{engine_name(cfg.engine) if cfg.engine else 'none'}"

    def messages(self, row: dict[str, Any]) -> list[dict[str, str]]:
        labels = ", ".join(label_name(lab) for lab in row.get("labels_std") or []) or "none given"
        if row["request"] == "multi_turn":
            user = fill(self.spec["multi_turn"], report=row["context"], labels=labels)
        else:
            _, task_type, aspect = row["request"].split("|")
            user = fill(
                self.spec["single"],
                report=row["context"],
                labels=labels,
                task_type=task_type,
                aspect=self.spec["aspects"].get(aspect, aspect),
            )
        return [{"role": "system", "content": self.spec["system"]}, {"role": "user", "content": user}]

    def preprocess(self, row: dict[str, Any]) -> dict[str, Any]:
        return {
            **row,
            "messages": self.messages(row),
            "sampling_params": {"max_tokens": self.cfg.max_tokens, "temperature": self.cfg.temperature},
        }

    def postprocess(self, row: dict[str, Any]) -> dict[str, Any]:
        out = {name: row.get(name) for name in ROW_COLUMNS}
        out["generator"] = self.generator
        if row.get("llm_error"):
            return {**out, "error": row["llm_error"]}
        text = row.get("generated_text") or ""
        parsed = parse_dialogue(text) if row["request"] == "multi_turn" else parse_single(text)
        if parsed is None:
            return with_error(out, "synthesis_unparsable", " ".join(text.split())[:120] or "empty output")
        return {**out, "conversations": parsed}


def is_pending(row: dict[str, Any]) -> bool:
    return bool(row.get("request")) and not row.get("error")


def synthesize(ds, cfg: SynthesisConfig):
    """Complete the pending rows of ``ds`` with the configured engine; other rows pass through."""
    from pulse.llm import apply_llm

    prompts = SynthesisPrompts(cfg)
    pending = ds.filter(is_pending)
    rest = ds.filter(lambda row: not is_pending(row))
    return rest.union(apply_llm(pending, cfg.engine, prompts.preprocess, prompts.postprocess))
