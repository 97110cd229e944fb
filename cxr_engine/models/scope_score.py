"""An out-of-scope signal for chest films that pass the image checks but are unlike the training films.

The score is the maximum-softmax-probability baseline (Hendrycks & Gimpel, ICLR 2017):
``1 - max(p)`` of the calibrated probabilities, so it needs nothing beyond the prediction every backend
returns. Its threshold is chosen on the validation split (the share of untouched validation films it
may flag) by ``training/scope_score.py`` and recorded in the classifier's card under
:data:`SCORE_KEY`; a card without one gives no signal. What it tells: that the model is unsure between
its three classes on this film, as it rarely is on films like its training data. What it cannot tell:
a film outside the three classes that the model calls confidently (measured on ``cxr_other``: see the
card's ``out_of_scope`` figures and ``training/reports/scope_*``).
"""
from __future__ import annotations

import json
import logging

import numpy as np

logger = logging.getLogger(__name__)

SCORE_KEY = "out_of_scope"
REASON = "uncertain"
WORDS = "the model is unsure between its classes, as it rarely is on films like its training data"


def msp_score(card, logits: np.ndarray) -> np.ndarray:
    """(N, classes) raw logits -> (N,) ``1 - max softmax(logits / card.temperature)``, float64 in [0, 1)."""
    scaled = np.asarray(logits, dtype=np.float64) / card.temperature
    scaled -= scaled.max(axis=1, keepdims=True)
    probabilities = np.exp(scaled) / np.exp(scaled).sum(axis=1, keepdims=True)
    return 1.0 - probabilities.max(axis=1)


def threshold(card) -> float | None:
    """The MSP threshold recorded in ``card``'s JSON (``None`` when the card has none or is unsaved)."""
    if card is None or getattr(card, "path", None) is None:
        return None
    try:
        entry = json.loads(card.path.read_text(encoding="utf-8")).get(SCORE_KEY) or {}
        return float(entry["threshold"]) if entry.get("score") == "msp" else None
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        logger.warning("%s: no usable out-of-scope threshold (%s)", card.path, exc)
        return None


def is_uncertain(probabilities, limit: float | None) -> bool:
    """Whether ``1 - max(probabilities)`` exceeds ``limit`` (never when ``limit`` is None)."""
    return limit is not None and 1.0 - max(probabilities) > limit


def film_out_of_scope(check, prediction, limit: float | None, header=None) -> str:
    """:func:`out_of_scope` of a film from its image checks' verdict (``ImageCheck``; ``None``: not checked)
    and its ``Prediction`` (``None``: not classified), as the app's panel, study tree and PDF need it."""
    return out_of_scope(check.scope_reasons if check is not None else "",
                        prediction.probabilities if prediction is not None else None, limit, header,
                        getattr(prediction, "scope_reasons", ""))


def out_of_scope(check_reasons: str, probabilities, limit: float | None, header=None,
                 head_reasons: str = "") -> str:
    """The ``out_of_scope`` text of one film, the one place the CSV, the summary, the DICOM outputs, the
    app's banner and study tree and the PDF take it from, most specific first: the header's reasons (facts
    the file records)
    (``cxr_engine.models.suitability.header_scope_reasons`` of ``header``, the film's ``ImageMetadata``:
    ``lateral``, ``body-part-not-chest``, ``modality-not-radiograph``, ``age-outside-training``; a string is
    taken as a View Position alone), the image checks' reasons (``ImageCheck.scope_reasons``: a fault the
    head finds likely, else ``atypical-film``), the out-of-scope heads' ``head_reasons``
    (``Prediction.scope_reasons``, ``cxr_engine.models.scope_heads``; left out when the header or the image
    checks already put the film out of scope, as the heads were made for upright frontal chest films of
    the training ages), then :data:`REASON` when the prediction's ``probabilities`` are uncertain past
    ``limit``; ``""`` in scope."""
    from .suitability import header_scope_reasons

    parts = [part for part in (header_scope_reasons(header), check_reasons) if part]
    if head_reasons and not parts:
        parts.append(head_reasons)
    if probabilities is not None and is_uncertain(probabilities, limit):
        parts.append(REASON)
    return ";".join(parts)
