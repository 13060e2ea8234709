"""Metric functions against hand-computed values, and the sklearn equivalences the paper relies on."""

from __future__ import annotations

import math

import numpy as np
import pytest
from sklearn.metrics import balanced_accuracy_score, roc_auc_score

from pulse.ecgbench import metrics

PTB = ("NORM", "MI", "STTC", "CD", "HYP")
GOLDS = [["NORM"], ["MI"], ["NORM", "MI"], ["STTC"]]
PREDS = [["NORM"], ["NORM"], ["MI"], ["HYP"]]  # HYP never occurs in gold


def test_paper_multilabel_hand_computed():
    # classes from gold only: MI, NORM, STTC; the HYP prediction is dropped.
    # MI tp1 fn1 fp0 tn2 -> F1 2/3, AUC(hard) = (1/2 + 1)/2 = .75
    # NORM tp1 fp1 fn1 tn1 -> F1 1/2, AUC .5 ; STTC tp0 fn1 tn3 -> F1 0, AUC .5
    out = metrics.multilabel_paper(PREDS, GOLDS)
    assert out["f1"] == pytest.approx((2 / 3 + 0.5 + 0) / 3 * 100)
    assert out["auc"] == pytest.approx((0.75 + 0.5 + 0.5) / 3 * 100)
    assert out["hamming_loss"] == pytest.approx(4 / 12 * 100)


def test_strict_multilabel_hand_computed():
    # full label space: HYP is a false positive; CD is undefined for both AUC and F1
    out = metrics.multilabel_strict(PREDS, GOLDS, PTB)
    assert out["f1"] == pytest.approx((0.5 + 2 / 3 + 0 + 0) / 4 * 100)
    assert out["f1_classes"] == 4
    assert out["auc"] == pytest.approx((0.5 + 0.75 + 0.5) / 3 * 100)
    assert out["auc_classes"] == 3
    assert out["hamming_loss"] == pytest.approx(5 / 20 * 100)


def test_paper_auc_nan_propagates_strict_is_nan_safe():
    golds = [["NORM"], ["NORM", "MI"]]  # NORM is in every row: roc_auc_score raises -> NaN
    preds = [["NORM"], ["NORM"]]
    paper = metrics.multilabel_paper(preds, golds)
    assert math.isnan(paper["auc"])
    assert paper["f1"] == pytest.approx(50.0)
    assert paper["hamming_loss"] == pytest.approx(25.0)
    strict = metrics.multilabel_strict(preds, golds, PTB)
    assert strict["auc"] == pytest.approx(50.0)
    assert strict["auc_classes"] == 1


def test_auc_on_hard_predictions_is_balanced_accuracy():
    rng = np.random.default_rng(0)
    for _ in range(20):
        y_true = rng.integers(0, 2, 40)
        y_true[:2] = [0, 1]
        y_pred = rng.integers(0, 2, 40)
        assert roc_auc_score(y_true, y_pred) == pytest.approx(balanced_accuracy_score(y_true, y_pred))


def test_strict_equals_paper_when_gold_covers_label_space_and_all_defined():
    rng = np.random.default_rng(1)
    labels = list(PTB)
    golds = [[lab for lab in labels if rng.random() < 0.4] for _ in range(60)]
    preds = [[lab for lab in labels if rng.random() < 0.4] for _ in range(60)]
    for lab in labels:  # every class positive and negative somewhere
        golds[labels.index(lab)].append(lab)
    golds[-1] = []
    paper = metrics.multilabel_paper(preds, golds)
    strict = metrics.multilabel_strict(preds, golds, labels)
    for key in ("auc", "f1", "hamming_loss"):
        assert strict[key] == pytest.approx(paper[key])


def test_accuracy_and_judge_item_score():
    assert metrics.accuracy([True, False, True, True]) == pytest.approx(75.0)
    assert math.isnan(metrics.accuracy([]))
    assert metrics.judge_item_score([8, 7, 10]) == pytest.approx(250 / 3)  # the paper's 83.3 example
    with pytest.raises(ValueError, match="predictions for"):
        metrics.multilabel_paper([["NORM"]], [])
