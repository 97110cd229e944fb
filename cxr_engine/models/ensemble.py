"""An averaged model (an "ensemble"): its members' classifiers run on one backend, their outputs combined.

For an image, member m gives raw logits ``l_m`` (before its own temperature). The ensemble's logits are
the weighted mean of the members' log-probabilities plus the ensemble's offsets,

    z = Σ_m w_m · log_softmax(l_m) / Σ_m w_m + logit_offsets,

and its probabilities ``softmax(z / T)`` with the ensemble card's own temperature T: a weighted
geometric mean of the members' temperature-1 probabilities (logarithmic opinion pooling; Hinton,
"Training products of experts", Neural Computation 2002), recalibrated. The members' own temperatures
and offsets are not used.

Heat-map: each member's Grad-CAM for the ensemble's class, in the image's rows × columns; their weighted
mean min-max scaled to [0, 1] as a single model's (pytorch-grad-cam's ``scale_cam_image``).

Members that disagree: each member's own top class (of its logits) is kept with the ensemble's prediction
(``Prediction.member_calls``); where they differ, :func:`disagreement_note` says so with how often the average
was right on such validation films (the card's ``member_agreement``, ``training.member_agreement``).

Out of scope: the probability score (``scope_score``) reads the ensemble's probabilities and its card's
own threshold; the out-of-scope heads (``scope_heads``) are each member's own, applied to that member's
pooled features, and a film is flagged when any member's head flags it (reasons in member order,
each once).
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

from ..pixels.image import CxrImage
from .classifier import HeatmapResult, Prediction
from .ensemble_card import EnsembleCard
from .scope_heads import film_reasons


def log_softmax(logits: np.ndarray) -> np.ndarray:
    """(..., K) logits -> float64 log-probabilities along the last axis."""
    x = np.asarray(logits, dtype=np.float64)
    x = x - x.max(axis=-1, keepdims=True)
    return x - np.log(np.exp(x).sum(axis=-1, keepdims=True))


def ensemble_logits(member_logits: Sequence[np.ndarray], weights: Sequence[float],
                    offsets: Sequence[float]) -> np.ndarray:
    """The ensemble's logits z (float64, shape of each member's (N, K) or (K,) raw logits):
    ``Σ w_m · log_softmax(l_m) / Σ w_m + offsets``. A member's logits may be shifted by any constant
    per image (e.g. its log-probabilities times its temperature): log_softmax removes it."""
    w = np.asarray(weights, dtype=np.float64)
    stacked = np.stack([log_softmax(logits) for logits in member_logits])
    mean = np.tensordot(w, stacked, axes=1) / w.sum()
    return mean + np.asarray(offsets, dtype=np.float64)


def probabilities(z: np.ndarray, temperature: float) -> np.ndarray:
    """``softmax(z / temperature)`` along the last axis, float64."""
    return np.exp(log_softmax(np.asarray(z, dtype=np.float64) / temperature))


def mean_heatmap(heatmaps: Sequence[np.ndarray], weights: Sequence[float]) -> np.ndarray:
    """The members' heat-maps (each float32 rows × columns of the same image) averaged with ``weights``:
    float32, before scaling."""
    w = np.asarray(weights, dtype=np.float64)
    return (np.tensordot(w, np.stack([np.asarray(h, dtype=np.float64) for h in heatmaps]), axes=1)
            / w.sum()).astype(np.float32)


def scaled_heatmap(heatmap: np.ndarray) -> np.ndarray:
    """pytorch-grad-cam's min-max scaling of one map, ``(x − min) / (1e-7 + max(x − min))``: float32 in [0, 1]."""
    shifted = np.asarray(heatmap, dtype=np.float32) - np.min(heatmap)
    return np.clip(shifted / (np.float32(1e-7) + np.max(shifted)), 0.0, 1.0).astype(np.float32)


def merged_reasons(reasons: Sequence[str]) -> str:
    """``;``-joined reasons of several members, each once, in first-seen order (``""`` when none)."""
    seen: list[str] = []
    for text in reasons:
        for reason in filter(None, text.split(";")):
            if reason not in seen:
                seen.append(reason)
    return ";".join(seen)


class EnsembleClassifier:
    """An ensemble card's classifier with every classifier's interface (``loading.load_classifier``):
    ``card``, ``name``, ``classes``, ``device``, ``device_description()``, ``load()``,
    ``predict(images)``, ``predict_with_heatmap(image, target_class)``, ``logits_and_features(images)``
    and ``close()``. ``members`` are the members' classifiers, in the card's member order, all on one
    backend and device; thread safety is theirs (each serialises its own model).

    ``Prediction`` carries probabilities, not logits: ``logits_and_features`` gives z (see the module).
    """

    load_warning: str = ""

    def __init__(self, card: EnsembleCard, members: Sequence):
        if len(members) != len(card.members):
            raise ValueError(f"{card.name}: {len(card.members)} members in the card, {len(members)} classifiers")
        self.card = card
        self.members = list(members)

    @property
    def name(self) -> str:
        return self.card.name

    @property
    def classes(self) -> tuple[str, ...]:
        return tuple(self.card.classes)

    @property
    def device(self) -> str:
        """The members' device (resolving, and for torch refusing, each member's)."""
        return [member.device for member in self.members][0]

    def device_description(self) -> str:
        descriptions = list(dict.fromkeys(member.device_description() for member in self.members))
        return f"{'; '.join(descriptions)}, {len(self.members)} models averaged"

    def load(self) -> "EnsembleClassifier":
        """Load and verify every member now (otherwise the first prediction does it)."""
        for member in self.members:
            member.load()
        return self

    def logits_and_features(self, images: Sequence[CxrImage | np.ndarray]) -> tuple[np.ndarray, None]:
        """(N, classes) float64 ensemble logits z for ``images`` (see the module) and ``None``: the
        members' pooled features differ in size, so the ensemble has none of its own."""
        z, _, _ = self._combined(images)
        return z, None

    def _combined(self, images) -> tuple[np.ndarray, list[str], list[np.ndarray]]:
        outputs = [member.logits_and_features(images) for member in self.members]
        member_logits = [np.asarray(logits) for logits, _ in outputs]
        z = ensemble_logits(member_logits, self.card.member_weights, self.card.logit_offsets)
        reasons = []
        for i, image in enumerate(images):
            reasons.append(merged_reasons([
                film_reasons(member.card, None if pooled is None else pooled[i], image)
                for member, (_, pooled) in zip(self.members, outputs)]))
        return z, reasons, member_logits

    def _prediction(self, z: np.ndarray, reasons: str, member_logits: Sequence[np.ndarray]) -> Prediction:
        """The ensemble's prediction from its logits ``z`` (K,) and each member's (K,) logits (their top classes)."""
        probs = probabilities(z, self.card.temperature)
        calls = tuple((member.name, self.classes[int(np.argmax(logits))])
                      for member, logits in zip(self.members, member_logits))
        return Prediction(self.classes, tuple(float(p) for p in probs), self.card.name, reasons, calls)

    def predict(self, images: Sequence[CxrImage | np.ndarray]) -> list[Prediction]:
        """The ensemble's probabilities for each image, in order; ``NoImageContentError`` when one holds no image."""
        if not images:
            return []
        z, reasons, member_logits = self._combined(images)
        return [self._prediction(row, why, [logits[i] for logits in member_logits])
                for i, (row, why) in enumerate(zip(z, reasons))]

    def predict_with_heatmap(self, image: CxrImage | np.ndarray, target_class: str | None = None) -> HeatmapResult:
        """The ensemble's prediction and heat-map for ``target_class`` (default: the ensemble's top class):
        each member's Grad-CAM for that class, weighted mean, min-max scaled; float32 in the image's
        rows × columns, in [0, 1]."""
        results = [member.predict_with_heatmap(image, target_class) for member in self.members]
        # A member's probabilities are softmax(l / T_m): T_m · log p equals l up to a constant per image.
        member_logits = [member.card.temperature * np.log(np.maximum(np.asarray(r.prediction.probabilities), 1e-300))
                         for member, r in zip(self.members, results)]
        z = ensemble_logits(member_logits, self.card.member_weights, self.card.logit_offsets)
        target = target_class or self.classes[int(np.argmax(z))]
        results = [r if r.target_class == target else member.predict_with_heatmap(image, target)
                   for member, r in zip(self.members, results)]
        heatmap = scaled_heatmap(mean_heatmap([r.heatmap for r in results], self.card.member_weights))
        prediction = self._prediction(z, merged_reasons([r.prediction.scope_reasons for r in results]), member_logits)
        return HeatmapResult(heatmap, target, prediction)

    def close(self) -> None:
        """Close every member."""
        for member in self.members:
            member.close()


def members_disagree(member_calls) -> bool:
    """Whether an averaged model's members' own top classes differ (``Prediction.member_calls``: ``((name,
    class), ...)``; ``()`` for a single network: no)."""
    return len({cls for _, cls in member_calls or ()}) > 1


#: How every :func:`disagreement_note` begins: what tells it apart among a film's warnings
#: (:func:`is_disagreement_note`).
DISAGREEMENT_PREFIX = "the averaged networks disagree on this film ("


def disagreement_note(card, prediction: Prediction, out_of_scope: str = "") -> str:
    """The note for a film whose averaged networks' own top classes differ (``prediction.member_calls``), with
    how often the average was right on such films when ``card`` (an ``EnsembleCard``) has the figures
    (``member_agreement``, validation and test) and the film is not outside the model's scope (``out_of_scope``
    with a firm banner: no validation figure speaks for it): "the averaged networks disagree on this film
    (efficientnet-lite0: Pneumonia, efficientnet-b1: COVID-19): such calls were right less often than the
    calibration line's figures, which count all films (55 % of 118 validation and 76 % of 130 test films,
    against 96 % where the networks agreed)". ``""`` when they agree or the model is a single network."""
    from ..display_text import format_percent
    from .image_checks import banner_is_firm
    from .model_card import CLASS_DISPLAY_NAMES

    calls = prediction.member_calls
    if not members_disagree(calls):
        return ""
    named = ", ".join(f"{name}: {CLASS_DISPLAY_NAMES.get(cls, cls)}" for name, cls in calls)  # the CSV joins by "; "
    note = f"{DISAGREEMENT_PREFIX}{named})"
    figures = getattr(card, "member_agreement", None) or {}
    splits = [(figures.get("split", "val"), figures), ("test", figures.get("test") or {})]
    rates = [f"{format_percent(f['right_when_disagree'], 0)} of {f['disagree']:,} {SPLIT_WORDS.get(name, name)}"
             for name, f in splits if isinstance(f.get("disagree"), int) and isinstance(f.get("right_when_disagree"), float)]
    agreed = figures.get("right_when_agree")
    if rates and isinstance(agreed, float) and not (out_of_scope and banner_is_firm(out_of_scope)):
        note += (f": such calls were right less often than the calibration line's figures, which count all films "
                 f"({' and '.join(rates)} films, against {format_percent(agreed, 0)} where the networks agreed)")
    return note


SPLIT_WORDS = {"val": "validation", "test": "test"}


def disagreement_words(prediction: Prediction) -> str:
    """:func:`disagreement_note` in a few words, for where a line is all there is room for (a ``*_cam.png``'s
    caption): "the two networks disagree (Pneumonia vs COVID-19)", each class once in member order; ``""`` when
    they agree or the model is a single network."""
    from .model_card import CLASS_DISPLAY_NAMES

    calls = tuple(getattr(prediction, "member_calls", ()) or ())
    if not members_disagree(calls):
        return ""
    called = list(dict.fromkeys(cls for _, cls in calls))
    networks = "the two networks" if len(calls) == 2 else "the averaged networks"
    return f"{networks} disagree ({' vs '.join(CLASS_DISPLAY_NAMES.get(cls, cls) for cls in called)})"


def is_disagreement_note(warning: str) -> bool:
    """Whether ``warning``, one of a film's warnings (``image_checks.film_warnings``), is the averaged networks'
    :func:`disagreement_note`: a note on the model's result, not an image check (the PDF shows it under the
    probabilities; the CSV and the DICOM outputs keep it among the warnings)."""
    return warning.startswith(DISAGREEMENT_PREFIX)
