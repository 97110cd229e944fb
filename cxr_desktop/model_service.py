"""The classifier behind the app: chosen from the model cards, loaded and used only in workers.

Inference libraries (ONNX Runtime, or torch for the torch backend) are imported by the worker
functions here and nowhere else in the app, so the main window appears before they load.
"""
from __future__ import annotations

import logging
import os
import sys
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

from PySide6.QtCore import QObject, Signal

from cxr_engine.errors import ModelError
from cxr_engine.models.model_card import ModelCard, default_card, find_card

from .workers import Worker, create_worker, while_alive

logger = logging.getLogger(__name__)

#: A card path or bundled model name that overrides the settings (tests, kiosks).
MODEL_ENV = "CXR_MODEL_CARD"
#: Heat-maps are full-resolution float32 arrays; keep only a few.
CAM_CACHE_SIZE = 6


@dataclass(frozen=True)
class ModelChoice:
    """The card to use, or None with the reason in words."""

    card: ModelCard | None
    message: str = ""


def choose_model(requested: str = "", models_dir: Path | None = None) -> ModelChoice:
    """``requested`` (name or card path; ``$CXR_MODEL_CARD`` when empty), else the best bundled
    model that meets the project's bar. A below-bar model is used only when asked for by name."""
    requested = requested or os.environ.get(MODEL_ENV, "")
    if requested:
        try:
            return ModelChoice(find_card(requested, models_dir))
        except ModelError as exc:
            return ModelChoice(None, f"The chosen model is not available: {exc}")
    card = default_card(models_dir)
    if card is None:
        return ModelChoice(None, "No model available: no bundled model meets the project's bar yet. "
                                 "Images can still be viewed; a test model can be chosen in Settings.")
    return ModelChoice(card)


def _load(card: ModelCard, device: str, backend: str = "auto"):
    """Worker: build and verify the classifier; falls back to the CPU when CUDA is missing.

    ``backend`` is the reader's setting (``cxr_engine.models.backends.BACKENDS``): ``auto`` runs ONNX
    Runtime on the CPU when the model has an ONNX export (no torch import at all) and torch where a
    GPU is present or no export exists; ``torch`` and ``onnx`` insist on that library.
    """
    from cxr_engine.models.backends import create_classifier

    warning = ""
    try:
        classifier = create_classifier(card, backend=backend, device=device)
        _ = classifier.device
    except ValueError as exc:
        warning = f"{exc}; using the CPU"
        classifier = create_classifier(card, backend=backend, device="cpu")
    description = ""
    if "torch" in sys.modules:
        import torch

        from cxr_engine.models.torch_backend import Classifier

        # Leave a core to the GUI and the decoding workers: with every core busy in torch's
        # OpenMP pool, decoding and inference slow each other down several times over.
        torch.set_num_threads(max(1, (os.cpu_count() or 2) - 1))
        if isinstance(classifier, Classifier):
            description = f" (PyTorch {torch.__version__.split('+')[0]})"
    classifier.load()
    return classifier, classifier.device_description() + description, warning


def _cam(classifier, image, target_class: str):
    """Worker: prediction and heat-map for one image."""
    return classifier.predict_with_cam(image, target_class or None)


#: Images per forward pass in "classify all".
BATCH_SIZE = 8


def classify_paths(classifier, paths: list[Path], batch_size: int = BATCH_SIZE):
    """Generator worker: yields ``(done, total, path, prediction or None, error or "")`` per file, in order.

    Files are decoded at the resolution the model input needs (``DecodeRequest.for_model``) by the
    app's shared pool of isolated decoding workers and its cache (``image_jobs.shared_decoder``), so
    a damaged file cannot crash or hang the app and a film decoded before is not decoded again;
    they are classified ``batch_size`` at a time.
    """
    from cxr_engine.reading.reduced_decode import DecodeRequest

    from .image_jobs import read_in_order

    total, done, batch = len(paths), 0, []

    def flush():
        nonlocal done
        for path, prediction, reason in _predict_batch(classifier, batch):
            done += 1
            yield done, total, path, prediction, reason
        batch.clear()

    card = classifier.card
    for path, image in read_in_order(paths, DecodeRequest.for_model(card.input_size, card.preprocessing_version)):
        if isinstance(image, Exception):
            yield from flush()
            done += 1
            yield done, total, path, None, _reason(image)
            continue
        batch.append((path, image))
        if len(batch) >= batch_size:
            yield from flush()
    yield from flush()


def _predict_batch(classifier, batch: list) -> list:
    """``(path, prediction or None, reason)`` per ``(path, image)``; one image that fails is
    retried alone so that it does not fail its neighbours."""
    try:
        predictions = classifier.predict([image for _, image in batch])
        return [(path, prediction, "") for (path, _), prediction in zip(batch, predictions)]
    except Exception as exc:  # one bad image must not stop the batch
        if len(batch) == 1:
            logger.exception("classification failed for one file")
            return [(batch[0][0], None, f"{type(exc).__name__}: {exc}")]
        return [row for item in batch for row in _predict_batch(classifier, [item])]


class ClassifierService(QObject):
    """Loads the chosen model in the background and answers classification requests.

    Signals: ``loaded(device_text, warning)``, ``failed(message)``,
    ``camReady(path, CamResult)``, ``camFailed(path, message)``, ``predicted(path, Prediction)``.
    """

    loaded = Signal(str, str)
    failed = Signal(str)
    camReady = Signal(object, object)
    camFailed = Signal(object, str)
    predicted = Signal(object, object)

    def __init__(self, parent: QObject | None = None):
        super().__init__(parent)
        self.card: ModelCard | None = None
        self.classifier = None
        self.device_text = ""
        self._loading: Worker | None = None
        self._pending: tuple | None = None
        self._cams: OrderedDict[tuple[Path, str], object] = OrderedDict()
        self.predictions: dict[Path, object] = {}

    @property
    def ready(self) -> bool:
        return self.classifier is not None

    def load(self, card: ModelCard, device: str = "auto", backend: str = "auto") -> Worker:
        """Start loading ``card`` on ``device`` with ``backend``; results arrive as ``loaded`` or ``failed``."""
        self.card, self.classifier = card, None
        self._cams.clear()
        self.predictions.clear()
        worker = create_worker(_load, card, device, backend)
        worker.returned.connect(self._on_loaded)
        worker.errored.connect(self._on_load_failed)
        self._loading = worker
        worker.start()
        return worker

    @while_alive
    def _on_load_failed(self, exc: Exception) -> None:
        self.failed.emit(f"The model could not be loaded: {exc}")

    @while_alive
    def _on_loaded(self, value) -> None:
        classifier, device_text, warning = value
        if classifier.card is not self.card:  # a newer load replaced this one
            return
        self.classifier, self.device_text = classifier, device_text
        logger.info("model %s ready on %s", classifier.name, device_text)
        self.loaded.emit(device_text, warning)
        if self._pending is not None:
            self.request_cam(*self._pending)

    def forget(self, path: Path) -> None:
        """Drop the cached heat-maps and prediction of ``path`` (its image was replaced, e.g. shown corrected)."""
        for key in [key for key in self._cams if key[0] == Path(path)]:
            del self._cams[key]
        self.predictions.pop(Path(path), None)

    def cached_cam(self, path: Path, target_class: str = ""):
        return self._cams.get((Path(path), target_class))

    def request_cam(self, image, target_class: str = "") -> Worker | None:
        """Classify ``image`` with a heat-map for ``target_class`` (``""`` = predicted class).

        Answers at once from the cache, after loading when the model is not ready, else in a worker.
        """
        path = Path(image.path)
        cached = self.cached_cam(path, target_class)
        if cached is not None:
            self.camReady.emit(path, cached)
            return None
        if not self.ready:
            self._pending = (image, target_class)
            return None
        self._pending = None
        worker = create_worker(_cam, self.classifier, image, target_class)
        worker.returned.connect(lambda cam: self._on_cam(path, target_class, cam))
        worker.errored.connect(lambda exc: self._on_cam_failed(path, exc))
        worker.start()
        return worker

    @while_alive
    def _on_cam_failed(self, path: Path, exc: Exception) -> None:
        self.camFailed.emit(path, _reason(exc))

    @while_alive
    def _on_cam(self, path: Path, target_class: str, cam) -> None:
        self._cams[(path, target_class)] = cam
        self._cams[(path, cam.target_class)] = cam
        while len(self._cams) > CAM_CACHE_SIZE:
            self._cams.popitem(last=False)
        self.predictions[path] = cam.prediction
        self.predicted.emit(path, cam.prediction)
        self.camReady.emit(path, cam)

    def classify_all(self, paths: list[Path]) -> Worker:
        """A generator worker classifying ``paths`` (not started: connect, then ``start()``)."""
        if not self.ready:
            raise RuntimeError("the model is not loaded yet")
        worker = create_worker(classify_paths, self.classifier, list(paths))
        worker.yielded.connect(self._on_batch_item)
        return worker

    @while_alive
    def _on_batch_item(self, value) -> None:
        _, _, path, prediction, _ = value
        if prediction is not None:
            self.predictions[Path(path)] = prediction
            self.predicted.emit(Path(path), prediction)


def _reason(exc: Exception) -> str:
    return getattr(exc, "reason", None) or f"{type(exc).__name__}: {exc}"
