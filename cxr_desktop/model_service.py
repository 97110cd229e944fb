"""The classifier behind the app, as a Qt adapter: loads the model and computes heat-maps and
classify-all batches in workers (``controllers.classification``), storing every result in the one
``ClassificationResults`` and announcing it through signals."""
from __future__ import annotations

import logging
from pathlib import Path

from PySide6.QtCore import QObject, Signal

from cxr_engine import ModelCard

from .controllers import classification as jobs
from .controllers.results import ClassificationResults
from .formatting import classification_problem
from .workers import Worker, create_worker, while_alive

logger = logging.getLogger(__name__)


class ClassifierService(QObject):
    """Loads the chosen model in the background and answers classification requests.

    Signals: ``loaded(device_text, warning)``, ``failed(message)``,
    ``heatmapReady(path, HeatmapResult)``, ``heatmapFailed(path, message)`` (``formatting.classification_problem``:
    ``not classified: ...`` or ``classification failed: ...``), ``predicted(path, Prediction)``.
    """

    loaded = Signal(str, str)
    failed = Signal(str)
    heatmapReady = Signal(object, object)
    heatmapFailed = Signal(object, str)
    predicted = Signal(object, object)

    def __init__(self, results: ClassificationResults, workspace_source, parent: QObject | None = None):
        """``workspace_source()`` gives the ``StudyWorkspace`` whose decode cache classify-all and the
        heat-maps read films through (``controllers.classification.model_request``)."""
        super().__init__(parent)
        self.results = results
        self._workspace_source = workspace_source
        self.card: ModelCard | None = None
        self.classifier = None
        self.device_text = ""
        self._loading: Worker | None = None
        self._pending: tuple | None = None
        results.subscribe(self.predicted.emit)

    @property
    def ready(self) -> bool:
        return self.classifier is not None

    def load(self, card: ModelCard, device: str = "auto", backend: str = "auto") -> Worker:
        """Start loading ``card`` on ``device`` with ``backend``; results arrive as ``loaded`` or ``failed``."""
        self.card, self.classifier = card, None
        self.results.clear()
        worker = create_worker(jobs.load, card, device, backend)
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
        # Taken before ``loaded``: a comparison viewport asks for its own heat-map on it, which would
        # otherwise replace the main viewer's pending request.
        pending, self._pending = self._pending, None
        self.loaded.emit(device_text, warning)
        if pending is not None:
            self.request_heatmap(*pending)

    def cached_heatmap(self, path: Path, target_class: str = ""):
        return self.results.heatmap(path, target_class)

    def request_heatmap(self, image, target_class: str = "") -> Worker | None:
        """Classify ``image`` with a heat-map for ``target_class`` (``""`` = predicted class).

        Answers at once from the results, after loading when the model is not ready, else in a worker.
        """
        path = Path(image.path)
        cached = self.cached_heatmap(path, target_class)
        if cached is not None:
            self.heatmapReady.emit(path, cached)
            return None
        if not self.ready:
            self._pending = (image, target_class)
            return None
        self._pending = None
        classifier = self.classifier
        worker = create_worker(jobs.heatmap, classifier, image, target_class, self._workspace_source())
        worker.returned.connect(lambda heatmap_result: self._on_heatmap(path, target_class, heatmap_result, classifier))
        worker.errored.connect(lambda exc: self._on_heatmap_failed(path, exc, classifier))
        worker.start()
        return worker

    @while_alive
    def _on_heatmap_failed(self, path: Path, exc: Exception, classifier=None) -> None:
        if classifier is not None and classifier is not self.classifier:
            return  # the previous model's answer: another model is chosen now
        self.heatmapFailed.emit(path, classification_problem(exc))

    @while_alive
    def _on_heatmap(self, path: Path, target_class: str, heatmap_result, classifier=None) -> None:
        if classifier is not None and classifier is not self.classifier:
            return  # the previous model's result, never stored as (nor shown beside) the new model's
        self.results.add_heatmap(path, target_class, heatmap_result)
        self.heatmapReady.emit(path, heatmap_result)

    def classify_all(self, paths: list[Path]) -> Worker:
        """A generator worker classifying ``paths`` (not started: connect, then ``start()``)."""
        if not self.ready:
            raise RuntimeError("the model is not loaded yet")
        classifier = self.classifier
        worker = create_worker(jobs.classify_paths, classifier, list(paths), self._workspace_source())
        worker.yielded.connect(lambda value: self._on_batch_item(value, classifier))
        return worker

    @while_alive
    def _on_batch_item(self, value, classifier=None) -> None:
        if classifier is not None and classifier is not self.classifier:
            return
        path, prediction = value[2], value[3]
        if prediction is not None:
            self.results.add_prediction(Path(path), prediction)
