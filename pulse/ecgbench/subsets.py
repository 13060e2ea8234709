"""The 9 ECGBench subsets: published sizes, label spaces, metric kinds, in/out-of-domain groups.

Sizes and label spaces are those of the HF release ``PULSE-ECG/ECGBench`` and of the published
scorer (``AIMedLab/PULSE`` ``evaluation/evaluate_ecgbench.py``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Kind = Literal["multilabel", "ecgqa", "mcq", "report", "arena"]

HF_REPO = "PULSE-ECG/ECGBench"
DEFAULT_ROOT = "data/ECGBench"
OWN_PREFIX = "own-"
"""Subsets built from pulse's own records by ``pulse ecgbench items`` are named ``own-<dataset>``."""
CODE15_BINARY: tuple[str, str] = ("NORM", "ABNORMAL")
MCQ_LETTERS: tuple[str, ...] = ("A", "B", "C", "D", "E", "F", "G", "H")


@dataclass(frozen=True)
class Subset:
    """One ECGBench config.

    Attributes:
        name: HF config name (``ptb-test``).
        title: column title in the paper's tables.
        size: published number of items; enforced unless partial scoring is allowed.
        kind: which scorer applies.
        in_domain: the paper's in-domain / out-of-domain grouping.
        labels: label space for multi-label subsets (CODE-15%: the six conduction labels).
        fallback_choices: letters the published scorer draws from when no MCQ answer is found.
    """

    name: str
    title: str
    size: int
    kind: Kind
    in_domain: bool
    labels: tuple[str, ...] = ()
    fallback_choices: tuple[str, ...] = ()

    @property
    def metric_keys(self) -> tuple[str, ...]:
        """Keys of the headline metrics this subset reports."""
        if self.kind == "multilabel":
            return ("auc", "f1", "hamming_loss")
        if self.kind in ("ecgqa", "mcq"):
            return ("accuracy",)
        return ("report_score",) if self.kind == "report" else ("arena_score",)

    @property
    def strict_label_space(self) -> tuple[str, ...]:
        """All labels a prediction can carry (CODE-15% adds NORM/ABNORMAL)."""
        return CODE15_BINARY + self.labels if self.name == "code15-test" else self.labels


SUBSETS: dict[str, Subset] = {
    s.name: s
    for s in (
        Subset("ptb-test", "PTB-XL Super", 2082, "multilabel", True, ("NORM", "MI", "STTC", "CD", "HYP")),
        Subset("ptb-test-report", "PTB-XL Report", 500, "report", True),
        Subset(
            "code15-test", "CODE-15%", 1400, "multilabel", True, ("1dAVb", "RBBB", "LBBB", "SB", "ST", "AF")
        ),
        Subset("ecgqa-test", "ECG-QA", 1317, "ecgqa", True),
        Subset(
            "cpsc-test",
            "CPSC 2018",
            2061,
            "multilabel",
            False,
            ("NORM", "AF", "I-AVB", "LBBB", "RBBB", "PAC", "PVC", "STD", "STE"),
        ),
        Subset("csn-test-no-cot", "CSN", 1611, "mcq", False, fallback_choices=MCQ_LETTERS),
        Subset("g12-test-no-cot", "G12EC", 2026, "mcq", False, fallback_choices=MCQ_LETTERS),
        Subset("mmmu-ecg", "MMMU-ECG", 200, "mcq", False, fallback_choices=MCQ_LETTERS[:4]),
        Subset("arena", "ECG Arena", 50, "arena", False),
    )
}


def get_subset(name: str) -> Subset:
    """The subset called ``name``; an unknown name is an error listing the valid ones."""
    try:
        return SUBSETS[name]
    except KeyError:
        raise ValueError(f"Unknown ECGBench subset {name!r}; choose one of {sorted(SUBSETS)}") from None
