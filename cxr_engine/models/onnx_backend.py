"""Classification and exact Grad-CAM with ONNX Runtime; imports numpy and onnxruntime, never torch.

The ONNX file (written by ``training.export_onnx``) maps ``input`` (B, C, S, S) to ``logits``
(B, classes) and ``features`` (B, K, h, w), the activation map of the architecture's Grad-CAM
layer. Every registered architecture ends in global average pooling and one linear layer, so
the gradient of logit c with respect to that map is w_c / (h·w) at every position: Grad-CAM's
channel weights are the class weights divided by the map's area, and the heat-map needs no
autograd. The class weight matrix travels in the file's metadata (``export_metadata``).
"""
from __future__ import annotations

import base64
import json
import logging
import threading
from typing import Sequence

import numpy as np

from ..errors import ModelError
from ..pixels.image import CxrImage
from ..pixels.resampling import resize_bilinear
from .model_card import ModelCard
from .classifier import (
    HeatmapResult,
    CardBackedClassifier,
    display_of,
    heatmap_in_image_geometry,
    prediction_from_logits,
)
from .weights import verified_bytes

logger = logging.getLogger(__name__)

INPUT_NAME, LOGITS_NAME, FEATURES_NAME = "input", "logits", "features"
FORMAT = "cxr-onnx-1"
META_FORMAT = "cxr.format"
META_MODEL = "cxr.model_name"
META_ARCHITECTURE = "cxr.architecture"
#: The metadata key exported files carry (``training.export_onnx``); the bundled models have it.
META_GRAD_CAM_LAYER = "cxr.cam_layer"
META_CLASSES = "cxr.classes"  # JSON list, in logit order
META_WEIGHTS_SHA256 = "cxr.weights_sha256"  # the safetensors the export was made from
META_CLASS_WEIGHTS = "cxr.class_weights"  # base64 of the (classes, K) matrix, little-endian float32
CPU_PROVIDERS = ("CPUExecutionProvider",)


def export_metadata(card: ModelCard, grad_cam_layer: str, class_weights: np.ndarray) -> dict[str, str]:
    """The metadata an export stores for this backend (written by ``training.export_onnx``)."""
    weights = np.ascontiguousarray(class_weights, dtype="<f4")
    return {
        META_FORMAT: FORMAT,
        META_MODEL: card.name,
        META_ARCHITECTURE: card.architecture,
        META_GRAD_CAM_LAYER: grad_cam_layer,
        META_CLASSES: json.dumps(list(card.classes)),
        META_WEIGHTS_SHA256: card.weights_sha256.lower(),
        META_CLASS_WEIGHTS: base64.b64encode(weights.tobytes()).decode("ascii"),
    }


def class_weights_from_metadata(metadata: dict[str, str], card: ModelCard, where: object) -> np.ndarray:
    """The (classes, K) float32 class weight matrix, after checking the export belongs to ``card``."""
    if metadata.get(META_FORMAT) != FORMAT:
        raise ModelError(f"{where}: not a CXR Reader ONNX export ({META_FORMAT} is {metadata.get(META_FORMAT)!r})")
    if metadata.get(META_WEIGHTS_SHA256) != card.weights_sha256.lower():
        raise ModelError(f"{where}: exported from other weights than model card {card.name!r} names; "
                         "export it again with python -m training.export_onnx")
    if json.loads(metadata.get(META_CLASSES, "[]")) != list(card.classes):
        raise ModelError(f"{where}: its classes {metadata.get(META_CLASSES)} differ from the model card's")
    raw = base64.b64decode(metadata.get(META_CLASS_WEIGHTS, ""), validate=True)
    weights = np.frombuffer(raw, dtype="<f4").astype(np.float32)
    if weights.size == 0 or weights.size % len(card.classes):
        raise ModelError(f"{where}: {META_CLASS_WEIGHTS} holds {weights.size} values, not classes × channels")
    return weights.reshape(len(card.classes), -1)


def min_max_scale(heatmap: np.ndarray, size: tuple[int, int] | None = None) -> np.ndarray:
    """pytorch-grad-cam's ``scale_cam_image`` for one map: (x − min) / (1e-7 + max), then
    a bilinear resize as ``cv2.resize``'s default (``resize_bilinear``) to ``size`` = (width, height) when
    given; float32."""
    heatmap = heatmap - np.min(heatmap)
    heatmap = heatmap / (1e-7 + np.max(heatmap))
    if size is not None:
        heatmap = resize_bilinear(np.float32(heatmap), size[1], size[0])
    return np.float32(heatmap)


def grad_cam(
    features: np.ndarray, class_weights: np.ndarray, target_index: int, input_hw: tuple[int, int]
) -> np.ndarray:
    """pytorch-grad-cam's ``GradCAM`` map for one image from its Grad-CAM layer's activations ``features`` (K, h, w).

    Same steps as ``BaseCAM.forward`` with one target layer: channel weights (the mean gradient,
    here w_c / (h·w)), weighted sum over channels, ReLU, min-max scaling and resizing to the model
    input, then the multi-layer aggregation (ReLU, mean over one layer, min-max again). Returns
    float32 (input height, input width) in [0, 1].
    """
    _, height, width = features.shape
    channel_weights = (class_weights[target_index] / np.float32(height * width)).astype(np.float32)
    heatmap = (channel_weights[:, None, None] * features.astype(np.float32, copy=False)).sum(axis=0)
    scaled = min_max_scale(np.maximum(heatmap, 0), (input_hw[1], input_hw[0]))
    return min_max_scale(np.maximum(scaled, 0))


#: The input's (and outputs') batch axis, as ``training.export_onnx`` names it.
BATCH_AXIS = "batch"


def session_options(onnxruntime, one_image_per_run: bool = False):
    """Session options of every classifier session: intra-op threads that have no work sleep
    instead of spinning (ONNX Runtime's default spins), so that the decoding workers running next
    to the model (``cxr_engine.reading.decode_pool``) get the cores between two batches.

    With ``one_image_per_run`` the batch axis is fixed at 1. Every shape is then known when the
    session is made, so ONNX Runtime folds the shape arithmetic of TensorFlow-style "same" padding
    (the ``tf_`` EfficientNets pad each strided convolution by an amount computed from the input's
    shape) into constants, fuses each Pad into its convolution and keeps the network in its blocked
    (NCHWc) layout throughout. About 45 % more films per CPU-second than batches of 8 with a free
    batch axis (``benchmarks/bench_onnx_forward.py``); probabilities within 1e-5 of a batch's (500
    cxr3 films: largest difference 8e-6, no call changed).
    """
    options = onnxruntime.SessionOptions()
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    if one_image_per_run:
        options.add_free_dimension_override_by_name(BATCH_AXIS, 1)
    return options


def verified_onnx_bytes(card: ModelCard) -> bytes:
    """The card's ONNX file once its sha256 matches the card; ``ModelIntegrityError`` otherwise.

    The bytes are hashed and then handed to ONNX Runtime, so the file cannot change in between.
    """
    path = card.onnx_path
    if path is None:
        raise ModelError(f"model card {card.name!r} names no ONNX file; "
                         "export one with python -m training.export_onnx --card CARD.json")
    return verified_bytes(path, card.onnx_sha256, f"ONNX file named by model card {card.name!r}")


class OnnxClassifier(CardBackedClassifier):
    """A bundled model on ONNX Runtime, with ``inference.Classifier``'s interface; thread-safe.

    One lock serialises session use: each run already uses every core, so concurrent runs only
    compete for them. On the CPU the session runs one image at a time (``session_options``); a
    batch is run image by image.
    """

    def __init__(self, card: ModelCard, providers: Sequence[str] | None = None):
        self.card = card
        self.providers = tuple(providers or CPU_PROVIDERS)
        self._session = None
        self._class_weights: np.ndarray | None = None
        self._one_image_per_run = False
        self._lock = threading.RLock()

    @property
    def device(self) -> str:
        """``cuda`` when the first provider asked for is CUDA's, else ``cpu``."""
        return "cuda" if self.providers[0].startswith("CUDA") else "cpu"

    def device_description(self) -> str:
        from ..libraries import import_onnxruntime

        onnxruntime = import_onnxruntime()

        where = "CUDA" if self.device == "cuda" else "CPU"
        return f"{where} (ONNX Runtime {onnxruntime.__version__})"

    def load(self) -> "OnnxClassifier":
        """Verify the ONNX file and start the session now (otherwise the first prediction does it)."""
        with self._lock:
            if self._session is not None:
                return self
            from ..libraries import import_onnxruntime

            onnxruntime = import_onnxruntime()

            data = verified_onnx_bytes(self.card)
            try:
                options = session_options(onnxruntime, one_image_per_run=self.device == "cpu")
                session = onnxruntime.InferenceSession(data, options, providers=list(self.providers))
            except Exception as exc:  # onnxruntime raises its own, unexported error types
                raise ModelError(f"{self.card.onnx_path}: ONNX Runtime cannot load it ({exc})") from exc
            metadata = session.get_modelmeta().custom_metadata_map
            self._class_weights = class_weights_from_metadata(metadata, self.card, self.card.onnx_path)
            self._check_input(session)
            self._one_image_per_run = session.get_inputs()[0].shape[0] == 1
            self._session = session
            logger.info("loaded model %s on ONNX Runtime (%s)", self.card.name, ", ".join(session.get_providers()))
        return self

    def _check_input(self, session) -> None:
        shape = session.get_inputs()[0].shape
        expected = [self.card.in_chans, self.card.input_size, self.card.input_size]
        if list(shape[1:]) != expected:
            raise ModelError(f"{self.card.onnx_path}: input shape {shape} does not fit the model card's {expected}")

    def _run(self, outputs: list[str], batch: np.ndarray) -> list[np.ndarray]:
        """The session's ``outputs`` for a (B, C, S, S) batch, image by image where the session takes one."""
        with self._lock:
            self.load()
            if not self._one_image_per_run or len(batch) == 1:
                return self._session.run(outputs, {INPUT_NAME: batch})
            runs = [self._session.run(outputs, {INPUT_NAME: batch[i:i + 1]}) for i in range(len(batch))]
        return [np.concatenate(parts) for parts in zip(*runs)]

    def _logits(self, batch: np.ndarray) -> np.ndarray:
        return self._run([LOGITS_NAME], batch)[0]

    def _logits_and_features(self, batch: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        logits, features = self._run([LOGITS_NAME, FEATURES_NAME], batch)
        return logits, features.mean(axis=(2, 3))

    def predict_with_heatmap(self, image: CxrImage | np.ndarray, target_class: str | None = None) -> HeatmapResult:
        """Prediction and Grad-CAM heat-map from one run; ``target_class`` defaults to the predicted class."""
        display = display_of(image)
        model_input, frame = self.prepare(image, display)
        batch = model_input[None]
        with self._lock:
            logits, features = self._run([LOGITS_NAME, FEATURES_NAME], batch)
            class_weights = self._class_weights
        target_index = self._target_index(logits[0], target_class)
        input_heatmap = grad_cam(features[0], class_weights, target_index, batch.shape[2:])
        heatmap = heatmap_in_image_geometry(input_heatmap, display.shape, frame.box)
        prediction = prediction_from_logits(self.card, logits[0], features[0].mean(axis=(1, 2)), image)
        return HeatmapResult(heatmap, self.classes[target_index], prediction)

    def close(self) -> None:
        """End the session; a later prediction starts a new one."""
        with self._lock:
            self._session = None
            self._class_weights = None
