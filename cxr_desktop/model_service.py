"""The classifier behind the app: chosen from the model cards, loaded and used only in workers.

Inference libraries (ONNX Runtime, or torch for the torch backend) are imported by the worker
functions here and nowhere else in the app, so the main window appears before they load.
"""
from __future__ import annotations

import logging
import os
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

from PySide6.QtCore import QObject, Signal

from cxr_engine import ModelCard, ModelError, choose_card
from cxr_engine.models.loading import MODEL_ENV

from .workers import Worker, create_worker, while_alive

logger = logging.getLogger(__name__)

#: Heat-maps are full-resolution float32 arrays; keep only a few.
CAM_CACHE_SIZE = 6


@dataclass(frozen=True)
class ModelChoice:
    """The card to use, or None with the reason in words."""

    card: ModelCard | None
    message: str = ""


def choose_model(requested: str = "", models_dir: Path | None = None) -> ModelChoice:
    """``requested`` (name or card path; ``$CXR_MODEL_CARD`` when empty), else the best bundled
    model that meets the project's bar (the engine's ``choose_card``), or None with the reason in words.
    A below-bar model is used only when asked for by name."""
    try:
        return ModelChoice(choose_card(requested or None, models_dir))
    except ModelError as exc:
        if requested or os.environ.get(MODEL_ENV):
            return ModelChoice(None, f"The chosen model is not available: {exc}")
        return ModelChoice(None, "No model available: no bundled model meets the project's bar yet. "
                                 "Images can still be viewed; a test model can be chosen in Settings.")


def _load(card: ModelCard, device: str, backend: str = "auto"):
    """Worker: the engine's ``load_classifier`` on ``backend`` (``cxr_engine.models.backends.BACKENDS``)
    and ``device``, falling back to the CPU when the device cannot be used; torch, when it runs, leaves
    a core to the GUI and the decoding workers (with every core busy in torch's OpenMP pool, decoding
    and inference slow each other down several times over).
    Returns (classifier, where it runs in words, the fallback warning or "")."""
    from cxr_engine import load_classifier
    from cxr_engine.models.loading import runtime_description

    classifier = load_classifier(card, backend=backend, device=device, cpu_fallback=True,
                                 threads=max(1, (os.cpu_count() or 2) - 1))
    return classifier, runtime_description(classifier), classifier.load_warning


def _cam(classifier, image, target_class: str):
    """Worker: prediction and heat-map for one image."""
    return classifier.predict_with_cam(image, target_class or None)


#: Images per forward pass in "classify all".
BATCH_SIZE = 8


def classify_paths(classifier, paths: list[Path], batch_size: int = BATCH_SIZE):
    """Generator worker: yields ``(done, total, path, prediction or None, error or "")`` per file, in order,
    from the engine's ``classify_files``.

    Files are decoded at the resolution the model input needs (``DecodeRequest.for_model``) by the
    app's shared pool of isolated decoding workers and its cache (``image_jobs.shared_decoder``), so
    a damaged file cannot crash or hang the app and a film decoded before is not decoded again;
    they are classified ``batch_size`` at a time.
    """
    from cxr_engine import classify_files
    from cxr_engine.reading.reduced_decode import DecodeRequest

    from .image_jobs import shared_decoder

    card, decoder = classifier.card, shared_decoder()
    request = DecodeRequest.for_model(card.input_size, card.preprocessing_version)
    events = classify_files(paths, classifier, batch_size=batch_size, reader=lambda path: decoder.read(path, request),
                            decode_threads=decoder.pool.workers)
    done, total = 0, len(paths)
    for event in events:
        if event.done:
            done += 1
            yield done, total, event.path, event.prediction, event.reason


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
