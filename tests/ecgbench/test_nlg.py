"""MEIT report metrics on hand-computed cases (BERTScore on the PyPI MiniLM encoder, offline)."""

from __future__ import annotations

import math

import pytest

from pulse.ecgbench import nlg


def test_bleu1_and_rouge_l_hand_computed():
    refs, hyps = ["Sinus rhythm, normal ECG."], ["Sinus rhythm abnormal"]
    # clipped unigram precision 2/3, brevity penalty exp(1 - 4/3)
    assert nlg.bleu(refs, hyps)["bleu1"] == pytest.approx(2 / 3 * math.exp(-1 / 3) * 100)
    # LCS 2: P 2/3, R 2/4 -> F 4/7
    assert nlg.rouge_l(refs, hyps) == pytest.approx(400 / 7)


def test_all_metrics_identical_vs_different():
    refs = ["Sinus rhythm, normal axis, normal ECG.", "Sinus arrhythmia. Old inferior myocardial infarction."]
    same = nlg.report_metrics(refs, refs)
    assert same["bleu4"] == pytest.approx(100.0) and same["rouge_l"] == pytest.approx(100.0)
    assert (
        same["meteor"] > 99 and same["cider"] > 0 and same["bertscore_f1"] == pytest.approx(100.0, abs=1e-3)
    )
    other = nlg.report_metrics(
        refs, ["Atrial fibrillation with rapid response.", "Left bundle branch block."]
    )
    assert other["bertscore_f1"] < same["bertscore_f1"] and other["meteor"] < 20
    assert isinstance(other["meteor_synonyms"], bool)
    with pytest.raises(ValueError, match="equal, non-zero counts"):
        nlg.report_metrics(refs, refs[:1], with_bertscore=False)
