"""Comparison: the viewer as 1×1, 1×2 or 2×2 viewports, linked on request, with priors offered.

The first viewport is the main viewer (the current image: the browser's selection, the result
panel, the toolbar and the keys act on it). The others each own a ``ViewerModel``, an
``ImageScene`` and an ``ImageView``, so each keeps its own window, zoom, heat-map and (through
the shared per-image ``AnnotationStore``) the annotations of the image it shows. Images reach
them by dragging a study, series or image from the browser, or from the offer bar, which
proposes the same patient's prior study or, for a frontal film, the lateral of the same study.
"""
from __future__ import annotations

from pathlib import Path

import shiboken6
from PySide6.QtCore import QEvent, QObject, QPointF, Signal
from PySide6.QtWidgets import (
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from cxr_engine.display_text import format_date
from cxr_engine.pixels.windowing import LINEAR, Window

from .formatting import cannot_display_text, loading_text
from .image_jobs import LoadedImage
from .image_scene import ImageScene
from .image_view import ImageView
from .presets import drag_start_window
from .study_browser import PATHS_MIME
from .text_prompts import ask_text
from .viewer_model import ViewerModel
from .wanted_image import WantedImageLoader
from .workers import while_alive

#: Layout name → (rows, columns) of viewports.
LAYOUTS = {"1x1": (1, 1), "1x2": (1, 2), "2x2": (2, 2)}
FRONTAL = frozenset({"PA", "AP"})
LATERAL = frozenset({"LATERAL", "LL", "RL", "LAT"})
EMPTY_MESSAGE = "Drag a study, series or image here from the study browser"
ACTIVE_STYLE = "border: 2px solid #d9822b;"
IDLE_STYLE = "border: 2px solid #202020;"


def dropped_paths(mime) -> list[Path]:
    """The image paths a drag from the study browser carries (``[]`` for any other drag)."""
    if not mime.hasFormat(PATHS_MIME):
        return []
    text = bytes(mime.data(PATHS_MIME)).decode("utf-8")
    return [Path(line) for line in text.splitlines() if line]


class _DropTarget(QObject):
    """Event filter that lets a view's viewport take drags from the browser."""

    def __init__(self, view: ImageView, on_drop):
        super().__init__(view)
        self._on_drop = on_drop
        view.setAcceptDrops(True)
        view.viewport().setAcceptDrops(True)
        view.viewport().installEventFilter(self)

    def eventFilter(self, obj, event):
        kind = event.type()
        if kind in (QEvent.Type.DragEnter, QEvent.Type.DragMove) and dropped_paths(event.mimeData()):
            event.acceptProposedAction()
            return True
        if kind == QEvent.Type.Drop:
            paths = dropped_paths(event.mimeData())
            if paths:
                self._on_drop(paths[0])
                event.acceptProposedAction()
                return True
        return False


class Viewport(QObject):
    """An extra viewport: its own model, scene and view, decoding and classifying off the GUI thread.

    The heat-map layer's visibility, opacity and style (colour or outline), the corner overlay and
    the tool follow the main viewer's, so one toggle serves every viewport; the heat-map itself is
    this image's own.
    """

    shown = Signal(object)  # Path now on screen
    failed = Signal(object, str)

    def __init__(self, window, parent: QObject | None = None):
        super().__init__(parent)
        self.window = window
        main = window.viewer
        self.model = ViewerModel(self)
        self.scene = ImageScene(self.model, window.annotations, self)
        self.view = ImageView(self.scene)
        self.view.set_message(EMPTY_MESSAGE)
        self.loader = WantedImageLoader(window.workspace, self)
        self.loader.loading.connect(self._show_loading)
        self.loader.loaded.connect(self._display)
        self.loader.failed.connect(self._on_failed)
        self.model.set_heatmap_opacity(main.heatmap_opacity)
        self.model.set_heatmap_visible(main.heatmap_visible)
        self.model.set_corner_overlay(main.corner_overlay)
        self.model.set_heatmap_style(main.heatmap_style)
        main.heatmapStyleChanged.connect(self.model.set_heatmap_style)
        main.heatmapVisibleChanged.connect(self.model.set_heatmap_visible)
        main.heatmapOpacityChanged.connect(self.model.set_heatmap_opacity)
        main.cornerOverlayChanged.connect(self.model.set_corner_overlay)
        window.service.heatmapReady.connect(self._on_heatmap)
        window.classification.resultsForgotten.connect(lambda: self.model.set_heatmap(None))  # another model
        window.service.loaded.connect(lambda *_: self._request_heatmap())
        self.view.textRequested.connect(self._ask_text)
        self.view.pixelHovered.connect(window.view.pixelHovered)
        self.drop_target = _DropTarget(self.view, self.show_path)

    @property
    def path(self) -> Path | None:
        """The film this viewport shows or is decoding; None when empty."""
        return self.loader.wanted

    def show_path(self, path: Path) -> None:
        """Decode ``path`` (through the window's workspace: once, from its shared cache) and show it here."""
        self.loader.want(path)

    def clear(self) -> None:
        self.loader.forget()
        self.model.set_image(None)
        self.view.set_message(EMPTY_MESSAGE)

    def _show_loading(self, path: Path) -> None:
        """As the main viewer's: the film shown before leaves at once while ``path`` decodes."""
        self.model.set_image(None)
        self.view.set_message(loading_text(path))

    def _on_failed(self, path: Path, reason: str) -> None:
        self.model.set_image(None)
        self.view.set_message(cannot_display_text(reason))
        self.failed.emit(path, reason)

    def _display(self, loaded: LoadedImage) -> None:
        self.view.set_message("")
        self.model.set_image(loaded.image, loaded.renderer)
        self._request_heatmap()
        self.shown.emit(self.path)

    def _request_heatmap(self) -> None:
        service = self.window.service
        # Not before the model is ready: the service keeps one pending request, the main viewer's.
        if self.model.image is not None and service.ready:
            service.request_heatmap(self.model.image, "")

    @while_alive
    def _on_heatmap(self, path: Path, heatmap_result) -> None:
        if self.model.image is not None and Path(path) == self.model.path:
            # As the main viewer's (ClassificationController): scaled by the class's probability.
            self.model.set_heatmap(heatmap_result.heatmap, heatmap_result.target_class,
                                   heatmap_result.prediction.probability(heatmap_result.target_class))

    def _ask_text(self, x: float, y: float) -> None:
        ask_text(self.view, self.scene, x, y)


class ViewLinker(QObject):
    """Links window/level, zoom and pan of several viewports while ``enabled``.

    Window/level moves by the same amount everywhere: a change of centre and width by (dc, dw)
    in one viewport adds (dc, dw) to the others' (a VOI LUT, which has no centre, starts from the
    image's automatic window, as a drag does). Zoom and pan are matched relative to each image:
    the same magnification relative to fitting the image, the same point of the image (as a
    fraction of its width and height) in the middle of the view, so a prior of another size or
    resolution follows sensibly; a fitted view makes the others fit.
    """

    def __init__(self, parent: QObject | None = None):
        super().__init__(parent)
        self.enabled = False
        self._pairs: list[tuple[ViewerModel, ImageView]] = []
        self._last_voi: dict[int, object] = {}
        self._syncing = False

    def add(self, model: ViewerModel, view: ImageView) -> None:
        self._pairs.append((model, view))
        self._last_voi[id(model)] = model.voi
        model.imageChanged.connect(lambda m=model: self._remember(m))
        model.windowChanged.connect(lambda m=model: self._on_window(m))
        view.zoomChanged.connect(lambda _=0.0, v=view: self._on_geometry(v))
        view.horizontalScrollBar().valueChanged.connect(lambda _=0, v=view: self._on_geometry(v))
        view.verticalScrollBar().valueChanged.connect(lambda _=0, v=view: self._on_geometry(v))

    def set_enabled(self, enabled: bool) -> None:
        self.enabled = bool(enabled)
        for model, _ in self._pairs:
            self._remember(model)

    def _remember(self, model: ViewerModel) -> None:
        self._last_voi[id(model)] = model.voi

    # ------------------------------------------------------------------ window/level
    def _on_window(self, source: ViewerModel) -> None:
        before, after = self._last_voi.get(id(source)), source.voi
        self._last_voi[id(source)] = after
        if self._syncing or not self.enabled or source.image is None:
            return
        start = drag_start_window(source.image, before) if before is not None else None
        now = drag_start_window(source.image, after) if after is not None else None
        if start is None or now is None:
            return
        dc, dw = now.center - start.center, now.width - start.width
        self._syncing = True
        try:
            for model, _ in self._pairs:
                if model is source or model.image is None:
                    continue
                base = drag_start_window(model.image, model.voi)
                minimum = 1.0 if base.function == LINEAR else 1e-3
                model.set_voi(Window(base.center + dc, max(base.width + dw, minimum), base.function), "Linked")
                self._last_voi[id(model)] = model.voi
        finally:
            self._syncing = False

    # ------------------------------------------------------------------ zoom and pan
    def _on_geometry(self, source: ImageView) -> None:
        if self._syncing or not self.enabled or not _alive(source) or source.model.image is None:
            return
        relative, centre = view_geometry(source)
        self._syncing = True
        try:
            for model, view in self._pairs:
                if view is source or model.image is None or not _alive(view):
                    continue
                if source.fit_mode:
                    view.fit()
                else:
                    set_view_geometry(view, relative, centre)
        finally:
            self._syncing = False


def _alive(view: ImageView) -> bool:
    """False while a closing window deletes the view's scene (its scroll bars still signal then)."""
    return shiboken6.isValid(view) and shiboken6.isValid(view.image_scene.image_item)


def fit_zoom(view: ImageView) -> float:
    """The zoom at which the whole image just fits the view."""
    rect = view.image_scene.image_item.sceneBoundingRect()
    port = view.viewport().rect()
    if rect.isEmpty() or port.isEmpty():
        return 1.0
    return min(port.width() / rect.width(), port.height() / rect.height())


def view_geometry(view: ImageView) -> tuple[float, QPointF]:
    """(zoom relative to fitting, the image point in the view's middle as fractions of its width and height)."""
    rect = view.image_scene.image_item.sceneBoundingRect()
    middle = view.mapToScene(view.viewport().rect().center())
    centre = QPointF((middle.x() - rect.left()) / max(rect.width(), 1e-9),
                     (middle.y() - rect.top()) / max(rect.height(), 1e-9))
    return view.zoom / fit_zoom(view), centre


def set_view_geometry(view: ImageView, relative: float, centre: QPointF) -> None:
    """Show the image at ``relative`` × its fitting zoom with the fraction ``centre`` in the middle."""
    view.set_zoom(relative * fit_zoom(view))
    rect = view.image_scene.image_item.sceneBoundingRect()
    view.centerOn(QPointF(rect.left() + centre.x() * rect.width(), rect.top() + centre.y() * rect.height()))


# ---------------------------------------------------------------------------------------- offers


def prior_study(browser, path: Path) -> tuple[str, Path] | None:
    """``(study date, its frontal film)`` of the most recent study of the same patient made before the study
    of ``path``: by date, and on the same day by study time (a morning and an evening portable film of an ICU
    patient); None when there is none or the dates are missing. The film offered is the study's first frontal
    one (PA or AP), else its first that is not a lateral, else its first: a lateral beside a frontal film
    compares nothing."""
    studies = browser.study_moments(path)
    current = next(((date, time) for date, time, paths in studies if Path(path) in paths), None)
    if current is None or not current[0]:
        return None

    def before(date: str, time: str) -> bool:
        return bool(date) and (date < current[0] or (date == current[0] and bool(time) and bool(current[1])
                                                     and _seconds(time) < _seconds(current[1])))

    earlier = [(date, time, paths) for date, time, paths in studies if paths and before(date, time)]
    if not earlier:
        return None
    date, _, paths = max(earlier, key=lambda study: (study[0], _seconds(study[1]) if study[1] else -1))
    views = [browser.view_position(p) for p in paths]
    film = next((p for p, v in zip(paths, views) if v in FRONTAL), None) or \
        next((p for p, v in zip(paths, views) if v not in LATERAL), paths[0])
    return date, film


def _seconds(time: str) -> float:
    """A DICOM TM value (``HHMMSS.FFFFFF``, or shorter: ``HHMM``, ``HH``) in seconds since midnight."""
    digits = str(time).strip().replace(":", "")
    whole, _, fraction = digits.partition(".")
    whole = (whole + "0000")[:6] if whole.isdigit() else "000000"
    fraction = fraction if fraction.isdigit() else "0"  # a damaged value must not stop the offer
    return int(whole[:2]) * 3600 + int(whole[2:4]) * 60 + int(whole[4:6]) + float(f"0.{fraction}")


def lateral_of(browser, path: Path) -> Path | None:
    """The first lateral film of the same study as the frontal film ``path``, else None."""
    if browser.view_position(path) not in FRONTAL:
        return None
    study = next((paths for _, paths in browser.patient_studies(path) if Path(path) in paths), [])
    return next((p for p in study if browser.view_position(p) in LATERAL), None)


class OfferBar(QWidget):
    """A line above the viewports offering the prior study or the lateral film of the current image."""

    def __init__(self, parent=None):
        super().__init__(parent)
        row = QHBoxLayout(self)
        row.setContentsMargins(6, 2, 6, 2)
        self.label = QLabel()
        self.label.setWordWrap(True)
        row.addWidget(self.label, 1)
        self.prior_button = QPushButton("Compare side by side")
        self.lateral_button = QPushButton("Show lateral beside")
        row.addWidget(self.prior_button)
        row.addWidget(self.lateral_button)
        self.setStyleSheet("background:#1f2d3d;")
        self.prior: Path | None = None
        self.lateral: Path | None = None
        self.hide()

    def offer(self, prior: tuple[str, Path] | None, lateral: Path | None) -> None:
        self.prior = prior[1] if prior else None
        self.lateral = lateral
        parts = []
        if prior:
            parts.append(f"A prior study of this patient is open: {format_date(prior[0])}.")
        if lateral:
            parts.append("This study also holds a lateral film.")
        self.label.setText(" ".join(parts))
        self.prior_button.setVisible(prior is not None)
        self.lateral_button.setVisible(lateral is not None)
        self.setVisible(bool(parts))


class ComparisonView(QWidget):
    """The viewer page: the offer bar over a grid of viewports; the first is ``window.view``."""

    layoutChanged = Signal(str)

    def __init__(self, window, parent=None):
        super().__init__(parent)
        self.window = window
        self.layout_name = "1x1"
        self.offers = OfferBar()
        self.linker = ViewLinker(self)
        self.linker.add(window.viewer, window.view)
        self.viewports: list[Viewport] = []
        for _ in range(3):
            viewport = Viewport(window, self)
            viewport.view.setParent(self)  # owned by the page even while its slot is hidden
            viewport.view.hide()
            self.viewports.append(viewport)
            self.linker.add(viewport.model, viewport.view)
        self.main_drop_target = _DropTarget(window.view, window.browser.select_path)
        self.grid = QGridLayout()
        self.grid.setSpacing(2)
        self.grid.setContentsMargins(0, 0, 0, 0)
        box = QVBoxLayout(self)
        box.setContentsMargins(0, 0, 0, 0)
        box.setSpacing(0)
        box.addWidget(self.offers)
        box.addLayout(self.grid, 1)
        self.offers.prior_button.clicked.connect(lambda: self.compare_with(self.offers.prior))
        self.offers.lateral_button.clicked.connect(lambda: self.compare_with(self.offers.lateral))
        window.imageShown.connect(self._offer_for)
        self.set_layout("1x1")

    @property
    def views(self) -> list[ImageView]:
        """Every viewport's view, the main one first."""
        return [self.window.view] + [viewport.view for viewport in self.viewports]

    def set_layout(self, name: str) -> None:
        """Show ``name`` (a key of ``LAYOUTS``) viewports; hidden ones keep their image."""
        if name not in LAYOUTS:
            raise ValueError(f"unknown layout {name!r}; known: {', '.join(LAYOUTS)}")
        rows, columns = LAYOUTS[name]
        for view in self.views:
            self.grid.removeWidget(view)
            view.hide()
        for index, view in enumerate(self.views[: rows * columns]):
            self.grid.addWidget(view, index // columns, index % columns)
            view.show()
        for i in range(2):  # equal shares, whatever each view's size hint
            self.grid.setRowStretch(i, 1 if i < rows else 0)
            self.grid.setColumnStretch(i, 1 if i < columns else 0)
        self.layout_name = name
        self.layoutChanged.emit(name)

    def set_mode(self, mode: str) -> None:
        for viewport in self.viewports:
            viewport.view.mode = mode

    def compare_with(self, path: Path | None, slot: int = 0) -> None:
        """Show ``path`` in comparison viewport ``slot`` (0 = the one beside the main viewer), in 1×2 at least."""
        if path is None:
            return
        if self.layout_name == "1x1":
            self.set_layout("1x2")
        self.viewports[slot].show_path(path)

    def clear(self) -> None:
        """Empty the comparison viewports (a new folder was opened)."""
        for viewport in self.viewports:
            viewport.clear()
        self.offers.offer(None, None)

    def _offer_for(self, path: Path) -> None:
        browser = self.window.browser
        shown = {viewport.path for viewport in self.viewports[: self._visible() - 1]}
        prior = prior_study(browser, path)
        lateral = lateral_of(browser, path)
        self.offers.offer(prior if prior and prior[1] not in shown else None, lateral if lateral not in shown else None)

    def _visible(self) -> int:
        rows, columns = LAYOUTS[self.layout_name]
        return rows * columns
