"""The main window: it assembles the docks, the viewer page and the status bar around the app's
controllers and adapters, and forwards their signals.

Behaviour lives elsewhere: ``controllers`` (Qt-free: the study workspace with its one decode cache,
classification jobs and the one owner of results, the export context), ``study_opening`` (scan, tree,
thumbnails), ``image_showing`` (the film in the viewer), ``classification`` (model, predictions,
heat-maps), ``preset_menu``, ``status_bar``, ``report_export``; widgets mirror the models.
"""
from __future__ import annotations

import logging
from pathlib import Path

from PySide6.QtCore import QSettings, QTimer, Signal
from PySide6.QtWidgets import QMainWindow, QStackedWidget

from cxr_engine.resources import samples_dir

from . import actions as window_actions
from . import desk, docks, layout_state, status_bar, study_opening, text_prompts
from .annotation_autosave import AnnotationAutosave, annotations_folder
from .annotation_history import AnnotationHistory, RecordedAnnotationStore
from .classification import ClassificationController
from .comparison import ComparisonView
from .controllers.workspace import StudyWorkspace
from .image_jobs import warm_up
from .image_scene import ImageScene
from .image_showing import ImageShowing
from .image_view import ImageView
from .lung_controller import LungFieldsController
from .lung_panel import LungPanel
from .preset_menu import PresetMenu
from .problems_panel import ProblemsPanel
from .report_export import ExportView, PdfExports, ReportExport
from .result_model import ResultModel
from .result_panel import ResultPanel
from .settings import AppSettings
from .study_browser import StudyBrowser
from .study_opening import StudyOpening
from .viewer_model import ViewerModel
from .welcome import WelcomePanel
from .workers import Worker, quit_all, while_alive

logger = logging.getLogger(__name__)

WELCOME_PAGE, VIEWER_PAGE = 0, 1


class MainWindow(QMainWindow):
    """CXR Reader's main window.

    ``model`` (a bundled model name or card path), ``device`` and ``backend`` override the settings
    for this session; signals let tests and the automation mode follow what happens.
    """

    scanFinished = Signal(object)  # list[ScanResult]
    imageShown = Signal(object)  # Path
    imageFailed = Signal(object, str, bool)  # Path, reason, the file's fault (not: the decoder cannot start)
    heatmapShown = Signal(object)  # Path whose prediction and heat-map are on screen
    classifyAllFinished = Signal(int)
    modelReady = Signal(str)
    exportFinished = Signal(object)  # Path of the written PDF
    exportFailed = Signal(str)
    modelUnavailable = Signal(str)

    def __init__(self, settings: AppSettings | None = None, model: str = "", device: str | None = None,
                 models_dir: Path | None = None, parent=None, backend: str | None = None):
        super().__init__(parent)
        self.settings = settings or AppSettings()
        self._models_dir = models_dir
        self.setWindowTitle("CXR Reader — research use only, not a medical device")
        self.setAcceptDrops(True)
        self._closing = False

        self.workspace = StudyWorkspace()
        self.viewer = ViewerModel(self)
        self.viewer.set_heatmap_opacity(self.settings.heatmap_opacity)
        self.result = ResultModel(self)
        self.annotations = RecordedAnnotationStore()
        self.history = AnnotationHistory(self.annotations, self)
        self._stored_shapes: dict[Path, tuple[int, int]] = {}  # each shown film's (rows, columns) as stored
        store = self.settings.store
        self.autosave = AnnotationAutosave(
            self.annotations, annotations_folder(store.fileName() if store.format() == QSettings.Format.IniFormat
                                                 else ""), self._marks_to_stored, self._marks_to_shown, self)
        self.autosave.failed.connect(lambda message: self.statusBar().showMessage(message, 30_000))
        self.classification = ClassificationController(
            self.viewer, self.result, lambda: self.workspace, model or self.settings.model,
            device or self.settings.device, models_dir, self, backend=backend or self.settings.backend)
        self.service = self.classification.service

        self.scene = ImageScene(self.viewer, self.annotations, self)
        self.view = ImageView(self.scene)
        self.lungs = LungFieldsController(self.viewer, self.scene, parent=self, check=self.classification.image_check,
                                          keeper=self.autosave)
        self.welcome = WelcomePanel()
        self.stack = QStackedWidget()
        self.stack.addWidget(self.welcome)
        self.setCentralWidget(self.stack)

        self.acts = window_actions.create(self)
        self.browser = StudyBrowser(card_source=lambda: self.classification.card)
        self.result_panel = ResultPanel(self.result, self.viewer, self.acts.heatmap)
        self.lung_panel = LungPanel(self.lungs, self.acts.lung_outline, self.acts.ctr)
        self.problems = ProblemsPanel(in_tree=self.browser.has_image)
        self.comparison = ComparisonView(self)  # the viewer page: 1×1, 1×2 or 2×2 viewports, self.view first
        self.stack.addWidget(self.comparison)
        self.problems_dock = docks.build(self, self.browser, self.result_panel, self.lung_panel, self.problems)
        status_bar.build(self, self.problems_dock, status_bar.ModelLabel(
            self.classification, self.result, (self.acts.classify_study, self.acts.classify_all)))
        self.presets = PresetMenu(self.acts.preset_menu, self.viewer, self.settings, self)
        self.opening = StudyOpening(self.workspace, self.browser, self.problems, self.progress,
                                    lambda: self.classification.settled, self.settings, self.welcome,
                                    self.statusBar(), self)
        self.exports = PdfExports(lambda: self.classification.export_context(self.workspace),
                                  ExportView(self.scene, self.viewer, self.annotations, self.lungs),
                                  self.progress, self.problems, self.statusBar(), self)
        self.showing = ImageShowing(self.workspace, self.viewer, self.result, self.view, self.classification, self)
        window_actions.install(self, self.acts)
        self._connect()
        self.welcome.set_recent(self.settings.recent_folders)
        self.desk = desk.install(self)

    def _connect(self) -> None:
        self.welcome.openFolder.connect(self.open_folder_dialog)
        self.welcome.openFiles.connect(self.open_files_dialog)
        self.welcome.openSample.connect(self.open_sample)
        self.welcome.openRecent.connect(lambda p: self.open_paths([Path(p)]))
        self.browser.imageSelected.connect(self.show_image)
        self.view.pixelHovered.connect(self.readout.setText)
        self.view.textRequested.connect(self._ask_text)
        self.view.textEditRequested.connect(self._edit_text)
        self.view.zoomChanged.connect(lambda _: self.view.viewport().update())
        self.result_panel.correctRequested.connect(self.showing.show_corrected)
        self.showing.correcting.connect(self._move_marks_with_the_film)
        self.showing.corrected.connect(self.browser.show_correction)
        self.showing.corrected.connect(lambda path, _: self.lungs.forget(path))
        self.opening.scanned.connect(self.scanFinished)
        self.opening.message.connect(self.view.set_message)
        self.showing.imageShown.connect(self._bring_back_marks)
        self.showing.imageShown.connect(self.imageShown)
        self.showing.imageFailed.connect(self.imageFailed)
        self.showing.problem.connect(self.opening.report_problem)
        self.showing.imageFailed.connect(self.opening.first_failed)  # opening shows the first readable film
        self.showing.imageShown.connect(self.opening.first_shown)
        self.exports.exportFinished.connect(self.exportFinished)
        self.exports.exportFailed.connect(self.exportFailed)
        c = self.classification
        c.modelReady.connect(lambda _: self.opening.start_thumbnails_when_model_settled())
        c.modelReady.connect(self.modelReady)
        c.modelUnavailable.connect(lambda _: self.opening.start_thumbnails_when_model_settled())
        c.modelUnavailable.connect(self.modelUnavailable)
        c.heatmapShown.connect(self.heatmapShown)
        c.problem.connect(self.opening.report_problem)
        c.batchProgress.connect(lambda done, total, name: self.progress.set_progress(done, total, name))
        c.batchFinished.connect(self.classifyAllFinished)
        self.service.predicted.connect(self.browser.show_prediction)
        c.scopeShown.connect(self.browser.show_scope)
        c.resultForgotten.connect(self.browser.forget_result)
        c.resultsForgotten.connect(self.browser.forget_results)
        self.viewer.heatmapOpacityChanged.connect(lambda v: setattr(self.settings, "heatmap_opacity", v))

    @property
    def scan_worker(self) -> Worker | None:
        return self.opening.scan_worker

    @property
    def thumbnail_worker(self) -> Worker | None:
        return self.opening.thumbnail_worker

    # ------------------------------------------------------------------ model
    @while_alive
    def start_model(self) -> None:
        """Load the chosen model in the background (once; called when the window first shows,
        and not once the window is closing: a worker started then would outlive it)."""
        self.classification.start()

    def showEvent(self, event):
        super().showEvent(event)
        # After the first paint, so the window is on screen before torch is imported.
        QTimer.singleShot(0, self.start_model)
        QTimer.singleShot(0, warm_up)  # the decoding workers ready before a folder is opened

    # ------------------------------------------------------------------ opening
    def open_folder_dialog(self) -> None:
        self.open_paths(study_opening.ask_folder(self, self.settings.last_folder))

    def open_files_dialog(self) -> None:
        self.open_paths(study_opening.ask_files(self, self.settings.last_folder))

    def open_sample(self) -> None:
        self.open_paths([samples_dir() / "study"])

    def open_paths(self, paths: list[Path]) -> Worker | None:
        """Scan ``paths`` (folders recursively, DICOMDIRs, DICOM, PNG and JPEG files) and show what
        they hold; None, doing nothing, without paths or once the window is closing."""
        if self._closing or not paths:
            return None
        self.classification.stop()
        self.comparison.clear()
        self._put_marks_away()
        self.showing.clear("Scanning…")
        self.stack.setCurrentIndex(VIEWER_PAGE)
        return self.opening.open([Path(p) for p in paths])

    def _put_marks_away(self) -> None:
        """Before another folder replaces this one: the marks are kept on disk (on the films as stored) and
        leave memory, with the undo history. Kept in memory, a film's marks stayed in the coordinates of its
        corrected view once the reopened folder showed it as stored, and an undo reached films no longer open
        (and deleted their kept marks). Marks that could not be written stay in memory."""
        unsaved = self.autosave.save_now()
        for path in self.annotations.paths():
            if path not in unsaved:
                self.annotations.forget(path)
        self.history.stack.clear()
        self.autosave.forget_films()
        self._stored_shapes.clear()

    def show_image(self, path: Path) -> None:
        """Decode ``path`` (in a worker unless the workspace keeps it) and show it; the study tree selects
        and scrolls to it (``StudyBrowser.follow``: no second load)."""
        self.browser.follow(path)
        self.showing.show(path)

    # ------------------------------------------------------------------ presets, tools, annotations
    def _move_marks_with_the_film(self, path: Path, reasons: str, shape) -> None:
        """The marks drawn on ``path``'s film stay on the same anatomy when it is shown turned or flipped back
        (not an undo step: the correction itself is not one), and so do the marks the undo history holds."""
        from dataclasses import replace

        from cxr_engine.models.image_checks import shown_points

        def moved(mark):
            return replace(mark, points=shown_points(mark.points, reasons, shape))

        for mark in self.annotations.for_path(path):
            self.annotations.replay(path, mark, moved(mark))
        if self.annotations.history is not None:
            self.annotations.history.remap(path, moved)

    def _bring_back_marks(self, path: Path) -> None:
        """A film shown in the main viewer: its kept marks back (``bring_back_marks``), drawn."""
        path = Path(path)
        shown = self.viewer.image if self.viewer.image is not None and self.viewer.path == path else None
        if self.bring_back_marks(path, shown) and self.viewer.path == path:
            self.scene.reload_annotations()

    def bring_back_marks(self, path: Path, image=None) -> int:
        """A film shown in any viewport (``image``, the ``CxrImage`` on screen): note its stored shape, and put back
        the marks kept for it (``annotation_autosave``); how many. A comparison viewport calls it too, so that a
        mark drawn there joins the film's kept marks instead of replacing them."""
        from cxr_engine.models.image_checks import shown_shape

        path = Path(path)
        if image is not None:
            # shown_shape is its own inverse: the shape as stored from the shape as shown
            self._stored_shapes[path] = shown_shape(image.shape, self.workspace.correction(path) or "")
        return self.autosave.restore(path)

    def _marks_to_stored(self, path: Path, points):
        from cxr_engine.models.image_checks import shown_shape, stored_points

        reasons, stored = self.workspace.correction(path) or "", self._stored_shapes.get(Path(path))
        if not reasons or stored is None:
            return tuple(points)
        return stored_points(points, reasons, shown_shape(stored, reasons))

    def _marks_to_shown(self, path: Path, points):
        from cxr_engine.models.image_checks import shown_points

        reasons, stored = self.workspace.correction(path) or "", self._stored_shapes.get(Path(path))
        if not reasons or stored is None:
            return tuple(points)
        return shown_points(points, reasons, stored)

    def apply_preset(self, preset) -> None:
        self.presets.apply(preset)

    def apply_auto_window(self) -> None:
        self.presets.apply_auto()

    def reset_view(self) -> None:
        """Default window, original polarity, upright and fitted (and no preset carried to the next film)."""
        self.presets.carried = None
        self.viewer.reset_display()
        self.view.fit()

    def set_tool(self, mode: str) -> None:
        self.view.mode = mode
        self.view.setFocus()

    def _ask_text(self, x: float, y: float) -> None:
        text_prompts.ask_text(self, self.scene, x, y)

    def _edit_text(self, item) -> None:
        text_prompts.edit_text(self, item)

    # ------------------------------------------------------------------ classify all
    def classify_paths(self, paths: list[Path], title: str = "Classifying") -> Worker | None:
        """Classify ``paths`` in the background with progress and Cancel; results fill the tree."""
        worker = self.classification.classify_paths(paths)
        if worker is not None:
            self.progress.track(title, worker)
        return worker

    def classify_study(self) -> Worker | None:
        current = self.viewer.path or self.browser.current_path()
        return self.classify_paths(self.browser.study_paths(current) if current else [], "Classifying study")

    def classify_everything(self) -> Worker | None:
        return self.classify_paths(self.browser.image_paths(), "Classifying all")

    # ------------------------------------------------------------------ settings
    def open_settings(self) -> None:
        from .settings_dialog import run_settings_dialog

        run_settings_dialog(self, self._models_dir)

    def apply_settings(self, model: str, device: str, backend: str) -> None:
        """Store the Settings dialog's choice and load the model with it."""
        self.settings.model, self.settings.device, self.settings.backend = model, device, backend
        self.classification.reload(model, device, backend)

    # ------------------------------------------------------------------ exports
    def export_view(self):
        """Ask for the options and the file, then write the view as PNG or JPEG (``view_export``)."""
        from .view_export import run_view_export_dialog

        return run_view_export_dialog(self)

    def export_pdf(self, scope: str) -> None:
        """Ask for the options and the file, then write the report (``scope``: image or study)."""
        from .export_dialog import run_export_dialog

        run_export_dialog(self, scope)

    def start_export(self, request) -> ReportExport:
        """Write the PDF ``request`` describes, in the background; ``exportFinished`` or ``exportFailed`` follows."""
        return self.exports.start(request)

    def about(self) -> None:
        from .help import show_about

        show_about(self)

    # ------------------------------------------------------------------ drag and drop, closing
    def dragEnterEvent(self, event):
        if event.mimeData().hasUrls():
            event.acceptProposedAction()

    def dropEvent(self, event):
        if self.open_paths([Path(url.toLocalFile()) for url in event.mimeData().urls() if url.isLocalFile()]):
            event.acceptProposedAction()

    def closeEvent(self, event):
        self._closing = True
        self.autosave.save_now()
        for adapter in (self.opening, self.showing, self.exports):
            adapter.close()
        self.classification.stop()
        if not quit_all(15_000):
            logger.warning("some background work was still running at exit")
        layout_state.save(self)
        self.settings.sync()
        super().closeEvent(event)
