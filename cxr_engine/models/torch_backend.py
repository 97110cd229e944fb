"""Classification and Grad-CAM for one image or a batch, on CUDA when present, else the CPU."""
from __future__ import annotations

import logging
import threading

import numpy as np

from ..pixels.image import CxrImage
from ..spawning import SYS_PATH_LOCK
from .model_card import ModelCard
from .classifier import (
    HeatmapResult,
    CardBackedClassifier,
    Prediction,
    display_of,
    heatmap_in_image_geometry,
    prediction_from_logits,
)
from .registry import get_architecture, resolve_layer

__all__ = ["HeatmapResult", "Classifier", "Prediction", "resolve_device"]

logger = logging.getLogger(__name__)


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


class Classifier(CardBackedClassifier):
    """A bundled model ready to classify; loads lazily and is safe to share between threads.

    One lock serialises model use: torch modules with Grad-CAM hooks are not re-entrant.
    """

    def __init__(self, card: ModelCard, device: str = "auto", model=None):
        self.card = card
        self.requested_device = device
        self._model = model
        self._device: str | None = None
        self._grad_cam = None
        self._lock = threading.RLock()

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
            if self._grad_cam is not None:
                return self
            with SYS_PATH_LOCK:  # it imports OpenCV, whose loader edits sys.path (see cxr_engine.spawning)
                from pytorch_grad_cam import GradCAM

            from .weights import load_model

            if self._model is None:
                self._model = load_model(self.card)
                logger.info("loaded model %s on %s", self.card.name, self.device)
            self._model = self._model.eval().to(self.device)
            layer = resolve_layer(self._model, get_architecture(self.card.architecture).grad_cam_layer)
            # One GradCAM object for the classifier's life: its hooks are registered once, here.
            self._grad_cam = GradCAM(model=self._model, target_layers=[layer])
        return self

    def _logits(self, batch: np.ndarray) -> np.ndarray:
        return self._logits_and_features(batch)[0]

    def _logits_and_features(self, batch: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        import torch

        with self._lock:
            self.load()
            with torch.no_grad():
                # Calling through GradCAM's wrapper resets its activation buffers each time,
                # so a forward pass without a heat-map never grows them.
                logits = self._grad_cam.activations_and_grads(torch.from_numpy(batch).to(self.device))
            pooled = _pooled(self._grad_cam.activations_and_grads.activations)
            self._grad_cam.activations_and_grads.activations = []
        return logits.float().cpu().numpy(), pooled

    def predict_with_heatmap(self, image: CxrImage | np.ndarray, target_class: str | None = None) -> HeatmapResult:
        """Prediction and Grad-CAM heat-map from one forward/backward pass.

        ``target_class`` defaults to the predicted class.
        """
        import torch
        from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

        display = display_of(image)
        batch, frame = self.prepare(image, display)
        tensor = torch.from_numpy(batch[None])
        with self._lock:
            self.load()
            # targets=None lets GradCAM target the predicted class from the same forward pass.
            targets = None if target_class is None else [ClassifierOutputTarget(self.classes.index(target_class))]
            with torch.enable_grad():
                input_heatmaps = self._grad_cam(input_tensor=tensor, targets=targets)
            logits = self._grad_cam.outputs.detach().float().cpu().numpy()
            pooled = _pooled(self._grad_cam.activations_and_grads.activations)
            self._grad_cam.activations_and_grads.activations = []
            self._grad_cam.activations_and_grads.gradients = []
        target_index = self._target_index(logits[0], target_class)
        heatmap = heatmap_in_image_geometry(input_heatmaps[0], display.shape, frame.box)
        prediction = prediction_from_logits(self.card, logits[0], pooled[0], image)
        return HeatmapResult(heatmap, self.classes[target_index], prediction)

    def close(self) -> None:
        """Remove the Grad-CAM hooks and drop the model."""
        with self._lock:
            if self._grad_cam is not None:
                self._grad_cam.activations_and_grads.release()
                self._grad_cam = None
            self._model = None


def _pooled(activations) -> np.ndarray:
    """(B, C) float32: the Grad-CAM layer's (B, C, h, w) activations, as the hooks kept them, averaged over space."""
    return activations[-1].float().mean(dim=(2, 3)).cpu().numpy()
