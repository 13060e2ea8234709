"""The one check of an ECGInstruct conversation, for the LLaVA-format importer and train's encoder.

A conversation is ``[{"from": "human"|"gpt", "value": str}, ...]``: turns alternate human/gpt
starting with human and ending with a gpt answer, no answer is empty, and exactly one ``<image>``
placeholder stands in the first human turn (LLaVA data puts it at either end; it is moved to the
start). A conversation that breaks a rule raises ``StageError`` with the reason from
``pulse.errors``.
"""

from __future__ import annotations

from typing import Any

from pulse.data_ray.stage import StageError

IMAGE_TOKEN = "<image>"


def check_conversation(
    turns: list[dict[str, Any]], error: type[StageError] = StageError
) -> list[dict[str, str]]:
    """The validated turns, the first one starting with ``<image>\\n``; raises ``error``."""
    if not turns:
        raise error("bad_conversation", "no turns")
    for i, turn in enumerate(turns):
        expected = "human" if i % 2 == 0 else "gpt"
        if turn.get("from") != expected:
            raise error("bad_conversation", f"turn {i} is from {turn.get('from')!r}, expected {expected!r}")
    if len(turns) % 2:
        raise error("bad_conversation", f"{len(turns)} turns: the last human turn has no gpt answer")
    values = [turn.get("value") or "" for turn in turns]
    if IMAGE_TOKEN not in values[0]:
        raise error("missing_image_token", "first human turn has no <image>")
    if values[0].count(IMAGE_TOKEN) > 1 or any(IMAGE_TOKEN in v for v in values[1:]):
        raise error("extra_image_token", "more than one <image> in the conversation")
    for i in range(1, len(values), 2):
        if not values[i].strip():
            raise error("empty_answer", f"gpt turn {i} is empty")
    first = values[0]
    if not first.startswith(IMAGE_TOKEN):
        first = f"{IMAGE_TOKEN}\n{first.replace(IMAGE_TOKEN, '').strip()}"
    return [{"from": turn["from"], "value": v} for turn, v in zip(turns, [first, *values[1:]], strict=True)]
