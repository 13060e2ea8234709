"""Pure answer extraction: labels, CODE-15% NORM/ABNORMAL, ECG-QA candidates, MCQ letters.

Each rule exists in two modes. ``paper`` reproduces the published scorer
(``AIMedLab/PULSE`` ``evaluation/evaluate_ecgbench.py``) including its quirks: case-sensitive
substring matching ("NORM" is found inside "ABNORMAL", "no" inside "not sure"), and the MCQ rule
order. ``strict`` matches labels and candidates on token boundaries and never guesses.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from functools import lru_cache
from typing import Literal

from pulse.ecgbench.subsets import CODE15_BINARY, MCQ_LETTERS

Mode = Literal["paper", "strict"]
MODES: tuple[str, ...] = ("paper", "strict")

ECGQA_CLOSING_SENTENCE = "Only answer based on the given Options without any explanation."
CODE15_ANSWER_MARKER = "Answer:"


def check_mode(mode: str) -> Mode:
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
    return mode  # type: ignore[return-value]


@lru_cache(maxsize=256)
def _token_pattern(label: str, ignore_case: bool = False) -> re.Pattern[str]:
    # A label is a token when no letter, digit, underscore or hyphen touches it ("ST" ≠ "ST-segment").
    return re.compile(rf"(?<![\w-]){re.escape(label)}(?![\w-])", re.IGNORECASE if ignore_case else 0)


def contains_label(text: str, label: str, mode: Mode) -> bool:
    """Whether ``label`` occurs in ``text``: substring (paper) or whole token (strict), case-sensitive."""
    if mode == "paper":
        return label in text
    return _token_pattern(label).search(text) is not None


def labels_in_text(text: str, label_space: Sequence[str], mode: Mode) -> list[str]:
    """The labels of ``label_space`` found in ``text``, in label-space order."""
    return [label for label in label_space if contains_label(text, label, mode)]


def code15_gold_labels(value: str, conduction_labels: Sequence[str], mode: Mode) -> list[str]:
    """CODE-15% gold: the exact answers NORM/ABNORMAL are binary items, anything else is multi-label."""
    stripped = value if mode == "paper" else value.strip()
    if stripped in CODE15_BINARY:
        return [stripped]
    return labels_in_text(value, conduction_labels, mode)


def code15_pred_labels(text: str, conduction_labels: Sequence[str], mode: Mode) -> list[str]:
    """CODE-15% prediction: cut after the last "Answer:", then the NORM/ABNORMAL rule plus labels.

    ABNORMAL wins when both occur; NORM counts only without ABNORMAL (in paper mode the substring
    "NORM" of "ABNORMAL" would otherwise always fire).
    """
    if CODE15_ANSWER_MARKER in text:
        text = text.rsplit(CODE15_ANSWER_MARKER, 1)[1]
    labels = labels_in_text(text, conduction_labels, mode)
    has_abnormal = contains_label(text, "ABNORMAL", mode)
    if has_abnormal:
        return ["ABNORMAL", *labels]
    if contains_label(text, "NORM", mode):
        return ["NORM", *labels]
    return labels


def ecgqa_candidates(prompt: str, mode: Mode) -> list[str]:
    """Answer options of an ECG-QA question: the tail after the last "Options:", split on commas.

    Paper mode removes only the exact closing sentence (any other trailing text stays glued to the
    last candidate, as in the published scorer); strict mode also drops everything after the first
    line break of the tail and empty candidates.
    """
    tail = prompt.rsplit("Options:", 1)[-1]
    tail = tail.replace(ECGQA_CLOSING_SENTENCE, "")
    if mode == "strict":
        tail = tail.strip().split("\n", 1)[0]
        return [c.strip() for c in tail.split(",") if c.strip()]
    return [c.strip() for c in tail.split(",")]


def ecgqa_predicted(response: str, candidates: Sequence[str], mode: Mode) -> list[str]:
    """Candidates found in the response.

    Paper: ``c in response.lower()`` (the candidate is not lowercased, so "lead aVF" never matches).
    Strict: case-insensitive whole-phrase match, so "no" does not match "not sure" or "none".
    """
    if mode == "paper":
        lowered = response.lower()
        return [c for c in candidates if c in lowered]
    return [c for c in candidates if c and _token_pattern(c, ignore_case=True).search(response)]


def ecgqa_correct(predicted: Sequence[str], gold: Sequence[str], mode: Mode) -> bool:
    """Exact set equality (strict: after lowercasing and stripping)."""
    if mode == "paper":
        return set(predicted) == set(gold)
    return {p.strip().lower() for p in predicted} == {g.strip().lower() for g in gold}


def extract_choice_paper(text: str) -> str | None:
    """The published ``extract()``; the first rule that fires decides, even when it yields None.

    1. the text is exactly one letter A–H;
    2. the first of "A." … "H." *in letter order* that occurs anywhere;
    3. after "The correct option is ": the next character if it is A–H, else None;
    4. after the last "Answer:": the alphabetically first uppercase A–H, else None;
    5. None.
    """
    if text in MCQ_LETTERS:
        return text
    for letter in MCQ_LETTERS:
        if f"{letter}." in text:
            return letter
    marker = "The correct option is "
    if marker in text:
        following = text.split(marker, 1)[1][:1]
        return following if following in MCQ_LETTERS else None
    if "Answer:" in text:
        tail = text.rsplit("Answer:", 1)[1]
        for letter in MCQ_LETTERS:
            if letter in tail:
                return letter
        return None
    return None


_STRICT_SINGLE = re.compile(r"^\(?([A-H])\)?[.):]?$")
# Keywords match in any case, the letter only in upper case ("the answer is a sinus rhythm" is no "A").
_STRICT_STATED = re.compile(r"(?i:answer|option|choice)\s*(?i:is|would be)?\s*[:\-]?\s*\(?([A-H])(?![\w'])")
_STRICT_LEADING = re.compile(r"^\(?([A-H])[.):]\s")
_STRICT_MARKED = re.compile(r"(?<![\w])\(?([A-H])[.)](?=\s|$)")


def extract_choice_strict(text: str, choices: Sequence[str]) -> str | None:
    """A letter the answer clearly commits to, or None; letters outside ``choices`` do not count.

    Order: a bare letter ("B", "(B)", "B."); the last "answer/option is X"; a leading "B. …";
    otherwise the single distinct marked letter ("B." / "(B)") in the text. Ambiguity gives None.
    """
    stripped = text.strip()
    found: str | None = None
    if match := _STRICT_SINGLE.match(stripped):
        found = match.group(1)
    elif stated := _STRICT_STATED.findall(stripped):
        found = stated[-1]
    elif match := _STRICT_LEADING.match(stripped):
        found = match.group(1)
    else:
        marked = set(_STRICT_MARKED.findall(stripped))
        found = marked.pop() if len(marked) == 1 else None
    return found if found in choices else None


def extract_choice(text: str, mode: Mode, choices: Sequence[str] = MCQ_LETTERS) -> str | None:
    """MCQ letter in either mode (paper mode ignores ``choices``, as the published scorer does)."""
    return extract_choice_paper(text) if mode == "paper" else extract_choice_strict(text, choices)
