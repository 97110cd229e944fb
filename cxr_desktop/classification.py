"""Classification of what the reader looks at: which model, loading it, the current image's
prediction and heat-map, and "classify all" batches. Updates the result and viewer models;
reports problems and progress through signals."""
from __future__ import annotations

import logging
from pathlib import Path

from PySide6.QtCore import QObject, Signal

from cxr_engine.display_text import sentence_case

from .controllers.classification import choose_model
from .controllers.export_context import ExportContext
from .model_service import ClassifierService
from .result_model import DONE, FAILED, ResultModel
from .viewer_model import ViewerModel
from .workers import Worker, create_worker, while_alive

logger = logging.getLogger(__name__)


def _check_image(image, workspace=None, card=None):
    """Worker: the bundled image checks' verdict (None when none are bundled) on ``image`` as the model
    reads it: with ``workspace`` and the model's ``card``, the film ``workspace.model_image`` gives (the
    decode and the correction classify-all and ``cxr-classify`` check), else ``image`` itself."""
    from cxr_engine.models.image_checks import check_image

    from .controllers.classification import model_request

    if workspace is not None and card is not None and getattr(image, "path", None) is not None:
        image = workspace.model_image(Path(image.path), model_request(card))
    return check_image(image)


class ClassificationController(QObject):
    """Keeps ``ResultModel`` and the viewer's heat-map in step with the classifier service."""

    modelChosen = Signal()  # a (new) choice was made: the model label and actions update
    modelReady = Signal(str)  # device description
    modelUnavailable = Signal(str)  # why there is no model (none chosen, or loading failed)
    heatmapShown = Signal(object)  # path whose prediction and heat-map are now on screen
    problem = Signal(object, str)  # path, reason
    batchProgress = Signal(int, int, str)  # done, total, file name
    batchFinished = Signal(int)  # images classified
    #: path, its ``out_of_scope`` reasons (``""`` in scope), the image checks' reasons undone on it (``""``:
    #: shown as stored); once the film's prediction and checks are known (the study tree marks it).
    scopeShown = Signal(object, str, str)
    resultForgotten = Signal(object)  # path whose prediction was dropped (its film was corrected)
    #: Another model, device or backend was chosen: every film's prediction, check and heat-map was dropped.
    resultsForgotten = Signal()

    def __init__(self, viewer: ViewerModel, result: ResultModel, workspace_source, model: str = "", device: str = "auto",
                 models_dir: Path | None = None, parent: QObject | None = None, backend: str = "auto"):
        """``workspace_source()`` gives the ``StudyWorkspace`` the model reads films from (its decode cache)."""
        super().__init__(parent)
        self.viewer, self.result = viewer, result
        self._workspace_source = workspace_source
        self.model, self.device, self.backend, self.models_dir = model, device, backend, models_dir
        self.service = ClassifierService(result.results, workspace_source, self)
        self.card = None
        self.started = False
        self._batch: Worker | None = None
        self._batch_ok = 0
        self._closing = False
        self._checks: dict[Path, object] = {}  # path -> ImageCheck (None where no checker is bundled)
        self._headers: dict[Path, object] = {}  # path -> the checked film's header (its scope needs the age)
        self.service.loaded.connect(self._on_loaded)
        self.service.failed.connect(self._on_failed)
        self.service.heatmapReady.connect(self._on_heatmap)
        self.service.heatmapFailed.connect(self._on_heatmap_failed)
        self.service.predicted.connect(lambda path, _: self._show_scope_of_other(Path(path)))
        result.heatmapClassChanged.connect(lambda _: self.classify_current())
        result.changed.connect(self._show_current_scope)
        self.choose()

    # ------------------------------------------------------------------ the model
    def choose(self) -> None:
        """Pick the card (explicit choice, else the best bundled one that meets the bar)."""
        choice = choose_model(self.model, self.models_dir)
        self.card = choice.card
        if self.card is None:
            self.result.set_no_model(choice.message)
        else:
            self.result.set_model(self.card.name, self.card.summary(), tuple(self.card.classes), not self.card.meets_bar,
                                  self.card)
        self.modelChosen.emit()

    def start(self) -> None:
        """Load the chosen model in a worker (once per choice)."""
        if self.started:
            return
        self.started = True
        if self.card is None:
            self.modelUnavailable.emit(self.result.message)
            return
        self.service.load(self.card, self.device, self.backend)

    def reload(self, model: str, device: str, backend: str | None = None) -> None:
        """Apply a changed model, device or backend, and classify the current image again: nothing the
        previous one said stays on screen (:meth:`forget_all`)."""
        self.forget_all()
        self.model, self.device, self.started = model, device, False
        self.backend = backend or self.backend
        self.choose()
        self.start()
        self.classify_current()

    @property
    def settled(self) -> bool:
        """True unless a model is being loaded right now."""
        return self.card is None or not self.started or self.service.ready or self.result.state == FAILED

    @while_alive
    def _on_loaded(self, device_text: str, warning: str) -> None:
        self.result.set_ready(device_text, warning)
        if self.viewer.image is not None and self.result.prediction is None:
            self.result.set_classifying()  # the request queued while loading runs now
        self.modelReady.emit(device_text)

    @while_alive
    def _on_failed(self, message: str) -> None:
        self.result.set_model_failed(message)
        self.modelUnavailable.emit(message)

    # ------------------------------------------------------------------ the current image
    def classify_current(self) -> None:
        """Ask for the current image's prediction and heat-map (answered from the cache when possible)."""
        image = self.viewer.image
        if image is None or self.card is None or (self.result.state == FAILED and not self.service.ready):
            return
        if self.service.ready and self.service.cached_heatmap(image.path, self.result.heatmap_class) is None:
            self.result.set_classifying()
        self._request_check(image)
        self.service.request_heatmap(image, self.result.heatmap_class)

    def _request_check(self, image) -> None:
        """Run the image checks (``cxr_engine.models.image_checks``) on ``image`` in a worker, once per image."""
        path = Path(image.path)
        if path in self._checks:
            self.result.set_image_check(self._checks[path])
            return
        worker = create_worker(_check_image, image, self._workspace_source(), self.card)
        self._headers[path] = image.metadata
        worker.returned.connect(lambda check: self._on_check(path, check))
        worker.errored.connect(lambda exc: logger.warning("image checks failed on one image: %s", exc))
        worker.start()

    def forget_all(self) -> None:
        """Drop every prediction, image check and heat-map (a running batch too): each belongs to the model
        that made it. The panel, the viewer's heat-map and its caption clear at once; ``resultsForgotten``
        tells the study tree and the comparison viewports."""
        self.stop()
        self._batch = None
        self._checks.clear()
        self.result.results.clear()
        self.result.forget_prediction()
        self.viewer.set_heatmap(None)
        self.resultsForgotten.emit()

    def forget(self, path: Path) -> None:
        """Forget what is known of ``path``'s image (checks, heat-maps, prediction): it was replaced."""
        self._checks.pop(Path(path), None)
        self.result.results.forget(path)
        self.resultForgotten.emit(Path(path))

    def image_check(self, image):
        """The image checks' verdict on ``image``: the cached one, else computed now (a few ms; for
        pages of a report on images never shown, and the lung job's worker thread).

        A verdict computed here is not cached: only ``_on_check`` (GUI thread) fills the cache, together
        with the result panel, so the tree never learns a film's scope from a cache entry the panel's
        result has not seen (and no worker thread writes the dict)."""
        found = self._checks.get(Path(image.path))
        return found if found is not None else _check_image(image, self._workspace_source(), self.card)

    @while_alive
    def _on_check(self, path: Path, check) -> None:
        self._checks[path] = check
        if path == self.viewer.path:
            self.result.set_image_check(check)
        else:
            self._show_scope_of_other(path)

    @while_alive
    def _show_scope_of_other(self, path: Path) -> None:
        """Tell the study tree the out-of-scope reasons of a film the reader has moved on from, once both its
        prediction and its checks are known (whichever came last): the shown film's come from its panel
        (``_show_current_scope``), and a film left before its checks came back kept a bare result."""
        from cxr_engine.models.scope_score import film_out_of_scope

        prediction = self.result.results.prediction(path)
        if path == self.viewer.path or prediction is None or path not in self._checks:
            return
        scope = film_out_of_scope(self._checks[path], prediction, self.result.scope_limit, self._headers.get(path))
        self.scopeShown.emit(path, scope, self._workspace_source().correction(path))

    @while_alive
    def _show_current_scope(self) -> None:
        """Tell the study tree the shown film's out-of-scope reasons (as its banner) once its prediction
        and its checks are known."""
        path = self.result.path
        if path is None or self.result.state != DONE or self.result.prediction is None or path not in self._checks:
            return
        self.scopeShown.emit(path, self.result.out_of_scope, self._workspace_source().correction(path))

    @while_alive
    def _on_heatmap(self, path: Path, heatmap_result) -> None:
        if path != self.viewer.path:
            return  # the reader moved on; the result stays cached
        self.result.set_prediction()  # the service stored heatmap_result.prediction for this path
        self.viewer.set_heatmap(heatmap_result.heatmap, heatmap_result.target_class,
                                heatmap_result.prediction.probability(heatmap_result.target_class))
        self.heatmapShown.emit(path)

    @while_alive
    def _on_heatmap_failed(self, path: Path, problem: str) -> None:
        """``problem``: ``not classified: ...`` or ``classification failed: ...`` (``formatting.classification_problem``)."""
        self.problem.emit(path, problem)
        if path == self.viewer.path:
            self.result.set_failed(sentence_case(problem))

    def export_context(self, workspace) -> ExportContext:
        """What a PDF export reads of the classification now, with ``workspace``'s films."""
        service, result = self.service, self.result
        return ExportContext(workspace, result.results, service.classifier if service.ready else None, service.card,
                             result.message if service.card is None else "the model is not loaded",
                             self.viewer.path, result.heatmap_class, result.scope_limit, self.image_check)

    # ------------------------------------------------------------------ classify all
    def classify_paths(self, paths: list[Path]) -> Worker | None:
        """Start classifying ``paths`` (replacing a running batch); None without a model or paths."""
        if not self.service.ready or not paths:
            return None
        if self._batch is not None:
            self._batch.quit()
        worker = self.service.classify_all(paths)
        self._batch_ok = 0
        worker.yielded.connect(lambda value: self._on_batch_item(value, worker))
        worker.finished.connect(lambda: self._on_batch_finished(worker))
        self._batch = worker
        return worker.start()

    def stop(self) -> None:
        if self._batch is not None:
            self._batch.quit()

    @while_alive
    def _on_batch_item(self, value, worker=None) -> None:
        if worker is not None and worker is not self._batch:
            return  # a batch of the previous model, stopped by a switch
        done, total, path, prediction, reason, scope = value
        self.batchProgress.emit(done, total, Path(path).name)
        if prediction is None:
            self.problem.emit(path, reason)
        else:
            self._batch_ok += 1
            self.scopeShown.emit(Path(path), scope, self._workspace_source().correction(path))

    @while_alive
    def _on_batch_finished(self, worker=None) -> None:
        if worker is None or worker is self._batch:
            self.batchFinished.emit(self._batch_ok)
