"""Pure metric functions; every value is ×100, as the paper reports them.

Paper mode calls scikit-learn exactly as the published scorer does: a ``MultiLabelBinarizer`` fit
on the gold label lists only (predicted labels outside it are dropped), macro F1 as the plain mean
of per-class F1, macro AUC as the plain mean of per-class ``roc_auc_score`` on hard 0/1
predictions (which equals per-class balanced accuracy) with NaN for a class whose gold column is
constant (NaN then propagates to the mean), and ``hamming_loss`` on the same matrices.

Strict mode binarizes over the subset's full label space (a wrong label outside the gold labels
is a false positive, not silently dropped) and averages only the per-class values that are
defined, reporting how many classes each mean covers.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence

import numpy as np


def _paper_matrices(preds: Sequence[Sequence[str]], golds: Sequence[Sequence[str]]):
    from sklearn.preprocessing import MultiLabelBinarizer

    binarizer = MultiLabelBinarizer()
    binarizer.fit(golds)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "unknown class(es) will be ignored", as in the published run
        y_true = binarizer.transform(golds)
        y_pred = binarizer.transform(preds)
    return y_true, y_pred, list(binarizer.classes_)


def multilabel_paper(preds: Sequence[Sequence[str]], golds: Sequence[Sequence[str]]) -> dict[str, float]:
    """Macro AUC / macro F1 / hamming loss (×100) with the published scorer's semantics."""
    from sklearn.metrics import f1_score, hamming_loss, roc_auc_score

    if len(preds) != len(golds):
        raise ValueError(f"{len(preds)} predictions for {len(golds)} gold items")
    nan = {"auc": math.nan, "f1": math.nan, "hamming_loss": math.nan}
    if not golds:
        return nan
    y_true, y_pred, classes = _paper_matrices(preds, golds)
    if not classes:
        return nan
    aucs = []
    with warnings.catch_warnings():
        # zero_division (F1 = 0) and single-class AUC (NaN: older sklearn raised, newer warns)
        warnings.simplefilter("ignore")
        per_class_f1 = f1_score(y_true, y_pred, average=None)
        for i in range(len(classes)):
            try:
                aucs.append(roc_auc_score(y_true[:, i], y_pred[:, i]))
            except ValueError:
                aucs.append(np.nan)
    return {
        "auc": float(np.mean(aucs)) * 100,
        "f1": float(np.mean(per_class_f1)) * 100,
        "hamming_loss": float(hamming_loss(y_true, y_pred)) * 100,
    }


def binarize(label_lists: Sequence[Sequence[str]], classes: Sequence[str]) -> np.ndarray:
    """Rows × classes 0/1 matrix; labels not in ``classes`` are ignored."""
    index = {c: i for i, c in enumerate(classes)}
    matrix = np.zeros((len(label_lists), len(classes)), dtype=np.int8)
    for row, labels in enumerate(label_lists):
        for label in labels:
            if label in index:
                matrix[row, index[label]] = 1
    return matrix


def multilabel_strict(
    preds: Sequence[Sequence[str]], golds: Sequence[Sequence[str]], label_space: Sequence[str]
) -> dict[str, float]:
    """NaN-safe macro AUC (balanced accuracy of hard predictions) / F1 / hamming loss over ``label_space``.

    A class's AUC is defined only when its gold column holds both values; its F1 only when it occurs
    in gold or prediction. Means run over defined classes (``auc_classes``/``f1_classes`` say how many).
    """
    if len(preds) != len(golds):
        raise ValueError(f"{len(preds)} predictions for {len(golds)} gold items")
    y_true = binarize(golds, label_space).astype(bool)
    y_pred = binarize(preds, label_space).astype(bool)
    tp = (y_true & y_pred).sum(axis=0)
    fp = (~y_true & y_pred).sum(axis=0)
    fn = (y_true & ~y_pred).sum(axis=0)
    tn = (~y_true & ~y_pred).sum(axis=0)
    aucs, f1s = [], []
    for c in range(len(label_space)):
        if tp[c] + fn[c] > 0 and tn[c] + fp[c] > 0:
            aucs.append((tp[c] / (tp[c] + fn[c]) + tn[c] / (tn[c] + fp[c])) / 2)
        if 2 * tp[c] + fp[c] + fn[c] > 0:
            f1s.append(2 * tp[c] / (2 * tp[c] + fp[c] + fn[c]))
    cells = y_true.size
    return {
        "auc": float(np.mean(aucs)) * 100 if aucs else math.nan,
        "f1": float(np.mean(f1s)) * 100 if f1s else math.nan,
        "hamming_loss": float((fp + fn).sum() / cells) * 100 if cells else math.nan,
        "auc_classes": len(aucs),
        "f1_classes": len(f1s),
    }


def accuracy(correct: Sequence[bool]) -> float:
    """Share of correct answers ×100 (NaN for no items)."""
    return float(np.mean(np.asarray(correct, dtype=float))) * 100 if len(correct) else math.nan


def judge_item_score(scores: Sequence[float]) -> float:
    """One judged item: the mean of its 0–10 aspect scores ×10 (0–100)."""
    return float(np.mean(scores)) * 10 if len(scores) else math.nan
