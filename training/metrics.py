"""Classification and calibration metrics as pure functions of labels, logits and probabilities.

Conventions: ``labels`` and ``preds`` are integer class indices (0..K-1, the order of ``classes``);
``logits`` and ``probs`` are (N, K) arrays; confusion matrices have true classes as rows and
predicted classes as columns. A metric that is undefined (a class with no images, a group with
one class) is ``None``, never NaN, so the results serialise to strict JSON.

Numpy only at import; scikit-learn and scipy are imported inside the functions that use them.
"""
from __future__ import annotations

from collections import Counter
from typing import Iterable, Mapping, Sequence

import numpy as np

ECE_BINS = 15
TEMPERATURE_BOUNDS = (0.05, 20.0)


def as_logits(predictions) -> np.ndarray:
    """(N, K) log-probabilities of temperature-1 predictions (objects with ``.probabilities``).

    They equal the logits up to a per-image constant, which softmax and temperature scaling
    ignore, so they stand in for the logits that ``Classifier.predict`` does not return.
    """
    probs = np.array([p.probabilities for p in predictions], dtype=np.float64)
    return np.log(np.maximum(probs, 1e-300))


# --------------------------------------------------------------------------- probabilities

def softmax(logits: np.ndarray, temperature: float = 1.0) -> np.ndarray:
    """Row-wise softmax of ``logits / temperature`` in float64."""
    scaled = np.asarray(logits, dtype=np.float64) / float(temperature)
    scaled = scaled - scaled.max(axis=1, keepdims=True)
    exp = np.exp(scaled)
    return exp / exp.sum(axis=1, keepdims=True)


def log_softmax(logits: np.ndarray, temperature: float = 1.0) -> np.ndarray:
    """Row-wise log-softmax of ``logits / temperature`` in float64."""
    scaled = np.asarray(logits, dtype=np.float64) / float(temperature)
    shifted = scaled - scaled.max(axis=1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))


def nll(logits: np.ndarray, labels: np.ndarray, temperature: float = 1.0) -> float:
    """Mean negative log-likelihood (nats) of ``labels`` under ``softmax(logits / temperature)``."""
    labels = np.asarray(labels, dtype=np.int64)
    if not len(labels):
        return 0.0
    return float(-log_softmax(logits, temperature)[np.arange(len(labels)), labels].mean())


def fit_temperature(logits: np.ndarray, labels: np.ndarray,
                    bounds: tuple[float, float] = TEMPERATURE_BOUNDS) -> float:
    """The temperature T within ``bounds`` that minimises the NLL of ``softmax(logits / T)``.

    A bounded scalar search over log T (the NLL is convex in 1/T, so the minimum is unique).
    Fit it on validation logits only; it never changes which class is predicted.
    """
    from scipy.optimize import minimize_scalar

    if not len(labels):
        raise ValueError("cannot fit a temperature on zero images")
    low, high = np.log(bounds[0]), np.log(bounds[1])
    result = minimize_scalar(lambda log_t: nll(logits, labels, np.exp(log_t)), bounds=(low, high),
                             method="bounded", options={"xatol": 1e-6})
    return float(np.exp(result.x))


# --------------------------------------------------------------------------- classification

def confusion_matrix(labels: Sequence[int], preds: Sequence[int], n_classes: int) -> np.ndarray:
    """(K, K) int64 counts: row = true class, column = predicted class."""
    matrix = np.zeros((n_classes, n_classes), dtype=np.int64)
    np.add.at(matrix, (np.asarray(labels, dtype=np.int64), np.asarray(preds, dtype=np.int64)), 1)
    return matrix


def accuracy(labels: Sequence[int], preds: Sequence[int]) -> float:
    """Share of correct predictions (0.0 for no images)."""
    labels, preds = np.asarray(labels), np.asarray(preds)
    return float((labels == preds).mean()) if len(labels) else 0.0


def _ratio(numerator: np.ndarray, denominator: np.ndarray) -> np.ndarray:
    """Element-wise numerator / denominator, NaN where the denominator is 0."""
    out = np.full(numerator.shape, np.nan)
    np.divide(numerator, denominator, out=out, where=denominator > 0)
    return out


def precision_recall_f1(confusion: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-class precision, recall and F1 from a confusion matrix (float arrays, NaN if undefined).

    Precision is undefined for a class never predicted, recall for a class with no images; F1 is
    0 where precision or recall is 0 and NaN where either is undefined.
    """
    confusion = np.asarray(confusion, dtype=np.float64)
    true_pos = np.diag(confusion)
    precision = _ratio(true_pos, confusion.sum(axis=0))
    recall = _ratio(true_pos, confusion.sum(axis=1))
    # A class that has images but is never predicted has recall 0, so its F1 is 0, not undefined.
    precision = np.where(np.isnan(precision) & (confusion.sum(axis=1) > 0), 0.0, precision)
    f1 = _ratio(2 * precision * recall, precision + recall)
    f1 = np.where((precision == 0) | (recall == 0), 0.0, f1)
    return precision, recall, f1


def macro_f1(confusion: np.ndarray) -> float | None:
    """Mean F1 over the classes that have images (``None`` when none has)."""
    present = np.asarray(confusion).sum(axis=1) > 0
    if not present.any():
        return None
    return float(precision_recall_f1(confusion)[2][present].mean())


def auroc_one_vs_rest(labels: Sequence[int], probs: np.ndarray) -> list[float | None]:
    """One-vs-rest ROC AUC per class (``None`` for a class that is absent or the only one present)."""
    from sklearn.metrics import roc_auc_score

    labels = np.asarray(labels)
    probs = np.asarray(probs, dtype=np.float64)
    out: list[float | None] = []
    for k in range(probs.shape[1]):
        positive = labels == k
        if positive.all() or not positive.any():
            out.append(None)
        else:
            out.append(float(roc_auc_score(positive, probs[:, k])))
    return out


# --------------------------------------------------------------------------- calibration

def reliability_bins(probs: np.ndarray, labels: Sequence[int], n_bins: int = ECE_BINS) -> dict:
    """Reliability-diagram data over equal-width bins of the max probability (confidence).

    Bin b holds confidences in (b/n, (b+1)/n] (the first bin includes 0). Returns lists of
    length ``n_bins``: ``edges`` (n_bins + 1), ``count``, ``accuracy`` and ``confidence``
    (mean per bin, ``None`` for an empty bin).
    """
    probs = np.asarray(probs, dtype=np.float64)
    labels = np.asarray(labels, dtype=np.int64)
    confidence = probs.max(axis=1) if len(probs) else np.zeros(0)
    correct = (probs.argmax(axis=1) == labels) if len(probs) else np.zeros(0, dtype=bool)
    index = np.clip(np.ceil(confidence * n_bins).astype(np.int64) - 1, 0, n_bins - 1)
    count = np.bincount(index, minlength=n_bins)
    acc_sum = np.bincount(index, weights=correct.astype(np.float64), minlength=n_bins)
    conf_sum = np.bincount(index, weights=confidence, minlength=n_bins)
    return {
        "edges": np.linspace(0.0, 1.0, n_bins + 1).tolist(),
        "count": count.tolist(),
        "accuracy": [float(a / n) if n else None for a, n in zip(acc_sum, count)],
        "confidence": [float(c / n) if n else None for c, n in zip(conf_sum, count)],
    }


def expected_calibration_error(probs: np.ndarray, labels: Sequence[int], n_bins: int = ECE_BINS) -> float:
    """ECE: sum over bins of (bin share) * |bin accuracy - bin mean confidence| (Guo et al. 2017)."""
    bins = reliability_bins(probs, labels, n_bins)
    total = sum(bins["count"])
    if not total:
        return 0.0
    return float(sum(n / total * abs(a - c)
                     for n, a, c in zip(bins["count"], bins["accuracy"], bins["confidence"]) if n))


# --------------------------------------------------------------------------- summaries

def _per_class(values: Iterable, classes: Sequence[str]) -> dict[str, float | None]:
    return {c: (None if v is None or np.isnan(v) else float(v)) for c, v in zip(classes, values)}


def summarise(labels: Sequence[int], probs: np.ndarray, classes: Sequence[str],
              logits: np.ndarray | None = None, temperature: float = 1.0) -> dict:
    """Every headline metric of one prediction set (``probs`` already temperature-scaled).

    Keys: n, accuracy, macro_f1, precision/recall/f1/support/auroc (per class), macro_auroc,
    confusion (list of rows), ece, and nll when ``logits`` are given.
    """
    labels = np.asarray(labels, dtype=np.int64)
    probs = np.asarray(probs, dtype=np.float64)
    preds = probs.argmax(axis=1)
    confusion = confusion_matrix(labels, preds, len(classes))
    precision, recall, f1 = precision_recall_f1(confusion)
    auroc = auroc_one_vs_rest(labels, probs)
    defined = [a for a in auroc if a is not None]
    out = {
        "n": int(len(labels)),
        "accuracy": accuracy(labels, preds),
        "macro_f1": macro_f1(confusion),
        "precision": _per_class(precision, classes),
        "recall": _per_class(recall, classes),
        "f1": _per_class(f1, classes),
        "support": {c: int(n) for c, n in zip(classes, confusion.sum(axis=1))},
        "auroc": dict(zip(classes, auroc)),
        "macro_auroc": float(np.mean(defined)) if defined else None,
        "confusion": confusion.tolist(),
        "ece": expected_calibration_error(probs, labels),
    }
    if logits is not None:
        out["nll"] = nll(logits, labels, temperature)
    return out


def group_metrics(rows: Sequence[Mapping], key: str, classes: Sequence[str],
                  probs: np.ndarray | None = None) -> dict[str, dict]:
    """Metrics per value of ``rows[i][key]`` (e.g. source, age group), groups sorted by name.

    Each row needs ``label`` and ``pred`` (class names) and ``key``. Per group: n, accuracy,
    recall of each class present, macro-F1 over the present classes when at least two are
    present (else ``None``), prediction counts and the confusion matrix; ``ece`` too when
    ``probs`` (aligned with ``rows``) are given.
    """
    index = {c: i for i, c in enumerate(classes)}
    members: dict[str, list[int]] = {}
    for i, row in enumerate(rows):
        members.setdefault(str(row[key]), []).append(i)
    out = {}
    for group in sorted(members):
        picked = members[group]
        labels = np.array([index[rows[i]["label"]] for i in picked], dtype=np.int64)
        preds = np.array([index[rows[i]["pred"]] for i in picked], dtype=np.int64)
        confusion = confusion_matrix(labels, preds, len(classes))
        recall = precision_recall_f1(confusion)[1]
        present = confusion.sum(axis=1) > 0
        entry = {
            "n": len(picked),
            "accuracy": accuracy(labels, preds),
            "recall": {c: float(recall[k]) for k, c in enumerate(classes) if present[k]},
            "macro_f1": macro_f1(confusion) if present.sum() >= 2 else None,
            "predicted": prediction_counts([rows[i]["pred"] for i in picked], classes),
            "confusion": confusion.tolist(),
        }
        if probs is not None:
            entry["ece"] = expected_calibration_error(np.asarray(probs)[picked], labels)
        out[group] = entry
    return out


def prediction_counts(preds: Iterable[str], classes: Sequence[str]) -> dict[str, int]:
    """How often each class was predicted (every class listed, in ``classes`` order)."""
    counts = Counter(preds)
    return {c: int(counts.get(c, 0)) for c in classes}
