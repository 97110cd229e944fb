"""Small heads on the classifier's pooled features that say a chest film is outside what it knows.

Two logistic-regression heads read the classifier's last feature map averaged over space (the layer its
Grad-CAM reads; (C,) float32, ``Prediction.features``):

- ``other-findings``: the film looks like the adult films radiologists read as abnormal without
  pneumonia-like opacity (devices, enlarged heart, effusion, nodules, scarring: the RSNA "No Lung
  Opacity / Not Normal" films of ``cxr_other``), which the three classes cannot name. Outlier exposure
  (Hendrycks et al., ICLR 2019): fitted on training films against a third of ``cxr_other``.
- ``child-chest``: the film looks like a young child's chest. Applied only when the header gives no
  Patient's Age (0010,1010) or Patient's Birth Date (0010,0030); with an age, the header's own
  warning says whether the age is one the model was trained on (``cxr_engine.models.suitability``).

Each head is ``sigmoid(((x - mean) / scale) · w + b)``; a film is flagged when the logit passes the
head's threshold, chosen on the validation split by ``training/scope_heads.py`` (which also measures
what the heads can and cannot tell: see the card's ``scope_heads`` entry and its report). The
parameters are plain JSON arrays in a file beside the classifier's card, checked against the sha256 in
the card (no pickle) and applied with numpy, so the heads run in the torch-free bundle. A card without
a ``scope_heads`` entry, or whose parameters fail the check (logged once), gives no reasons.
"""
from __future__ import annotations

import json
import logging
import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import ModelError
from .weights import verified_bytes

logger = logging.getLogger(__name__)

CARD_KEY = "scope_heads"
#: The parameters file beside the card: ``<card name>.scope-heads`` (JSON text, not named ``.json``: the
#: models folder's ``*.json`` are cards).
PARAMS_SUFFIX = ".scope-heads"
FORMAT = "cxr-scope-heads-1"
OTHER_FINDINGS = "other-findings"
CHILD = "child-chest"
#: Plain words for each head's reason (the banner, the PDF, the heat-map legend).
WORDS = {
    OTHER_FINDINGS: "looks like a film with findings outside the three classes (such as devices, an enlarged "
                    "heart, effusion, nodules or scarring)",
    CHILD: "looks like a child's chest and the file gives no patient age (the model knows children aged 1–5 "
           "from one hospital only)",
}


@dataclass(frozen=True)
class Head:
    """One logistic-regression head: ``mean``, ``scale`` and ``weights`` (C,) float32, ``bias`` and
    ``threshold`` on the logit."""

    mean: np.ndarray
    scale: np.ndarray
    weights: np.ndarray
    bias: float
    threshold: float

    def logits(self, features: np.ndarray) -> np.ndarray:
        """(N, C) or (C,) pooled features -> (N,) or () float64 logits (flagged above ``threshold``)."""
        x = (np.asarray(features, dtype=np.float32) - self.mean) / self.scale
        return x.astype(np.float64) @ self.weights.astype(np.float64) + self.bias


@dataclass(frozen=True)
class ScopeHeads:
    """The heads of one classifier, in reason order."""

    heads: dict[str, Head]

    @classmethod
    def from_json(cls, text: str | bytes, dims: int, where: object) -> "ScopeHeads":
        """Parse the parameters file; ``ModelError`` when it is not one, or made for another feature size."""
        try:
            data = json.loads(text)
            if data.get("format") != FORMAT:
                raise ValueError(f"format is not {FORMAT!r}")
            heads = {}
            for name, h in data["heads"].items():
                arrays = [np.asarray(h[k], dtype=np.float32) for k in ("mean", "scale", "weights")]
                if any(a.shape != (dims,) for a in arrays):
                    raise ValueError(f"head {name!r} is not for {dims} features")
                heads[name] = Head(*arrays, float(h["bias"]), float(h["threshold"]))
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise ModelError(f"{where}: not scope-head parameters ({exc})") from exc
        return cls(heads)

    def to_json(self) -> str:
        """The parameters as JSON (float32 values with 9 significant digits read back exactly)."""
        def values(array) -> list[float]:
            return [float(f"{float(v):.9g}") for v in np.asarray(array, dtype=np.float32)]

        return json.dumps({"format": FORMAT, "heads": {
            name: {"mean": values(h.mean), "scale": values(h.scale), "weights": values(h.weights),
                   "bias": h.bias, "threshold": h.threshold} for name, h in self.heads.items()}}) + "\n"

    def reasons(self, features: np.ndarray, age_known: bool) -> str:
        """One film's (C,) pooled features -> its reasons joined by ``;`` (``""`` when none is flagged);
        ``child-chest`` only when ``age_known`` is False."""
        flagged = [name for name, head in self.heads.items()
                   if (name != CHILD or not age_known) and head.logits(features) > head.threshold]
        return ";".join(flagged)


def entry(card) -> dict | None:
    """The card JSON's ``scope_heads`` entry (``None`` when the card has none or is unsaved)."""
    path = getattr(card, "path", None)
    if path is None:
        return None
    try:
        value = json.loads(Path(path).read_text(encoding="utf-8")).get(CARD_KEY)
    except (OSError, ValueError) as exc:
        logger.warning("%s: cannot read the scope heads' entry (%s)", path, exc)
        return None
    return value if isinstance(value, dict) else None


def load_heads(card) -> ScopeHeads | None:
    """The heads named in ``card`` (parameters checked against its sha256); ``None`` when it names none.
    ``ModelError`` / ``ModelIntegrityError`` when the file is missing, altered or not parameters."""
    value = entry(card)
    if value is None:
        return None
    try:
        params = Path(card.path).parent / value["file"]
        sha256, dims = str(value["sha256"]), int(value["features"])
    except (KeyError, TypeError, ValueError) as exc:
        raise ModelError(f"{card.path}: incomplete {CARD_KEY} entry ({exc})") from exc
    return ScopeHeads.from_json(verified_bytes(params, sha256, "scope-head parameters"), dims, params)


_LOADED: dict[tuple, ScopeHeads | None] = {}
_LOCK = threading.Lock()


def heads_for(card) -> ScopeHeads | None:
    """:func:`load_heads` once per card file (shared, thread-safe); ``None`` when the card names no heads
    or they cannot be used (logged once): the films then get no reasons from them."""
    path = getattr(card, "path", None)
    if path is None:
        return None
    key = (str(path), getattr(card, "weights_sha256", ""))
    with _LOCK:
        if key not in _LOADED:
            try:
                _LOADED[key] = load_heads(card)
            except ModelError as exc:
                logger.warning("out-of-scope heads unavailable: %s", exc)
                _LOADED[key] = None
        return _LOADED[key]


def header_gives_age(metadata) -> bool:
    """Whether the header records Patient's Age (a valid Age String) or Patient's Birth Date."""
    from .suitability import age_in_years

    if metadata is None:
        return False
    return age_in_years(getattr(metadata, "patient_age", "")) is not None or bool(
        (getattr(metadata, "patient_birth_date", "") or "").strip())


def film_reasons(card, features: np.ndarray | None, image=None) -> str:
    """The heads' reasons for one film: ``features`` its (C,) pooled features, ``image`` its ``CxrImage``
    (for the header's age; a bare array has none). ``""`` without features or heads."""
    if features is None:
        return ""
    heads = heads_for(card)
    if heads is None:
        return ""
    return heads.reasons(features, header_gives_age(getattr(image, "metadata", None)))
