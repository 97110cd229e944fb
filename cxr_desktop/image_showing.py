"""Showing one film in the main viewer: decoded off the GUI thread through the workspace (once, from
its shared cache), its warnings in the result model, then its classification asked for."""
from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QObject, Signal

from cxr_engine.models.image_checks import correction_note
from cxr_engine.models.suitability import image_warnings

from .controllers.workspace import StudyWorkspace
from .formatting import cannot_display_text, loading_text
from .image_jobs import LoadedImage
from .wanted_image import WantedImageLoader


class ImageShowing(QObject):
    """Puts the film the reader picks into the ``viewer`` model; ``view`` shows the progress messages.

    Signals: ``imageShown(path)``, ``imageFailed(path, reason, file_fault)`` (``file_fault`` false when the
    decoding process could not start: no film can be shown, none is to blame); ``problem(path, reason)`` for the
    Problems list; ``corrected(path, reasons)`` when the reader has the film shown corrected.
    """

    imageShown = Signal(object)
    imageFailed = Signal(object, str, bool)
    problem = Signal(object, str)
    #: (path, the image checks' reasons now undone on its film: ``""`` when it is shown as stored again)
    corrected = Signal(object, str)
    #: (path, the reasons about to be undone on the film as shown, its (rows, columns) as shown): the marks
    #: drawn on it must follow it (``image_checks.shown_points``)
    correcting = Signal(object, str, object)

    def __init__(self, workspace: StudyWorkspace, viewer, result, view, classification, parent=None):
        super().__init__(parent)
        self.workspace, self.viewer, self.result, self.view = workspace, viewer, result, view
        self.classification = classification
        self.loader = WantedImageLoader(workspace, self)
        self.loader.loading.connect(self._show_loading)
        self.loader.loaded.connect(self._display)
        self.loader.failed.connect(self._on_failed)
        self.loader.unreadable.connect(self.problem)

    def show(self, path: Path) -> None:
        """Decode ``path`` (in a worker unless the workspace keeps it) and show it."""
        self.loader.want(path)

    def close(self) -> None:
        """Ignore films still decoding: the window is closing."""
        self.loader.close()

    def clear(self, message: str = "") -> None:
        """Show no film and no result, ``message`` in the viewer (e.g. while a folder is scanned)."""
        self.loader.forget()
        self.viewer.set_image(None)
        self.result.set_image(())
        self.view.set_message(message)

    def _show_loading(self, path: Path) -> None:
        """While ``path`` decodes, the film and the result shown before it leave the screen at once: a
        reader never sees one patient's film, overlay or AI result beside another one's selection."""
        self.viewer.set_image(None)
        self.result.set_decoding(path)
        self.view.set_message(loading_text(path))

    def show_corrected(self) -> None:
        """Show the film turned and/or inverted back as the image checks say and classify it again, the
        way ``cxr-classify --auto-orient`` does (``StudyWorkspace.correct``: the viewer's film and the
        model's input are both corrected; the file is not changed)."""
        check, image = self.result.image_check, self.viewer.image
        if image is None or check is None or not check.correctable:
            return
        path = Path(image.path)
        self.correcting.emit(path, check.correction, tuple(image.stored.shape[:2]))
        self.workspace.correct(path, check.correction)
        self.corrected.emit(path, self.workspace.correction(path))
        self.classification.forget(path)
        self._display(self.workspace.load(path))  # the kept film, corrected in place

    def _on_failed(self, path: Path, reason: str, file_fault: bool = True) -> None:
        self.viewer.set_image(None)
        self.result.set_image(())
        self.view.set_message(cannot_display_text(reason, file_fault))
        self.imageFailed.emit(path, reason, file_fault)

    def _display(self, loaded: LoadedImage) -> None:
        self.view.set_message("")
        self.viewer.set_image(loaded.image, loaded.renderer)
        card = self.classification.card
        note = correction_note(self.workspace.correction(loaded.image.path))
        self.result.set_image(image_warnings(loaded.image, card.input_size if card else None), loaded.image.metadata,
                              loaded.image.path, note, tuple(self.workspace.file_notes(loaded.image.path)))
        self.imageShown.emit(loaded.image.path)
        self.classification.classify_current()
