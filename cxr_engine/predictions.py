"""What every inference backend shares: results, the model input, probabilities and heat-map geometry.

Imports numpy only at module level (cv2 lazily), so that torch-free backends can use it.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from .image import CxrImage
from .model_card import CLASS_DISPLAY_NAMES, ModelCard
from .preprocessing import normalise, standardise


@dataclass(frozen=True)
class Prediction:
    """Calibrated class probabilities for one image."""

    classes: tuple[str, ...]
    probabilities: tuple[float, ...]
    model_name: str

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
class CamResult:
    """A Grad-CAM heat-map in the image's own geometry (rows, columns of ``CxrImage.shape``).

    ``heatmap`` is float32 in [0, 1]: pytorch-grad-cam's ReLU'd map min-max scaled per image,
    so it shows where evidence for ``target_class`` is relatively strongest within this image;
    values are not comparable across images.
    """

    heatmap: np.ndarray
    target_class: str
    prediction: Prediction


def display_of(image: CxrImage | np.ndarray) -> np.ndarray:
    """The display array of a ``CxrImage``, or ``image`` itself when it already is one."""
    return image.display() if isinstance(image, CxrImage) else image


def standardised(image: CxrImage | np.ndarray, size: int, display: np.ndarray | None = None) -> np.ndarray:
    """Preprocessing steps 1–3 for one image: (size, size) float32 greyscale in [0, 1].

    ``display`` is ``image``'s display array when the caller already has it. A ``CxrImage``'s
    padding is left out of the contrast stretch (``cxr_engine.preprocessing``). Training, its
    evaluation's shifted and masked test images and inference all start from this.
    """
    display = display_of(image) if display is None else display
    padding = image.padding if isinstance(image, CxrImage) else None
    return standardise(display, size, padding)


def model_input(card: ModelCard, image: CxrImage | np.ndarray, display: np.ndarray | None = None) -> np.ndarray:
    """The (in_chans, size, size) float32 model input for one image, as ``card`` defines it (step 4,
    ``normalise``, after :func:`standardised`)."""
    return normalise(standardised(image, card.input_size, display), tuple(card.mean), tuple(card.std), card.in_chans)


def prediction_from_logits(card: ModelCard, logits: np.ndarray) -> Prediction:
    """Softmax of ``logits / card.temperature`` (computed in float64) as a ``Prediction``."""
    scaled = np.asarray(logits, dtype=np.float64) / card.temperature
    scaled -= scaled.max()
    probs = np.exp(scaled) / np.exp(scaled).sum()
    return Prediction(tuple(card.classes), tuple(float(p) for p in probs), card.name)


def heatmap_in_image_geometry(cam: np.ndarray, image_shape: tuple[int, ...]) -> np.ndarray:
    """A model-input-sized [0, 1] map resized (bilinear) to ``image_shape[:2]``; float32, clipped to [0, 1]."""
    import cv2

    height, width = image_shape[:2]
    heatmap = cv2.resize(np.asarray(cam, dtype=np.float32), (width, height), interpolation=cv2.INTER_LINEAR)
    return np.clip(heatmap, 0.0, 1.0)


class CardBackedClassifier:
    """What every backend's classifier derives from its model card: name, classes, model input."""

    card: ModelCard

    @property
    def name(self) -> str:
        return self.card.name

    @property
    def classes(self) -> tuple[str, ...]:
        return tuple(self.card.classes)

    def preprocess(self, image: CxrImage | np.ndarray, display: np.ndarray | None = None) -> np.ndarray:
        """The model input for one image (``CxrImage`` or a [0, 1] / uint8 display array);
        ``display`` is its display array when already computed."""
        return model_input(self.card, image, display)

    def predict(self, images: Sequence[CxrImage | np.ndarray]) -> list[Prediction]:
        """Probabilities for each image, in order (one batched pass through the backend)."""
        if not images:
            return []
        batch = np.stack([self.preprocess(image) for image in images])
        return [prediction_from_logits(self.card, row) for row in self._logits(batch)]

    def _logits(self, batch: np.ndarray) -> np.ndarray:
        """(B, classes) raw logits for a preprocessed batch; each backend runs its own model."""
        raise NotImplementedError

    def _target_index(self, logits: np.ndarray, target_class: str | None) -> int:
        """The heat-map's class: ``target_class``, or the predicted one when it is None."""
        return int(np.argmax(logits)) if target_class is None else self.classes.index(target_class)
