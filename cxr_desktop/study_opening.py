"""Opening folders and files: the workspace's scan in a worker, the study tree filled step by step,
then the thumbnails decoded once the model has settled. A Qt adapter over ``controllers.workspace``."""
from __future__ import annotations

import itertools
import logging
from pathlib import Path

from PySide6.QtCore import QObject, QTimer, Signal
from PySide6.QtWidgets import QFileDialog

from .controllers.workspace import StudyWorkspace
from .formatting import own_outputs_text
from .image_jobs import thumbnails
from .workers import Worker, create_worker, while_alive

logger = logging.getLogger(__name__)

_TREE_FILLED = object()  # what the tree-filling steps return once exhausted
#: Unreadable films passed over, at most, looking for the first readable one to show on opening.
SKIP_AT_MOST = 100


class StudyOpening(QObject):
    """Scans what the reader opens into the ``workspace`` and mirrors it in the study ``browser``;
    files that cannot be used go to ``problems`` (and are marked in the tree).

    Once the tree holds everything found, the opened paths become recent folders (``settings``,
    mirrored by ``welcome``; not while ``remember_opened`` is off: an unattended run's paths are a script's, not
    the reader's work), ``status_bar`` says how many images there are (and how many files this program wrote were
    skipped, ``formatting.own_outputs_text``) and the first is selected; when
    its film cannot be shown through the file's fault (``first_failed``), the next one is, up to the first
    readable one (the one rule for the app and ``--screenshot``), the unreadable ones staying listed, marked with
    their reason. When the decoding process cannot start, no film is skipped (none is to blame, none can be shown).
    Signals: ``scanned(list[ScanResult])`` at the end (``[]`` when the scan failed), after ``message(text)``
    when there is nothing to show (why, for the viewer); ``noFilmShown(text)`` when opening stops looking for a
    readable film without one (why: the films tried, or the decoding process that could not start).
    """

    scanned = Signal(object)
    message = Signal(str)
    noFilmShown = Signal(str)

    def __init__(self, workspace: StudyWorkspace, browser, problems, progress, model_settled, settings, welcome,
                 status_bar, parent=None):
        """``model_settled()``: true unless a model is loading (thumbnails wait for it: both need the
        interpreter, and the reader waits for the classification, not for the thumbnails)."""
        super().__init__(parent)
        self.workspace, self.browser, self.problems, self.progress = workspace, browser, problems, progress
        self.settings, self.welcome, self.status_bar = settings, welcome, status_bar
        self._model_settled = model_settled
        self.scan_worker: Worker | None = None
        self.thumbnail_worker: Worker | None = None
        self._pending_thumbnails: list[Path] = []
        self._thumbnailed: set[Path] = set()  # the films whose thumbnail job has answered (a thumbnail or a reason)
        self._closing = False
        self._first: Path | None = None  # the film chosen on opening, until it is shown or the reader moves on
        self._skipped = 0
        self.remember_opened = True  # the opened paths go to the recent list and the last folder
        browser.imageSelected.connect(self._on_selected)

    def open(self, paths: list[Path]) -> Worker:
        """Forget what was open and scan ``paths`` (folders recursively, DICOMDIRs, DICOM, PNG and JPEG files)."""
        self.stop()
        self.browser.clear()
        self._pending_thumbnails = []
        self._thumbnailed = set()
        self._first, self._skipped = None, 0
        self.problems.clear_problems()
        self.workspace.open(paths)
        worker = create_worker(self.workspace.scan, _progress=True)
        worker.progress.connect(self._on_progress)
        worker.returned.connect(lambda results: self._on_scanned(worker, results))
        worker.errored.connect(lambda exc: self._on_failed(worker, exc))
        self.scan_worker = worker
        self.progress.track("Scanning", worker)
        return worker.start()

    def stop(self) -> None:
        for worker in (self.scan_worker, self.thumbnail_worker):
            if worker is not None:
                worker.quit()

    def close(self) -> None:
        self._closing = True
        self.stop()

    @while_alive
    def _on_progress(self, value) -> None:
        self.progress.set_progress(*value)

    @while_alive
    def _on_scanned(self, worker: Worker, results) -> None:
        if worker is not self.scan_worker:
            return  # a newer open replaced this scan
        self.workspace.set_scans(results)
        self.problems.add_many(self.workspace.problems())
        self.problems.add_copies(self.workspace.copy_groups())
        self.problems.add_uid_clashes(self.workspace.uid_clashes())
        steps = itertools.chain.from_iterable(self.browser.add_result_steps(result) for result in results)
        self._fill_tree(worker, steps)

    @while_alive
    def _fill_tree(self, worker: Worker, steps) -> None:
        """Add one step of the scanned images to the tree, then let the event loop run."""
        if worker is not self.scan_worker:
            return  # a newer open replaced this scan while the tree was filling
        if next(steps, _TREE_FILLED) is not _TREE_FILLED:
            QTimer.singleShot(0, lambda: self._fill_tree(worker, steps))
            return
        self._show_found()  # the first film is chosen (and decoded) before the thumbnails
        self._pending_thumbnails = self.browser.image_paths()
        self.start_thumbnails_when_model_settled()
        self.scanned.emit(self.workspace.scans)

    def _show_found(self) -> None:
        images, opened = self.browser.image_paths(), self.workspace.opened
        if self.remember_opened:
            for path in opened:
                self.settings.add_recent(path)
            self.welcome.set_recent(self.settings.recent_folders)
        cancelled = " (scan cancelled)" if self.workspace.cancelled else ""
        own = own_outputs_text(self.workspace.scans)
        self.status_bar.showMessage(f"{len(images)} image(s) found{cancelled}" + (f"; {own}" if own else ""), 8000)
        logger.info("opened %d path(s): %d images, %d problems", len(opened), len(images), self.problems.rowCount())
        if images:
            self._first = images[0]
            self.browser.select_path(images[0])
        else:
            hint = " See Problems below." if self.problems.rowCount() else ""
            self.message.emit("No DICOM, PNG or JPEG images found here" + (f": {own}." if own else ".") + hint)

    def first_failed(self, path: Path, reason: str = "", file_fault: bool = True) -> None:
        """The viewer could not show ``path``: when it is the film chosen on opening (and still the selected one),
        show the next film in the tree instead, so that opening a folder shows its first readable film, not a
        "cannot be displayed" screen (``path`` stays listed, marked with its reason, ``report_problem``), at most
        ``SKIP_AT_MOST`` films passed over. Without ``file_fault`` (the decoding process could not start: the
        next film would fail the same way, and no film is to blame) nothing is skipped: the viewer says why, once.
        ``noFilmShown`` says why when it stops without a film on screen."""
        path = Path(path)
        if self._first is None or path != self._first or self.browser.current_path() != path:
            return
        self._first = None
        if not file_fault:
            logger.warning("no film can be shown: %s", reason)
            self.status_bar.showMessage(f"No film can be shown: {reason}", 30_000)
            self.noFilmShown.emit(reason)
            return
        logger.warning("skipped %s: it cannot be read: %s", path, reason)
        self._skipped += 1
        images = self.browser.image_paths()
        later = images[images.index(path) + 1:] if path in images else []
        if not later or self._skipped > SKIP_AT_MOST:
            cap = f", looking no further than {SKIP_AT_MOST} skipped" if later else ""
            self.noFilmShown.emit(f"no image can be read ({self._skipped} tried{cap}); the last, {path}: {reason}")
            return
        self._first = later[0]
        self.browser.select_path(later[0])

    def _on_selected(self, path: Path) -> None:
        if self._first is not None and Path(path) != self._first:
            self._first = None  # the reader chose another film

    def first_shown(self, path: Path) -> None:
        """A film is on screen: the one chosen on opening was readable (or the reader chose another)."""
        self._first = None

    @while_alive
    def _on_failed(self, worker: Worker, exc: Exception) -> None:
        if worker is not self.scan_worker:
            return
        for path in self.workspace.opened:
            self.problems.add(path, str(exc))
        self.message.emit(f"Cannot open: {exc}")
        self.scanned.emit([])

    def start_thumbnails_when_model_settled(self) -> None:
        if self._pending_thumbnails and self._model_settled() and not self._closing:
            paths, self._pending_thumbnails = self._pending_thumbnails, []
            worker = create_worker(thumbnails, paths, self.workspace.decoder)
            worker.yielded.connect(self._on_thumbnail)
            self.thumbnail_worker = worker
            worker.start()

    def thumbnails_to_come(self, paths: list[Path]) -> list[Path]:
        """Those of ``paths`` whose thumbnail (or reason for none) is still to come: ``[]`` once the thumbnails' job
        has ended (or none is to start), whatever it reached."""
        worker = self.thumbnail_worker
        if not self._pending_thumbnails and (worker is None or worker.done):
            return []
        return [path for path in paths if path not in self._thumbnailed]

    @while_alive
    def _on_thumbnail(self, value) -> None:
        path, pixels, reason, file_fault = value
        if not self.browser.has_image(path):
            return  # from a folder that is no longer open
        self._thumbnailed.add(path)
        if pixels is not None:
            self.browser.set_thumbnail(path, pixels)
        elif file_fault:
            self.report_problem(path, reason)
        else:  # the decoding process could not start: no film is to blame (the worker stopped)
            logger.warning("no thumbnails: %s", reason)
            self.status_bar.showMessage(f"No thumbnails: {reason}", 30_000)

    def report_problem(self, path: Path, reason: str) -> None:
        """List ``path`` under Problems and mark it in the tree."""
        self.problems.add(path, reason)
        self.browser.mark_problem(path, reason)


def ask_folder(parent, start: str) -> list[Path]:
    """The folder the reader picks (``[]`` when cancelled)."""
    folder = QFileDialog.getExistingDirectory(parent, "Open a folder of DICOM studies", start)
    return [Path(folder)] if folder else []


def ask_files(parent, start: str) -> list[Path]:
    """The DICOM, PNG or JPEG files or DICOMDIR the reader picks (``[]`` when cancelled)."""
    files, _ = QFileDialog.getOpenFileNames(parent, "Open DICOM, PNG or JPEG files or a DICOMDIR", start,
                                            "Images (*.dcm *.dicom *.dic *.ima DICOMDIR *.png *.jpg *.jpeg);;"
                                            "DICOM (*.dcm *.dicom *.dic *.ima DICOMDIR);;"
                                            "PNG and JPEG (*.png *.jpg *.jpeg);;All files (*)")
    return [Path(f) for f in files]
