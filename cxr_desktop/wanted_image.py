"""The film a viewer wants, decoded through the workspace off the GUI thread; only the latest wish counts.

A reader clicks through films faster than they decode, so each decode's result is delivered only
while its path is still the wanted one: a slow decode never replaces a film picked after it. Used by
the main viewer (``ImageShowing``) and each comparison viewport (``comparison.Viewport``)."""
from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QObject, Signal

from .controllers.workspace import StudyWorkspace
from .formatting import failure_reason
from .image_jobs import LoadedImage
from .workers import create_worker, while_alive


class WantedImageLoader(QObject):
    """Decodes the wanted film through ``workspace`` (once: from its shared cache when it keeps it).

    Signals: ``loading(path)`` when a decode starts; ``loaded(LoadedImage)`` and ``failed(path,
    reason, file_fault)`` for the path still wanted when its decode ends (``loaded`` at once for a kept film;
    ``file_fault`` false when the decoding process could not start, ``DecoderStartError``: not the file's
    fault, no film can be decoded); ``unreadable(path, reason)`` for every decode that fails through the
    file's fault, wanted or not (the Problems list names each unreadable file). Nothing arrives from a
    decode that ends after ``close()``.
    """

    loading = Signal(object)
    loaded = Signal(object)
    failed = Signal(object, str, bool)
    unreadable = Signal(object, str)

    def __init__(self, workspace: StudyWorkspace, parent: QObject | None = None):
        super().__init__(parent)
        self.workspace = workspace
        self.wanted: Path | None = None
        self._closing = False

    def want(self, path: Path) -> None:
        """Make ``path`` the wanted film: ``loaded`` now when the workspace keeps it, else ``loading``
        and its decode in a worker (``loaded`` or ``failed`` follows unless another film is wanted by then)."""
        path = self.wanted = Path(path)
        kept = self.workspace.get(path)
        if kept is not None:
            self.loaded.emit(kept)
            return
        self.loading.emit(path)
        worker = create_worker(self.workspace.load, path)
        worker.returned.connect(lambda loaded: self._on_loaded(path, loaded))
        worker.errored.connect(lambda exc: self._on_failed(path, exc))
        worker.start()

    def forget(self) -> None:
        """Want nothing: decodes still running are dropped when they end."""
        self.wanted = None

    def close(self) -> None:
        """Drop every decode still running: the window is closing."""
        self._closing = True

    @while_alive
    def _on_loaded(self, path: Path, loaded: LoadedImage) -> None:
        if path == self.wanted:
            self.loaded.emit(loaded)

    @while_alive
    def _on_failed(self, path: Path, exc: Exception) -> None:
        from cxr_engine.errors import DecoderStartError

        reason, file_fault = failure_reason(exc), not isinstance(exc, DecoderStartError)
        if file_fault:  # a decoding process that cannot start is not blamed on the file (README)
            self.unreadable.emit(path, reason)
        if path == self.wanted:
            self.failed.emit(path, reason, file_fault)
