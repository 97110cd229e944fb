"""What every inference backend shares: results, the model input, probabilities and heat-map geometry.

Imports numpy only (no torch, no OpenCV), so that torch-free backends can use it.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from ..pixels.content import require_content
from ..pixels.image import CxrImage
from ..pixels.input_frame import InputFrame, input_frame
from ..pixels.overlay import shown_heat
from .model_card import CLASS_DISPLAY_NAMES, ModelCard
from ..pixels.preprocessing import PREPROCESSING_VERSION, normalise, resize_and_stretch
from ..pixels.resampling import resize_bilinear


@dataclass(frozen=True)
class Prediction:
    """Calibrated class probabilities for one image."""

    classes: tuple[str, ...]
    probabilities: tuple[float, ...]
    model_name: str
    #: The out-of-scope heads' reasons on the classifier's pooled features (``cxr_engine.models.scope_heads``;
    #: ``""`` when none is flagged or the card has no heads).
    scope_reasons: str = ""
    #: An averaged model's members and each one's own top class, in member order (``((name, class), ...)``;
    #: ``()`` for a single network): ``cxr_engine.models.ensemble.disagreement_note``.
    member_calls: tuple[tuple[str, str], ...] = ()

    @property
    def index(self) -> int:
        return int(np.argmax(self.probabilities))

    @property
    def label(self) -> str:
        return self.classes[self.index]

    @property
    def display_label(self) -> str:
        return CLASS_DISPLAY_NAMES.get(self.label, self.label)

    def probability(self, cls: str) -> float:
        return self.probabilities[self.classes.index(cls)]

    def as_dict(self) -> dict[str, float]:
        return dict(zip(self.classes, self.probabilities))


@dataclass(frozen=True)
class HeatmapResult:
    """A Grad-CAM heat-map in the image's own geometry (rows, columns of ``CxrImage.shape``).

    ``heatmap`` is float32 in [0, 1]: pytorch-grad-cam's ReLU'd map min-max scaled per image,
    so it shows where evidence for ``target_class`` is relatively strongest within this image;
    values are not comparable across images.
    """

    heatmap: np.ndarray
    target_class: str
    prediction: Prediction

    def shown(self) -> np.ndarray:
        """The map as the app, the PDF and every exported overlay colour it: float32 (H, W), ``heatmap`` times
        the probability of ``target_class`` (``cxr_engine.pixels.overlay.shown_heat``), so that a class the
        model gives 2 % shows no colour and maps compare between classes and films."""
        return shown_heat(self.heatmap, self.prediction.probability(self.target_class))


def display_of(image: CxrImage | np.ndarray) -> np.ndarray:
    """The presentation values of a ``CxrImage`` (``CxrImage.display()``), or ``image`` itself when it
    already is such an array."""
    return image.display() if isinstance(image, CxrImage) else image


def unnormalised_input_in_frame(image: CxrImage | np.ndarray, size: int, display: np.ndarray | None = None,
                                version: str = PREPROCESSING_VERSION, frame: InputFrame | None = None
                                ) -> tuple[np.ndarray, InputFrame]:
    """Preprocessing ``version`` up to step 3 for one image, the model input before normalisation:
    ((size, size) float32 greyscale in [0, 1], the frame it was made from).

    ``display`` is ``image``'s presentation values when the caller already has them; ``frame`` the image's
    frame when already decided (else :func:`cxr_engine.pixels.input_frame.input_frame`: the whole image for
    cxr-pre-1, the lung box for cxr-pre-2). A ``CxrImage``'s padding is left out of the contrast
    stretch (``cxr_engine.pixels.preprocessing``). ``ValueError`` for an unknown version.
    """
    display = display_of(image) if display is None else display
    padding = image.padding if isinstance(image, CxrImage) else None
    frame = input_frame(image, version, display) if frame is None else frame
    return resize_and_stretch(frame.crop(display), size, frame.crop(padding)), frame


def unnormalised_input(image: CxrImage | np.ndarray, size: int, display: np.ndarray | None = None,
                       version: str = PREPROCESSING_VERSION) -> np.ndarray:
    """Preprocessing ``version`` (default cxr-pre-1, the whole image) up to step 3 for one image, the
    model input before normalisation: (size, size) float32 greyscale in [0, 1]. Training, its evaluation's shifted and masked test
    images and inference all start from this (:func:`unnormalised_input_in_frame`)."""
    return unnormalised_input_in_frame(image, size, display, version)[0]


def model_input_in_frame(card: ModelCard, image: CxrImage | np.ndarray, display: np.ndarray | None = None
                         ) -> tuple[np.ndarray, InputFrame]:
    """The (in_chans, size, size) float32 model input for one image as ``card`` defines it (its
    ``preprocessing_version``; step 4, ``normalise``, after :func:`unnormalised_input_in_frame`), and the
    frame it was made from."""
    grey, frame = unnormalised_input_in_frame(image, card.input_size, display, card.preprocessing_version)
    return normalise(grey, tuple(card.mean), tuple(card.std), card.in_chans), frame


def model_input(card: ModelCard, image: CxrImage | np.ndarray, display: np.ndarray | None = None) -> np.ndarray:
    """The (in_chans, size, size) float32 model input for one image, as ``card`` defines it."""
    return model_input_in_frame(card, image, display)[0]


def prediction_from_logits(card: ModelCard, logits: np.ndarray, features: np.ndarray | None = None,
                           image: CxrImage | np.ndarray | None = None) -> Prediction:
    """Softmax of ``logits / card.temperature`` (computed in float64) as a ``Prediction``; with the
    image's (C,) pooled ``features`` its ``scope_reasons`` are the card's out-of-scope heads' reasons
    (``cxr_engine.models.scope_heads``; ``image`` gives the header's age)."""
    from .scope_heads import film_reasons

    scaled = np.asarray(logits, dtype=np.float64) / card.temperature
    scaled -= scaled.max()
    probs = np.exp(scaled) / np.exp(scaled).sum()
    return Prediction(tuple(card.classes), tuple(float(p) for p in probs), card.name,
                      film_reasons(card, features, image))


def heatmap_in_image_geometry(input_heatmap: np.ndarray, image_shape: tuple[int, ...],
                              box: tuple[int, int, int, int] | None = None) -> np.ndarray:
    """A model-input-sized [0, 1] map in the image's own pixel grid: float32 ``image_shape[:2]``, clipped
    to [0, 1].

    ``box`` (row0, col0, row1, col1; ends exclusive) is where the model input was cropped from
    (``InputFrame.box``; cxr-pre-2's lung box): the map is resized (bilinear) to the box and placed in
    it, zero outside. Without a box, or with the whole image's, it is resized to the whole image.
    """
    height, width = image_shape[:2]
    r0, c0, r1, c1 = box if box is not None else (0, 0, height, width)
    resized = resize_bilinear(np.asarray(input_heatmap, dtype=np.float32), r1 - r0, c1 - c0)
    if (r0, c0, r1, c1) == (0, 0, height, width):
        return np.clip(resized, 0.0, 1.0)
    heatmap = np.zeros((height, width), dtype=np.float32)
    heatmap[r0:r1, c0:c1] = np.clip(resized, 0.0, 1.0)
    return heatmap


def heatmap_at_full_resolution(result: HeatmapResult, reduction: int, shape: tuple[int, int]) -> HeatmapResult:
    """``result``, computed on a film decoded ``reduction`` times smaller each way (``CxrImage.reduction``;
    ``cxr_engine.reading.reduced_decode``), with its heat-map on the film's full-resolution pixel grid
    ``shape`` (rows, columns): the same prediction and class, the map float32 in [0, 1].

    Decoded pixel ``i`` covers full pixels ``[i·f, (i+1)·f)``, so the map is resized (bilinear, pixel
    centres aligned) to ``ceil(rows / f)·f × ceil(columns / f)·f`` and cut to ``shape``. ``result``
    itself when it already has that shape. ``ValueError`` when the map is not the reduced grid of ``shape``.
    """
    rows, cols = int(shape[0]), int(shape[1])
    if result.heatmap.shape[:2] == (rows, cols):
        return result
    factor = int(reduction)
    reduced = (-(-rows // factor), -(-cols // factor))
    if factor < 1 or result.heatmap.shape[:2] != reduced:
        raise ValueError(f"a {result.heatmap.shape[:2]} heat-map is not the ×{reduction} reduced grid of {(rows, cols)}")
    enlarged = resize_bilinear(np.asarray(result.heatmap, dtype=np.float32), reduced[0] * factor, reduced[1] * factor)
    heatmap = np.ascontiguousarray(np.clip(enlarged[:rows, :cols], 0.0, 1.0))
    return HeatmapResult(heatmap, result.target_class, result.prediction)


class CardBackedClassifier:
    """What every backend's classifier derives from its model card: name, classes, model input."""

    card: ModelCard
    #: Why the classifier runs elsewhere than asked (``load_classifier``'s CPU fallback); "" when it does not.
    load_warning: str = ""

    @property
    def name(self) -> str:
        return self.card.name

    @property
    def classes(self) -> tuple[str, ...]:
        return tuple(self.card.classes)

    def preprocess(self, image: CxrImage | np.ndarray, display: np.ndarray | None = None) -> np.ndarray:
        """The model input for one image (``CxrImage`` or a [0, 1] / uint8 array of presentation values);
        ``display`` is its presentation values when already computed. ``NoImageContentError`` for a
        ``CxrImage`` that holds no image (``cxr_engine.pixels.content``): it gets no class."""
        require_content(image)
        return model_input(self.card, image, display)

    def prepare(self, image: CxrImage | np.ndarray, display: np.ndarray | None = None
                ) -> tuple[np.ndarray, InputFrame]:
        """The model input for one image and the frame it was made from (where its heat-map goes);
        ``NoImageContentError`` as :meth:`preprocess`."""
        require_content(image)
        return model_input_in_frame(self.card, image, display)

    def predict(self, images: Sequence[CxrImage | np.ndarray]) -> list[Prediction]:
        """Probabilities for each image, in order (one batched pass through the backend);
        ``NoImageContentError`` when one of them holds no image (``classify_files`` leaves those out)."""
        if not images:
            return []
        logits, pooled = self.logits_and_features(images)
        if pooled is None:
            return [prediction_from_logits(self.card, row) for row in logits]
        return [prediction_from_logits(self.card, row, features, image)
                for row, features, image in zip(logits, pooled, images)]

    def logits_and_features(self, images: Sequence[CxrImage | np.ndarray]) -> tuple[np.ndarray, np.ndarray | None]:
        """For one or more images: (N, classes) float32 raw logits (before the card's temperature) and
        (N, C) float32 pooled features (``None`` from a backend without them), one batched pass;
        ``NoImageContentError`` as :meth:`predict`."""
        return self._logits_and_features(np.stack([self.preprocess(image) for image in images]))

    def _logits(self, batch: np.ndarray) -> np.ndarray:
        """(B, classes) raw logits for a preprocessed batch; each backend runs its own model."""
        raise NotImplementedError

    def _logits_and_features(self, batch: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        """(B, classes) raw logits and (B, C) pooled features (the Grad-CAM layer's map averaged over
        space; ``None`` from a backend that does not give them) for a preprocessed batch."""
        return self._logits(batch), None

    def _target_index(self, logits: np.ndarray, target_class: str | None) -> int:
        """The heat-map's class: ``target_class``, or the predicted one when it is None."""
        return int(np.argmax(logits)) if target_class is None else self.classes.index(target_class)
