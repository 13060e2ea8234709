"""Rule-based faithfulness: an answer must not contradict the record's structured labels.

Beyond PULSE, which trusted the judge alone. Three rules over ``labels_std``:

1. *denial* — the answer negates a finding the record has ("no atrial fibrillation" on an AF record);
2. *exclusive* — it asserts a finding that excludes one the record has (sinus rhythm on an AF
   record, tachycardia on a bradycardia record, right axis on a left-axis record);
3. *yes/no* — a yes/no answer about a single finding disagrees with the labels.

Only findings with an unambiguous phrase are checked; anything else passes. The judge's own
verdict (``consistent`` in its JSON) is applied in :mod:`judge`.
"""

from __future__ import annotations

import re
from typing import Any

from pulse.data_ray.instruct.rows import gpt_texts, human_text, with_error

PHRASES: dict[str, str] = {
    "NSR": r"(?<!no )(?:normal )?sinus rhythm",
    "AF": r"atrial fibrillation|\bafib\b",
    "AFL": r"atrial flutter",
    "SB": r"bradycardi?a?c?",
    "STach": r"tachycardi?a?c?",
    "LAD": r"left axis deviation",
    "RAD": r"right axis deviation",
    "RBBB": r"right bundle branch block|\bRBBB\b",
    "LBBB": r"left bundle branch block|\bLBBB\b",
    "IAVB": r"first[- ]degree (?:av |atrioventricular )?block",
    "PVC": r"premature ventricular|ventricular premature|\bPVCs?\b",
    "PAC": r"premature atrial|atrial premature|\bPACs?\b",
    "MI": r"myocardial infarction|infarct",
    "LVH": r"left ventricular hypertrophy|\bLVH\b",
}
ALIASES = {"CRBBB": "RBBB", "CLBBB": "LBBB", "VPB": "PVC", "SVPB": "PAC", "Brady": "SB", "LVHV": "LVH"}
EXCLUSIVE: tuple[frozenset[str], ...] = (
    frozenset({"NSR", "AF", "AFL"}),
    frozenset({"SB", "STach"}),
    frozenset({"LAD", "RAD"}),
)
NEGATION = re.compile(
    r"\b(?:no|not|without|absence of|absent|negative for|rules? out|free of)\b[\w\s,-]{0,30}$", re.I
)
COMPILED = {label: re.compile(pattern, re.IGNORECASE) for label, pattern in PHRASES.items()}


def canonical(labels: list[str]) -> set[str]:
    return {ALIASES.get(label, label) for label in labels}


def mentions(text: str) -> dict[str, list[bool]]:
    """Checked findings mentioned in ``text`` -> for each mention, whether it is negated."""
    found: dict[str, list[bool]] = {}
    for label, pattern in COMPILED.items():
        for match in pattern.finditer(text):
            prefix = text[max(0, match.start() - 40) : match.start()]
            sentence_prefix = re.split(r"[.;:!?\n]", prefix)[-1]
            found.setdefault(label, []).append(bool(NEGATION.search(sentence_prefix)))
    return found


def contradiction(question: str, answer: str, labels: list[str]) -> str | None:
    """Why ``answer`` contradicts ``labels`` (a short detail), or None."""
    present = canonical(labels)
    if not present:
        return None
    said = mentions(answer)
    for label, negated in said.items():
        if label in present and all(negated):
            return f"denies {label}, which the record has"
    for group in EXCLUSIVE:
        have = present & group
        for label, negated in said.items():
            if label in group and label not in have and have and not all(negated):
                return f"asserts {label}, but the record has {sorted(have)[0]}"
    reply = answer.strip().lower()
    if reply.startswith(("yes", "no")):
        asked = list(mentions(question))
        if len(asked) == 1:
            label = asked[0]
            says_yes = reply.startswith("yes")
            excluded = any(label in g and present & (g - {label}) for g in EXCLUSIVE)
            if not says_yes and label in present:
                return f"answers no about {label}, which the record has"
            if says_yes and label not in present and excluded:
                return f"answers yes about {label}, which the record's labels exclude"
    return None


def check_row(row: dict[str, Any]) -> dict[str, Any]:
    """``row`` unchanged, or an ``unfaithful`` error row (each gpt turn answers the human turn before it)."""
    if row.get("error") or not row.get("labels_std"):
        return row
    for turn, answer in enumerate(gpt_texts(row)):
        detail = contradiction(human_text(row, turn), answer, list(row["labels_std"]))
        if detail:
            return with_error(row, "unfaithful", f"turn {turn}: {detail}")
    return row
