"""Showing one film in the main viewer: decoded off the GUI thread through the workspace (once, from
its shared cache), its warnings in the result model, then its classification asked for."""
from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QObject, Signal

from cxr_engine.models.suitability import image_warnings

from .controllers.workspace import StudyWorkspace
from .formatting import cannot_display_text, failure_reason
from .image_jobs import LoadedImage
from .workers import Worker, create_worker, while_alive


class ImageShowing(QObject):
    """Puts the film the reader picks into the ``viewer`` model; ``view`` shows the progress messages.

    Signals: ``imageShown(path)``, ``imageFailed(path, reason)``; ``problem(path, reason)`` for the
    Problems list.
    """

    imageShown = Signal(object)
    imageFailed = Signal(object, str)
    problem = Signal(object, str)

    def __init__(self, workspace: StudyWorkspace, viewer, result, view, classification, parent=None):
        super().__init__(parent)
        self.workspace, self.viewer, self.result, self.view = workspace, viewer, result, view
        self.classification = classification
        self._wanted: Path | None = None
        self._worker: Worker | None = None
        self._closing = False

    def show(self, path: Path) -> None:
        """Decode ``path`` (in a worker unless the workspace keeps it) and show it."""
        path = self._wanted = Path(path)
        kept = self.workspace.get(path)
        if kept is not None:
            self._display(kept)
            return
        self.view.set_message("Loading…")
        worker = create_worker(self.workspace.load, path)
        worker.returned.connect(lambda loaded: self._on_loaded(path, loaded))
        worker.errored.connect(lambda exc: self._on_failed(path, exc))
        self._worker = worker
        worker.start()

    def close(self) -> None:
        """Ignore films still decoding: the window is closing."""
        self._closing = True

    def clear(self, message: str = "") -> None:
        self._wanted = None
        self.viewer.set_image(None)
        self.view.set_message(message)

    def show_corrected(self) -> None:
        """Replace the shown film by the film turned and/or inverted as the image checks say
        (``cxr_engine.models.image_checks.reoriented``; the file is not changed) and classify it again."""
        from cxr_engine.models.image_checks import reoriented
        from cxr_engine.pixels.rendering import Renderer

        check, image = self.result.image_check, self.viewer.image
        if image is None or check is None or not check.correctable:
            return
        upright = reoriented(image, check.reasons)
        loaded = LoadedImage(upright, Renderer(upright))
        self.workspace.put(Path(image.path), loaded)
        self.classification.forget(image.path)
        self._display(loaded)

    @while_alive
    def _on_loaded(self, path: Path, loaded: LoadedImage) -> None:
        if path == self._wanted:
            self._display(loaded)

    @while_alive
    def _on_failed(self, path: Path, exc: Exception) -> None:
        reason = failure_reason(exc)
        self.problem.emit(path, reason)
        if path == self._wanted:
            self.viewer.set_image(None)
            self.result.set_image(())
            self.view.set_message(cannot_display_text(reason))
            self.imageFailed.emit(path, reason)

    def _display(self, loaded: LoadedImage) -> None:
        self.view.set_message("")
        self.viewer.set_image(loaded.image, loaded.renderer)
        card = self.classification.card
        self.result.set_image(image_warnings(loaded.image, card.input_size if card else None),
                              loaded.image.metadata.view_position, loaded.image.path)
        self.imageShown.emit(loaded.image.path)
        self.classification.classify_current()
