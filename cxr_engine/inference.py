"""Classification and Grad-CAM for one image or a batch, on CUDA when present, else the CPU."""
from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from .image import CxrImage
from .model_card import CLASS_DISPLAY_NAMES, ModelCard
from .preprocessing import to_model_input
from .registry import get_architecture, resolve_layer

logger = logging.getLogger(__name__)


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


def resolve_device(requested: str = "auto") -> str:
    """``auto`` → ``cuda`` when a GPU is usable, else ``cpu``; anything else is checked and kept."""
    import torch

    if requested == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if requested.startswith("cuda") and not torch.cuda.is_available():
        raise ValueError("CUDA was requested but no usable GPU is present")
    if requested != "cpu" and not requested.startswith("cuda"):
        raise ValueError(f"device must be auto, cpu or cuda[:N], got {requested!r}")
    return requested


class Classifier:
    """A bundled model ready to classify; loads lazily and is safe to share between threads.

    One lock serialises model use: torch modules with Grad-CAM hooks are not re-entrant.
    """

    def __init__(self, card: ModelCard, device: str = "auto", model=None):
        self.card = card
        self.requested_device = device
        self._model = model
        self._device: str | None = None
        self._cam = None
        self._lock = threading.RLock()

    @property
    def name(self) -> str:
        return self.card.name

    @property
    def classes(self) -> tuple[str, ...]:
        return tuple(self.card.classes)

    @property
    def device(self) -> str:
        """The device in use (resolves ``auto`` without loading the model)."""
        if self._device is None:
            self._device = resolve_device(self.requested_device)
        return self._device

    def device_description(self) -> str:
        import torch

        if self.device.startswith("cuda"):
            return f"CUDA ({torch.cuda.get_device_name(torch.device(self.device))})"
        return "CPU"

    def load(self) -> "Classifier":
        """Load and verify the weights now (otherwise the first prediction does it)."""
        with self._lock:
            if self._cam is not None:
                return self
            from pytorch_grad_cam import GradCAM

            from .weights import load_model

            if self._model is None:
                self._model = load_model(self.card)
                logger.info("loaded model %s on %s", self.card.name, self.device)
            self._model = self._model.eval().to(self.device)
            layer = resolve_layer(self._model, get_architecture(self.card.architecture).cam_layer)
            # One CAM object for the classifier's life: its hooks are registered once, here.
            self._cam = GradCAM(model=self._model, target_layers=[layer])
        return self

    def preprocess(self, image: CxrImage | np.ndarray) -> np.ndarray:
        """The model input for one image (``CxrImage`` or a [0, 1] / uint8 display array)."""
        display = image.display() if isinstance(image, CxrImage) else image
        card = self.card
        return to_model_input(display, card.input_size, tuple(card.mean), tuple(card.std), card.in_chans)

    def predict(self, images: Sequence[CxrImage | np.ndarray]) -> list[Prediction]:
        """Probabilities for each image, in order (one batched forward pass)."""
        if not images:
            return []
        import torch

        batch = np.stack([self.preprocess(image) for image in images])
        with self._lock:
            self.load()
            with torch.no_grad():
                # Calling through the CAM's wrapper resets its activation buffers each time,
                # so a forward pass without CAM never grows them.
                logits = self._cam.activations_and_grads(torch.from_numpy(batch).to(self.device))
            self._cam.activations_and_grads.activations = []
        return [self._prediction(row) for row in logits.float().cpu().numpy()]

    def predict_with_cam(self, image: CxrImage | np.ndarray, target_class: str | None = None) -> CamResult:
        """Prediction and Grad-CAM heat-map from one forward/backward pass.

        ``target_class`` defaults to the predicted class.
        """
        import cv2
        import torch
        from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

        display = image.display() if isinstance(image, CxrImage) else image
        tensor = torch.from_numpy(self.preprocess(display)[None])
        with self._lock:
            self.load()
            # targets=None lets the CAM target the predicted class from the same forward pass.
            targets = None if target_class is None else [ClassifierOutputTarget(self.classes.index(target_class))]
            with torch.enable_grad():
                cams = self._cam(input_tensor=tensor, targets=targets)
            logits = self._cam.outputs.detach().float().cpu().numpy()
            self._cam.activations_and_grads.activations = []
            self._cam.activations_and_grads.gradients = []
        target_index = int(np.argmax(logits[0])) if target_class is None else self.classes.index(target_class)
        height, width = display.shape[:2]
        heatmap = cv2.resize(cams[0].astype(np.float32), (width, height), interpolation=cv2.INTER_LINEAR)
        heatmap = np.clip(heatmap, 0.0, 1.0)
        return CamResult(heatmap, self.classes[target_index], self._prediction(logits[0]))

    def _prediction(self, logits: np.ndarray) -> Prediction:
        scaled = logits.astype(np.float64) / self.card.temperature
        scaled -= scaled.max()
        probs = np.exp(scaled) / np.exp(scaled).sum()
        return Prediction(self.classes, tuple(float(p) for p in probs), self.card.name)

    def close(self) -> None:
        """Remove the Grad-CAM hooks and drop the model."""
        with self._lock:
            if self._cam is not None:
                self._cam.activations_and_grads.release()
                self._cam = None
            self._model = None
