"""Structural validators of instruction rows; a failure becomes an error row with its reason.

- every conversation alternates human/gpt, starts with human, ends with gpt, has no empty turn;
- the first human turn starts with ``<image>\\n`` and no other turn mentions ``<image>``;
- an MCQ lists at least two lettered options and its answer names one of them;
- a fill-in-the-blank question has exactly one blank;
- a multi-turn row has at least two exchanges.
"""

from __future__ import annotations

import re
from typing import Any

from pulse.data_ray.instruct.rows import IMAGE_TOKEN, gpt_texts, human_text, with_error

OPTION_LINE = re.compile(r"^\s*\(?([A-H])[.)]\s+(\S.*)$", re.MULTILINE)
BLANK = re.compile(r"_{3,}|\[blank\]|\(blank\)", re.IGNORECASE)
LETTER_ONLY = re.compile(r"^\s*\(?([A-H])\)?[.):]?\s*$")
LETTER_CITED = re.compile(r"(?:^|[\s(])([A-H])(?:[.)]|\s*$)")


def parse_options(question: str) -> dict[str, str]:
    """Lettered options (``A. text`` or ``(A) text`` lines) of an MCQ question."""
    return {letter: text.strip() for letter, text in OPTION_LINE.findall(question)}


def answer_letter(answer: str, options: dict[str, str]) -> str | None:
    """The option an MCQ answer picks: a bare letter, a cited ``C.``, or an option's full text."""
    match = LETTER_ONLY.match(answer)
    if match and match.group(1) in options:
        return match.group(1)
    cited = [letter for letter in LETTER_CITED.findall(answer) if letter in options]
    if cited:
        return cited[-1]
    lowered = answer.lower()
    named = [letter for letter, text in options.items() if text.lower() in lowered]
    return named[0] if len(named) == 1 else None


def structure_error(conversations: list[dict[str, str]]) -> tuple[str, str] | None:
    if len(conversations) < 2:
        return "invalid_roles", f"{len(conversations)} turn(s); need a question and an answer"
    for index, turn in enumerate(conversations):
        expected = "human" if index % 2 == 0 else "gpt"
        if turn.get("from") != expected:
            return "invalid_roles", f"turn {index} is {turn.get('from')!r}, expected {expected!r}"
        if not (turn.get("value") or "").strip() or turn["value"].strip() == IMAGE_TOKEN.strip():
            return "empty_turn", f"turn {index} is empty"
    if conversations[-1]["from"] != "gpt":
        return "invalid_roles", "the last turn is not an answer"
    if not conversations[0]["value"].startswith(IMAGE_TOKEN):
        return "invalid_image_token", "the first human turn does not start with '<image>\\n'"
    if (
        any("<image>" in turn["value"] for turn in conversations[1:])
        or conversations[0]["value"].count("<image>") != 1
    ):
        return "invalid_image_token", "'<image>' must appear exactly once, at the start"
    return None


def row_error(row: dict[str, Any]) -> tuple[str, str] | None:
    """(reason, detail) of the first rule ``row`` breaks, or None."""
    problem = structure_error(list(row.get("conversations") or []))
    if problem:
        return problem
    qtype = row.get("qtype")
    question = human_text(row)
    answers = gpt_texts(row)
    if qtype == "mcq":
        options = parse_options(question)
        if len(options) < 2:
            return "invalid_mcq", f"{len(options)} lettered option(s) in the question"
        if answer_letter(answers[0], options) is None:
            return "invalid_mcq", f"answer {answers[0][:60]!r} names none of options {sorted(options)}"
    elif qtype == "fill":
        blanks = len(BLANK.findall(question))
        if blanks != 1:
            return "invalid_fill", f"{blanks} blanks in the question; need exactly one"
    elif qtype == "multi-turn" and len(row["conversations"]) < 4:
        return "invalid_multi_turn", f"{len(row['conversations'])} turns; need at least two exchanges"
    return None


def validate_row(row: dict[str, Any]) -> dict[str, Any]:
    """``row`` unchanged, or marked as an error row when it breaks a rule (rows already in error pass)."""
    if row.get("error"):
        return row
    problem = row_error(row)
    return with_error(row, *problem) if problem else row
