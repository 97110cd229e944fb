"""training.train.classification_metrics (the epoch log) is computed by training.metrics, the module
evaluate uses, with values worked out by hand."""
from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("torch")

from training.train import classification_metrics  # noqa: E402


def test_hand_worked_epoch():
    labels, preds = np.array([0, 0, 1, 1, 2]), np.array([0, 1, 1, 1, 0])
    m = classification_metrics(labels, preds, ["a", "a", "b", "b", "b"])
    assert m["confusion"] == [[1, 1, 0], [0, 2, 0], [1, 0, 0]]
    assert m["accuracy"] == pytest.approx(0.6) and m["n"] == 5
    assert list(m["precision"].values()) == pytest.approx([0.5, 2 / 3, 0.0])  # covid never predicted: 0
    assert list(m["recall"].values()) == pytest.approx([0.5, 1.0, 0.0])
    assert list(m["f1"].values()) == pytest.approx([0.5, 0.8, 0.0])
    assert m["macro_f1"] == pytest.approx((0.5 + 0.8 + 0.0) / 3)
    assert m["per_source_accuracy"] == pytest.approx({"a": 0.5, "b": 2 / 3})


def test_a_class_without_images_is_left_out_of_the_macro_f1_and_no_images_give_zero():
    m = classification_metrics(np.array([0, 1]), np.array([0, 2]), ["a", "a"])
    assert m["macro_f1"] == pytest.approx(0.5)  # normal 1.0, pneumonia 0.0; covid has no images
    assert m["recall"]["covid"] == 0.0 and m["precision"]["covid"] == 0.0
    empty = classification_metrics(np.array([], int), np.array([], int), [])
    assert empty["accuracy"] == 0.0 and empty["macro_f1"] == 0.0 and empty["n"] == 0
