"""The main window: study browser, viewer, result panel, problems list; it wires models to workers.

The window owns the observable models (``ViewerModel``, ``ResultModel``, the annotation
store) and the classification controller; widgets mirror the models; every decode, scan and
classification runs in a worker, so the event loop never waits.
"""
from __future__ import annotations

import itertools
import logging
from pathlib import Path

from PySide6.QtCore import QTimer, Qt, Signal
from PySide6.QtWidgets import (
    QDockWidget,
    QFileDialog,
    QFrame,
    QInputDialog,
    QLabel,
    QMainWindow,
    QPushButton,
    QScrollArea,
    QSizePolicy,
    QStackedWidget,
    QVBoxLayout,
    QWidget,
)

from cxr_engine.display_text import format_percent
from cxr_engine.models.model_card import list_bundled
from cxr_engine.resources import samples_dir
from cxr_engine.models.suitability import image_warnings

from . import actions as window_actions
from . import desk, layout_state
from .annotation_history import AnnotationHistory, RecordedAnnotationStore
from .annotation_model import TEXT, Annotation
from .classification import ClassificationController
from .comparison import ComparisonView
from .image_jobs import ImageCache, LoadedImage, load_image, thumbnails
from .image_scene import ImageScene
from .image_view import ImageView
from .job_progress import JobProgress
from .lung_controller import LungFieldsController
from .lung_panel import LungPanel
from .presets import Auto, presets_for, percentile_band
from .problems_panel import ProblemsPanel
from .result_model import ResultModel
from .result_panel import ResultPanel
from .scan_job import scan_paths
from .settings import AppSettings
from .study_browser import StudyBrowser
from .viewer_model import ViewerModel
from .welcome import WelcomePanel
from .workers import Worker, create_worker, quit_all, while_alive

logger = logging.getLogger(__name__)

_TREE_FILLED = object()  # what the tree-filling steps return once exhausted

WELCOME_PAGE, VIEWER_PAGE = 0, 1


def _stacked(*widgets) -> QWidget:
    """One widget holding ``widgets`` one under the other."""
    box = QWidget()
    layout = QVBoxLayout(box)
    layout.setContentsMargins(0, 0, 0, 0)
    for widget in widgets:
        layout.addWidget(widget)
    layout.addStretch(1)
    return box


def _scrolling(widget: QWidget) -> QScrollArea:
    """``widget`` in a scroll area, so a dock never makes the window taller than a small screen."""
    area = QScrollArea()
    area.setWidget(widget)
    area.setWidgetResizable(True)
    area.setFrameShape(QFrame.Shape.NoFrame)
    return area


class MainWindow(QMainWindow):
    """CXR Reader's main window.

    ``model`` (a bundled model name or card path), ``device`` and ``backend`` override the settings
    for this session; signals let tests and the automation mode follow what happens.
    """

    scanFinished = Signal(object)  # list[ScanResult]
    imageShown = Signal(object)  # Path
    imageFailed = Signal(object, str)
    camShown = Signal(object)  # Path whose prediction and heat-map are on screen
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

        self.viewer = ViewerModel(self)
        self.viewer.set_heatmap_opacity(self.settings.cam_opacity)
        self.result = ResultModel(self)
        self.annotations = RecordedAnnotationStore()
        self.history = AnnotationHistory(self.annotations, self)
        self.classification = ClassificationController(
            self.viewer, self.result, model or self.settings.model, device or self.settings.device, models_dir, self,
            backend=backend or self.settings.backend)
        self.service = self.classification.service
        self.images = ImageCache()
        self._load_worker: Worker | None = None
        self.scan_worker: Worker | None = None
        self.thumbnail_worker: Worker | None = None
        self._wanted: Path | None = None
        self._export = None
        self._closing = False
        self._pending_thumbnails: list[Path] = []

        self.scene = ImageScene(self.viewer, self.annotations, self)
        self.view = ImageView(self.scene)
        self.lungs = LungFieldsController(self.viewer, self.scene, parent=self)
        self.welcome = WelcomePanel()
        self.stack = QStackedWidget()
        self.stack.addWidget(self.welcome)
        self.setCentralWidget(self.stack)

        self.acts = window_actions.create(self)
        self.browser = StudyBrowser()
        self.result_panel = ResultPanel(self.result, self.viewer, self.acts.heatmap)
        self.result_panel.correctRequested.connect(self.show_corrected)
        self.lung_panel = LungPanel(self.lungs, self.acts.lung_outline, self.acts.ctr)
        self.problems = ProblemsPanel()
        self.comparison = ComparisonView(self)  # the viewer page: 1×1, 1×2 or 2×2 viewports, self.view first
        self.stack.addWidget(self.comparison)
        self._build_docks()
        self._build_status_bar()
        window_actions.install(self, self.acts)
        self._connect()
        self.welcome.set_recent(self.settings.recent_folders)
        self._on_model_chosen()
        self.desk = desk.install(self)

    # ------------------------------------------------------------------ layout
    def _build_docks(self) -> None:
        left = QDockWidget("Studies", self)
        left.setObjectName("studies")
        left.setWidget(self.browser)
        left.setFeatures(QDockWidget.DockWidgetFeature.DockWidgetMovable | QDockWidget.DockWidgetFeature.DockWidgetFloatable)
        self.addDockWidget(Qt.DockWidgetArea.LeftDockWidgetArea, left)
        right = QDockWidget("Result", self)
        right.setObjectName("result")
        right.setWidget(_scrolling(_stacked(self.result_panel, self.lung_panel)))
        right.setFeatures(left.features())
        self.addDockWidget(Qt.DockWidgetArea.RightDockWidgetArea, right)
        self.problems_dock = QDockWidget("Problems: files that could not be read", self)
        self.problems_dock.setObjectName("problems")
        self.problems_dock.setWidget(self.problems)
        self.addDockWidget(Qt.DockWidgetArea.BottomDockWidgetArea, self.problems_dock)
        self.problems_dock.hide()
        self.resizeDocks([left, right], [330, 300], Qt.Orientation.Horizontal)

    def _build_status_bar(self) -> None:
        bar = self.statusBar()
        self.readout = QLabel()
        # Ignored: a long readout is cut, never widening the window beyond a small screen.
        self.readout.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        bar.addWidget(self.readout, 1)
        self.progress = JobProgress()
        bar.addPermanentWidget(self.progress)
        self.problems_button = QPushButton()
        self.problems_button.setFlat(True)
        self.problems_button.hide()
        self.problems_button.clicked.connect(self.problems_dock.show)
        bar.addPermanentWidget(self.problems_button)
        self.model_label = QLabel()
        bar.addPermanentWidget(self.model_label)

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
        self.problems.countChanged.connect(self._on_problem_count)
        c = self.classification
        c.modelChosen.connect(self._on_model_chosen)
        c.modelReady.connect(self._on_model_loaded)
        c.modelUnavailable.connect(self._on_model_unavailable)
        c.camShown.connect(self.camShown)
        c.problem.connect(self._report_problem)
        c.batchProgress.connect(lambda done, total, name: self.progress.set_progress(done, total, name))
        c.batchFinished.connect(self.classifyAllFinished)
        self.service.predicted.connect(self._on_predicted)
        self.viewer.heatmapOpacityChanged.connect(lambda v: setattr(self.settings, "cam_opacity", v))
        self.viewer.imageChanged.connect(self._rebuild_presets)

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

    def _on_model_chosen(self) -> None:
        card = self.classification.card
        self.model_label.setText(f"Model: {card.name} (loading…)" if card else "No model")
        self.model_label.setToolTip(card.summary() if card else self.result.message)
        self.acts.classify_study.setEnabled(False)
        self.acts.classify_all.setEnabled(False)

    @while_alive
    def _on_model_loaded(self, device_text: str) -> None:
        self.model_label.setText(f"Model: {self.classification.card.name} · {device_text}")
        self.acts.classify_study.setEnabled(True)
        self.acts.classify_all.setEnabled(True)
        self._start_thumbnails_when_model_settled()
        self.modelReady.emit(device_text)

    @while_alive
    def _on_model_unavailable(self, message: str) -> None:
        if self.classification.card is not None:
            self.model_label.setText("Model failed to load")
            self.model_label.setToolTip(message)
        self._start_thumbnails_when_model_settled()
        self.modelUnavailable.emit(message)

    # ------------------------------------------------------------------ opening
    def open_folder_dialog(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Open a folder of DICOM studies", self.settings.last_folder)
        if folder:
            self.open_paths([Path(folder)])

    def open_files_dialog(self) -> None:
        files, _ = QFileDialog.getOpenFileNames(self, "Open DICOM, PNG or JPEG files or a DICOMDIR",
                                                self.settings.last_folder,
                                                "Images (*.dcm *.dicom *.dic *.ima DICOMDIR *.png *.jpg *.jpeg);;"
                                                "DICOM (*.dcm *.dicom *.dic *.ima DICOMDIR);;"
                                                "PNG and JPEG (*.png *.jpg *.jpeg);;All files (*)")
        if files:
            self.open_paths([Path(f) for f in files])

    def open_sample(self) -> None:
        self.open_paths([samples_dir() / "study"])

    def open_paths(self, paths: list[Path]) -> Worker | None:
        """Scan ``paths`` (folders recursively, DICOMDIRs, DICOM, PNG and JPEG files) and show what
        they hold; None, doing nothing, once the window is closing."""
        if self._closing:
            return None
        self._stop_jobs()
        self.browser.clear()
        self.comparison.clear()
        self._pending_thumbnails = []
        self.problems.clear_problems()
        self.images.clear()
        self.viewer.set_image(None)
        self.view.set_message("Scanning…")
        self.stack.setCurrentIndex(VIEWER_PAGE)
        worker = create_worker(scan_paths, [Path(p) for p in paths], _progress=True)
        worker.progress.connect(self._on_scan_progress)
        worker.returned.connect(lambda results: self._on_scanned(worker, paths, results))
        worker.errored.connect(lambda exc: self._on_scan_failed(worker, paths, exc))
        self.scan_worker = worker
        self.progress.track("Scanning", worker)
        return worker.start()

    @while_alive
    def _on_scan_progress(self, value) -> None:
        self.progress.set_progress(*value)

    @while_alive
    def _on_scanned(self, worker: Worker, paths: list[Path], results) -> None:
        if worker is not self.scan_worker:
            return  # a newer open replaced this scan
        for result in results:
            self.problems.add_many((error.path, error.reason) for error in result.errors)
        steps = itertools.chain.from_iterable(self.browser.add_result_steps(result) for result in results)
        self._fill_tree(worker, paths, results, steps)

    @while_alive
    def _fill_tree(self, worker: Worker, paths: list[Path], results, steps) -> None:
        """Add one step of the scanned images to the tree, then let the event loop run."""
        if worker is not self.scan_worker:
            return  # a newer open replaced this scan while the tree was filling
        if next(steps, _TREE_FILLED) is not _TREE_FILLED:
            QTimer.singleShot(0, lambda: self._fill_tree(worker, paths, results, steps))
            return
        self._show_scanned(paths, results)

    def _show_scanned(self, paths: list[Path], results) -> None:
        images = self.browser.image_paths()
        cancelled = any(r.cancelled for r in results)
        for path in paths:
            self.settings.add_recent(path)
        self.welcome.set_recent(self.settings.recent_folders)
        message = f"{len(images)} image(s) found" + (" (scan cancelled)" if cancelled else "")
        self.statusBar().showMessage(message, 8000)
        logger.info("opened %d path(s): %d images, %d problems", len(paths), len(images), self.problems.rowCount())
        if images:
            self.browser.select_path(images[0])
            self._pending_thumbnails = images
            self._start_thumbnails_when_model_settled()
        else:
            hint = " See Problems below." if self.problems.rowCount() else ""
            self.view.set_message("No DICOM, PNG or JPEG images found here." + hint)
        self.scanFinished.emit(results)

    @while_alive
    def _on_scan_failed(self, worker: Worker, paths: list[Path], exc: Exception) -> None:
        if worker is not self.scan_worker:
            return
        reason = str(exc)
        for path in paths:
            self.problems.add(path, reason)
        self.view.set_message(f"Cannot open: {reason}")
        self.scanFinished.emit([])

    def _start_thumbnails_when_model_settled(self) -> None:
        """Decode thumbnails once the model has loaded (or will not): both need the interpreter,
        and the reader waits for the classification, not for the thumbnails."""
        if self._pending_thumbnails and self.classification.settled:
            paths, self._pending_thumbnails = self._pending_thumbnails, []
            self._start_thumbnails(paths)

    def _start_thumbnails(self, paths: list[Path]) -> None:
        worker = create_worker(thumbnails, paths)
        worker.yielded.connect(self._on_thumbnail)
        self.thumbnail_worker = worker
        worker.start()

    @while_alive
    def _on_thumbnail(self, value) -> None:
        path, pixels, reason = value
        if not self.browser.has_image(path):
            return  # from a folder that is no longer open
        if pixels is not None:
            self.browser.set_thumbnail(path, pixels)
        else:
            self._report_problem(path, reason)

    @while_alive
    def _report_problem(self, path: Path, reason: str) -> None:
        self.problems.add(path, reason)
        self.browser.mark_problem(path, reason)

    def _stop_jobs(self) -> None:
        for worker in (self.scan_worker, self.thumbnail_worker):
            if worker is not None:
                worker.quit()
        self.classification.stop()

    # ------------------------------------------------------------------ showing an image
    def show_image(self, path: Path) -> None:
        """Decode ``path`` (in a worker unless cached) and show it."""
        path = Path(path)
        self._wanted = path
        cached = self.images.get(path)
        if cached is not None:
            self._display(cached)
            return
        self.view.set_message("Loading…")
        worker = create_worker(load_image, path)
        worker.returned.connect(lambda loaded: self._on_loaded(path, loaded))
        worker.errored.connect(lambda exc: self._on_load_failed(path, exc))
        self._load_worker = worker
        worker.start()

    @while_alive
    def _on_loaded(self, path: Path, loaded: LoadedImage) -> None:
        self.images.put(path, loaded)
        if path == self._wanted:
            self._display(loaded)

    @while_alive
    def _on_load_failed(self, path: Path, exc: Exception) -> None:
        reason = getattr(exc, "reason", None) or f"{type(exc).__name__}: {exc}"
        self._report_problem(path, reason)
        if path == self._wanted:
            self.viewer.set_image(None)
            self.result.set_image(())
            self.view.set_message(f"This file cannot be displayed:\n{reason}")
            self.imageFailed.emit(path, reason)

    def show_corrected(self) -> None:
        """Replace the shown image by the film turned and/or inverted as the image checks say
        (``cxr_engine.models.image_checks.reoriented``; the file is not changed) and classify it again."""
        from cxr_engine.models.image_checks import reoriented
        from cxr_engine.pixels.rendering import Renderer

        check, image = self.result.image_check, self.viewer.image
        if image is None or check is None or not check.correctable:
            return
        upright = reoriented(image, check.reasons)
        loaded = LoadedImage(upright, Renderer(upright))
        self.images.put(Path(image.path), loaded)
        self.classification.forget(image.path)
        self._display(loaded)

    def _display(self, loaded: LoadedImage) -> None:
        self.view.set_message("")
        self.viewer.set_image(loaded.image, loaded.renderer)
        card = self.classification.card
        self.result.set_image(image_warnings(loaded.image, card.input_size if card else None),
                              loaded.image.metadata.view_position)
        self.imageShown.emit(loaded.image.path)
        self.classification.classify_current()

    @while_alive
    def _on_predicted(self, path: Path, prediction) -> None:
        summary = ", ".join(f"{c}: {format_percent(p)}" for c, p in zip(prediction.classes, prediction.probabilities))
        self.browser.set_result(path, f"{prediction.display_label} {format_percent(prediction.probabilities[prediction.index])}",
                                f"{summary} ({prediction.model_name})")

    def _on_problem_count(self, count: int) -> None:
        self.problems_button.setText(f"⚠ {count} file(s) could not be read")
        self.problems_button.setVisible(count > 0)

    # ------------------------------------------------------------------ window presets
    def _rebuild_presets(self) -> None:
        menu = self.acts.preset_menu
        menu.clear()
        image = self.viewer.image
        if image is None:
            return
        for preset in presets_for(image, self.settings.window_presets):
            action = menu.addAction(preset.name)
            action.triggered.connect(lambda _=False, p=preset: self.apply_preset(p))
        menu.addSeparator()
        menu.addAction("Save current window as preset…", self.save_preset)

    def apply_preset(self, preset) -> None:
        if self.viewer.image is not None:
            self.viewer.set_voi(preset.voi_for(self.viewer.image), preset.name)

    def apply_auto_window(self) -> None:
        self.apply_preset(Auto())

    def reset_view(self) -> None:
        """Default window, original polarity, upright and fitted."""
        self.viewer.reset_display()
        self.view.fit()

    def save_preset(self) -> None:
        image, voi = self.viewer.image, self.viewer.voi
        if image is None or voi is None or not hasattr(voi, "center"):
            return
        name, ok = QInputDialog.getText(self, "Save window preset", "Preset name:")
        if ok and name.strip():
            self.settings.save_window_preset(percentile_band(image, voi, name.strip()))
            self._rebuild_presets()

    # ------------------------------------------------------------------ annotations
    def _ask_text(self, x: float, y: float) -> None:
        text, ok = QInputDialog.getText(self, "Text annotation", "Text:")
        if ok and text.strip():
            self.scene.commit(Annotation(TEXT, ((x, y),), text.strip()))

    def _edit_text(self, item) -> None:
        text, ok = QInputDialog.getText(self, "Edit text annotation", "Text:", text=item.annotation.text)
        if ok and text.strip():
            item.set_text(text.strip())

    def set_tool(self, mode: str) -> None:
        self.view.mode = mode
        self.view.setFocus()

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
        from .settings_dialog import SettingsDialog

        dialog = SettingsDialog(list_bundled(self._models_dir), self.settings.model, self.settings.device, self,
                                backend=self.settings.backend)
        if dialog.exec():
            self.apply_settings(dialog.model(), dialog.device(), dialog.backend())

    def apply_settings(self, model: str, device: str, backend: str) -> None:
        """Store the Settings dialog's choice and load the model with it."""
        self.settings.model, self.settings.device, self.settings.backend = model, device, backend
        self.classification.reload(model, device, backend)

    def export_view(self):
        """Ask for the options and the file, then write the view as PNG or JPEG (``view_export``)."""
        from .view_export import run_view_export_dialog

        return run_view_export_dialog(self)

    def export_pdf(self, scope: str) -> None:
        """Ask for the options and the file, then write the report (``scope``: image or study)."""
        from .export_dialog import run_export_dialog

        run_export_dialog(self, scope)

    def start_export(self, request) -> "ReportExport":
        """Write the PDF ``request`` describes, in the background; ``exportFinished`` or ``exportFailed`` follows."""
        from .report_export import ReportExport

        export = ReportExport(self, request)
        export.progress.connect(lambda done, total: self.progress.set_progress(done, total))
        export.finished.connect(self._on_exported)
        export.failed.connect(self._on_export_failed)
        self.progress.track("Exporting PDF", export.start())
        self._export = export
        return export

    @while_alive
    def _on_exported(self, path: Path) -> None:
        skipped = self._export.skipped if self._export is not None else []
        for skipped_path, reason in skipped:
            self.problems.add(skipped_path, f"left out of the PDF: {reason}")
        self.statusBar().showMessage(f"PDF written: {path}", 10000)
        self.exportFinished.emit(path)

    @while_alive
    def _on_export_failed(self, message: str) -> None:
        self.statusBar().showMessage(message, 10000)
        self.exportFailed.emit(message)

    def about(self) -> None:
        from .help import show_about

        show_about(self)

    # ------------------------------------------------------------------ drag and drop
    def dragEnterEvent(self, event):
        if event.mimeData().hasUrls():
            event.acceptProposedAction()

    def dropEvent(self, event):
        paths = [Path(url.toLocalFile()) for url in event.mimeData().urls() if url.isLocalFile()]
        if paths:
            self.open_paths(paths)
            event.acceptProposedAction()

    # ------------------------------------------------------------------ closing
    def closeEvent(self, event):
        self._closing = True
        self._stop_jobs()
        if not quit_all(15_000):
            logger.warning("some background work was still running at exit")
        layout_state.save(self)
        self.settings.sync()
        super().closeEvent(event)
