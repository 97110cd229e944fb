"""Comparison: the viewer as 1×1, 1×2 or 2×2 viewports, linked on request, with priors offered.

The first viewport is the main viewer (the current image: the browser's selection, the result
panel and the toolbar act on it). The others each own a ``ViewerModel``, an ``ImageScene`` and an
``ImageView``, so each keeps its own window, zoom, heat-map and (through the shared per-image
``AnnotationStore``) the annotations of the image it shows. Images reach them by dragging a study,
series or image from the browser, or from the offer bar (or **P**), which proposes the same patient's
prior study or, for a frontal film, the lateral of the same study.

With more than one viewport shown, each is captioned ("Current", "Prior", "Later study", "Same study",
with the study's date and time) and the active one (the viewport with the keyboard focus, else the
current film's) is framed in orange: the display keys (window presets 2–9, auto window, invert, rotate,
flips, fit, 1:1, reset) act on it; the other keys, the toolbar and the menus act on the current film (the
frame's tooltip says so). A film of another patient is never kept silently: when the current film changes to
another patient, every viewport holding a film that is known to be another patient's is emptied, and one dragged
in on purpose is captioned in red. A film whose patient is not identified (a PNG or JPEG, a DICOM file without
Patient ID and without name and birth date: known only within its own study, ``scanning.patient_key``) cannot be
told to be another patient's or the same one's: it is kept, captioned "Patient not known to be the same".
"""
from __future__ import annotations

import ast
from pathlib import Path

import shiboken6
from PySide6.QtCore import QEvent, QKeyCombination, QObject, QPointF, Qt, Signal
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import (
    QApplication,
    QFrame,
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QSizePolicy,
    QVBoxLayout,
    QWidget,
)

from cxr_engine.display_text import format_date, format_time
from cxr_engine.pixels.windowing import LINEAR, Window

from .formatting import cannot_display_text, loading_text
from .image_jobs import LoadedImage
from .image_scene import ImageScene
from .image_view import ImageView
from .presets import Auto, drag_start_window, presets_for
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
#: Shown in a viewport emptied because the current film changed to another patient.
OTHER_PATIENT_MESSAGE = ("The film shown here was another patient's and was removed when the current film "
                         "changed to {patient}.\n\n" + EMPTY_MESSAGE)
ACTIVE_STYLE = "border: 2px solid #d9822b;"
IDLE_STYLE = "border: 2px solid #202020;"
OTHER_PATIENT_FRAME = "border: 2px solid #b03030;"
#: A viewport's caption; one showing another patient's film than the current one stands out in red.
CAPTION_STYLE = "color:#e0e0e0; background:#202020; padding:1px 4px;"
OTHER_PATIENT_STYLE = "color:#ffffff; background:#b03030; font-weight:bold; padding:1px 4px;"
#: A viewport's caption when its film and the current one cannot be told to be one patient's or two.
UNKNOWN_PATIENT_STYLE = "color:#202020; background:#e0b030; font-weight:bold; padding:1px 4px;"
#: The caption's start for another patient's film, and for a film not known to be the current patient's.
ANOTHER_PATIENT, PATIENT_NOT_KNOWN = "⚠ Another patient", "⚠ Patient not known to be the same"
#: What the pane's frame means (its tooltip, with the caption's whole text).
FRAME_TIP = ("Framed in orange: the active viewport. The display keys (window presets 2–9, Shift+A, I, R, "
             "Shift+H, Shift+V, F, 1, Home) act on its film; the toolbar, the menus and the other keys act on the "
             "current film (the first viewport).")
#: ``same_patient``'s answers.
SAME, OTHER, UNKNOWN = "same", "other", "unknown"
#: The key that shows the offered prior study beside the current film ("Compare side by side").
COMPARE_KEY = "P"
CURRENT, PRIOR, LATER, SAME_STUDY, SAME_FILM, OTHER_STUDY = (
    "Current", "Prior", "Later study", "Same study", "Same film", "Other study")


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
    changed = Signal()  # the film wanted here changed (shown, decoding or emptied)

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
        self.changed.emit()

    def clear(self, message: str = EMPTY_MESSAGE) -> None:
        self.loader.forget()
        self.model.set_image(None)
        self.view.set_message(message)
        self.changed.emit()

    def apply_preset(self, preset) -> None:
        """Apply a window preset (``presets``) to this viewport's film, as the main viewer's keys do to its own."""
        if self.model.image is not None:
            self.model.set_voi(preset.voi_for(self.model.image), preset.name)

    def apply_nth_preset(self, index: int) -> None:
        """The ``index``-th preset offered for this film (the presets menu's order, keys 2–9)."""
        if self.model.image is not None:
            presets = presets_for(self.model.image, self.window.settings.window_presets)
            if index < len(presets):
                self.apply_preset(presets[index])

    def reset(self) -> None:
        """Default window, original polarity, upright and fitted."""
        self.model.reset_display()
        self.view.fit()

    def _show_loading(self, path: Path) -> None:
        """As the main viewer's: the film shown before leaves at once while ``path`` decodes."""
        self.model.set_image(None)
        self.view.set_message(loading_text(path))

    def _on_failed(self, path: Path, reason: str, file_fault: bool = True) -> None:
        self.model.set_image(None)
        self.view.set_message(cannot_display_text(reason, file_fault))
        self.failed.emit(path, reason)

    def _display(self, loaded: LoadedImage) -> None:
        self.view.set_message("")
        # The film's kept marks first (the scene draws the store's marks of the film it is given): a mark drawn
        # here then joins them; without them the next write kept only the marks drawn here.
        self.window.bring_back_marks(loaded.image.path, loaded.image)
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


def prior_study(browser, path: Path) -> tuple[str, str, Path] | None:
    """``(study date, study time, its frontal film)`` of the most recent study of the same patient made before the study
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
    date, time, paths = max(earlier, key=lambda study: (study[0], _seconds(study[1]) if study[1] else -1))
    views = [browser.view_position(p) for p in paths]
    film = next((p for p, v in zip(paths, views) if v in FRONTAL), None) or \
        next((p for p, v in zip(paths, views) if v not in LATERAL), paths[0])
    return date, time, film


def moment_text(date: str, time: str) -> str:
    """A study's date and time as shown ("2024-05-10 07:00"; the date alone without a time)."""
    return " ".join(part for part in (format_date(date), format_time(time)) if part)


def relation(browser, path: Path, current: Path | None) -> str:
    """What the film ``path`` is to the ``current`` one of the same patient: ``SAME_FILM``, ``SAME_STUDY``,
    ``PRIOR`` (an earlier study: by date, on the same day by time), ``LATER`` or ``OTHER_STUDY`` (no dates to
    tell); ``OTHER_STUDY`` without a current film."""
    if current is None:
        return OTHER_STUDY
    if Path(path) == Path(current):
        return SAME_FILM
    if Path(current) in browser.study_paths(path):
        return SAME_STUDY
    (date, time, _), (now_date, now_time, _) = browser.study_moment(path), browser.study_moment(current)
    if not date or not now_date:
        return OTHER_STUDY
    if date != now_date:
        return PRIOR if date < now_date else LATER
    if time and now_time and _seconds(time) != _seconds(now_time):
        return PRIOR if _seconds(time) < _seconds(now_time) else LATER
    return OTHER_STUDY


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


def patient_identified(browser, path: Path) -> bool:
    """Whether the patient of ``path``'s film is identified beyond its own study: a Patient ID, or a name and a
    birth date (``scanning.patient_key``, whose key holds the study or the file otherwise: a PNG or JPEG, a DICOM
    file without them)."""
    text = browser.patient_of(path)
    try:
        key = ast.literal_eval(text) if text is not None else ()
    except (ValueError, SyntaxError):
        return False
    if not isinstance(key, tuple):
        return False
    key = key[1:] if key[:1] == ("patient",) else key
    return len(key) == 4  # (issuer, patient ID, name, birth date), nothing of the study's or the file's


def same_patient(browser, path: Path, other: Path) -> str:
    """``SAME`` when the films ``path`` and ``other`` are one patient's (as the tree groups them), ``OTHER`` when
    both patients are identified and differ, ``UNKNOWN`` when one of them is not identified (it may be the same
    person: nothing tells)."""
    mine, theirs = browser.patient_of(path), browser.patient_of(other)
    if mine is not None and mine == theirs:
        return SAME
    if patient_identified(browser, path) and patient_identified(browser, other):
        return OTHER
    return UNKNOWN


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
        self.prior_button.setToolTip(f"Show the prior study beside the current film ({COMPARE_KEY})")
        self.lateral_button = QPushButton("Show lateral beside")
        row.addWidget(self.prior_button)
        row.addWidget(self.lateral_button)
        self.setStyleSheet("background:#1f2d3d; color:#e8e8e8;")
        self.prior: Path | None = None
        self.lateral: Path | None = None
        self.hide()

    def offer(self, prior: tuple[str, str, Path] | None, lateral: Path | None,
              current: tuple[str, str] = ("", "")) -> None:
        """Offer ``prior`` (``prior_study``) and/or ``lateral``; ``current`` is the current film's study (date,
        time): a prior of the same day is named with both times, the date alone not telling them apart."""
        self.prior = prior[2] if prior else None
        self.lateral = lateral
        parts = []
        if prior:
            date, time, _ = prior
            if date == current[0] and time:
                now = f" (this film {format_time(current[1])})" if current[1] else ""
                parts.append(f"An earlier study of this patient from the same day is open: "
                             f"{moment_text(date, time)}{now}.")
            else:
                parts.append(f"A prior study of this patient is open: {format_date(date)}.")
        if lateral:
            parts.append("This study also holds a lateral film.")
        self.label.setText(" ".join(parts))
        self.prior_button.setVisible(prior is not None)
        self.lateral_button.setVisible(lateral is not None)
        self.setVisible(bool(parts))


class Caption(QLabel):
    """One line that never widens its pane: cut with "…" to the width it has, the whole text in its tooltip."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self.full_text = ""
        self.setTextFormat(Qt.TextFormat.PlainText)
        self.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Fixed)

    def set_full_text(self, text: str) -> None:
        self.full_text = text
        self.setToolTip(text)
        self._elide()

    def text(self) -> str:  # the whole caption, not the shown cut
        return self.full_text

    def resizeEvent(self, event):
        super().resizeEvent(event)
        self._elide()

    def _elide(self) -> None:
        width = self.contentsRect().width() - 8  # the style's padding
        shown = self.fontMetrics().elidedText(self.full_text, Qt.TextElideMode.ElideRight, max(width, 20))
        if shown != super().text():
            self.setText(shown)


class Pane(QFrame):
    """One viewport's place in the grid: a caption over its view; the active pane is framed in orange."""

    def __init__(self, view: ImageView, index: int, parent=None):
        super().__init__(parent)
        self.setObjectName(f"pane{index}")
        self.view = view
        self.caption = Caption()
        self.caption.setObjectName("caption")
        self.caption.setStyleSheet(CAPTION_STYLE)
        self.caption.hide()
        self.box = QVBoxLayout(self)
        self.box.setContentsMargins(0, 0, 0, 0)
        self.box.setSpacing(0)
        self.box.addWidget(self.caption)
        self.box.addWidget(view, 1)
        self.active = False
        self.other_patient = False
        self.unknown_patient = False

    def show_frame(self, framed: bool, active: bool) -> None:
        """``framed`` (more than one viewport shown): a caption and a frame, orange when ``active``."""
        self.active = active and framed
        self.caption.setVisible(framed)
        idle = OTHER_PATIENT_FRAME if self.other_patient else IDLE_STYLE
        style = (ACTIVE_STYLE if active else idle) if framed else "border: none;"
        self.setStyleSheet(f"QFrame#{self.objectName()} {{ {style} }}")

    def set_caption(self, text: str, other_patient: bool = False, unknown_patient: bool = False) -> None:
        """``other_patient``: another patient's film than the current one (red); ``unknown_patient``: not known to
        be the current patient's (amber)."""
        self.other_patient, self.unknown_patient = other_patient, unknown_patient and not other_patient
        self.caption.set_full_text(text)
        self.caption.setToolTip(f"{text}\n\n{FRAME_TIP}")
        self.caption.setStyleSheet(OTHER_PATIENT_STYLE if other_patient
                                   else UNKNOWN_PATIENT_STYLE if self.unknown_patient else CAPTION_STYLE)


class ComparisonView(QWidget):
    """The viewer page: the offer bar over a grid of viewports; the first is ``window.view``."""

    layoutChanged = Signal(str)

    def __init__(self, window, parent=None):
        super().__init__(parent)
        self.window = window
        self.layout_name = "1x1"
        self.current: Path | None = None  # the current film: selected in the browser, shown in the main viewer
        self.active = 0  # the active viewport: 0 the main one, i + 1 ``viewports[i]``
        self.offers = OfferBar()
        self.linker = ViewLinker(self)
        self.linker.add(window.viewer, window.view)
        self.viewports: list[Viewport] = []
        for _ in range(3):
            viewport = Viewport(window, self)
            self.viewports.append(viewport)
            self.linker.add(viewport.model, viewport.view)
            viewport.changed.connect(self._refresh)
            viewport.view.installEventFilter(self)  # the display keys act on the viewport with the focus
        # Each pane is owned by the page even while its slot is hidden.
        self.panes = [Pane(view, index, self) for index, view in enumerate(self.views)]
        for pane in self.panes:
            pane.hide()
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
        # The reader's choice (before its film decodes), then the film shown or failed: a viewport never
        # keeps another patient's film beside the new current one while it decodes.
        window.browser.imageSelected.connect(self._set_current)
        window.imageShown.connect(self._set_current)
        window.imageFailed.connect(lambda path, *_: self._set_current(path))
        QApplication.instance().focusChanged.connect(self._on_focus)
        self.compare_action = QAction("Compare side by side (prior study)", window)
        self.compare_action.setShortcut(QKeySequence(COMPARE_KEY))
        self.compare_action.setShortcutContext(Qt.ShortcutContext.WindowShortcut)
        self.compare_action.setToolTip(f"Show the prior study offered beside the current film ({COMPARE_KEY})")
        self.compare_action.triggered.connect(self.compare_prior)
        window.addAction(self.compare_action)
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
        for pane in self.panes:
            self.grid.removeWidget(pane)
            pane.hide()
        for index, pane in enumerate(self.panes[: rows * columns]):
            self.grid.addWidget(pane, index // columns, index % columns)
            pane.show()
        for i in range(2):  # equal shares, whatever each view's size hint
            self.grid.setRowStretch(i, 1 if i < rows else 0)
            self.grid.setColumnStretch(i, 1 if i < columns else 0)
        self.layout_name = name
        if self.active >= rows * columns:
            self.active = 0
        self._refresh()
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

    def compare_prior(self) -> None:
        """"Compare side by side" (``COMPARE_KEY``): the prior study offered beside the current film."""
        if self.offers.prior is not None:
            self.compare_with(self.offers.prior)
            return
        shown = self._shown_paths()
        prior = prior_study(self.window.browser, self.current) if self.current is not None else None
        text = ("The prior study is on screen already." if prior and prior[2] in shown
                else "No earlier study of this patient is open.")
        self.window.statusBar().showMessage(text, 5000)

    def clear(self) -> None:
        """Empty the comparison viewports (a new folder was opened)."""
        self.current = None
        for viewport in self.viewports:
            viewport.clear()
        self.offers.offer(None, None)

    # ------------------------------------------------------------------ the current film
    def _set_current(self, path) -> None:
        """The current film is ``path`` now. When it is another patient's than the one before, every viewport
        holding a film known to be another patient's is emptied (saying why); a film whose patient is not identified
        (``same_patient``: ``UNKNOWN``) is kept, its caption saying so; one showing this very film is emptied too
        (nothing to compare). Captions and offers follow."""
        path = Path(path)
        before, self.current = self.current, path
        if path != before:
            browser = self.window.browser
            patient = browser.patient_of(path)
            changed = before is None or patient is None or patient != browser.patient_of(before)
            for viewport in self.viewports:
                if viewport.path is None:
                    continue
                if changed and (patient is None or browser.patient_of(viewport.path) is None
                                or same_patient(browser, viewport.path, path) == OTHER):
                    viewport.clear(OTHER_PATIENT_MESSAGE.format(patient=browser.patient_text(path) or path.name))
                elif viewport.path == path:
                    viewport.clear()
        self._refresh()

    def _shown_paths(self) -> set[Path]:
        return {viewport.path for viewport in self.viewports[: self._visible() - 1] if viewport.path is not None}

    def _refresh(self) -> None:
        """Offers, captions and the active frame for the current film and what the viewports show."""
        if not shiboken6.isValid(self):
            return
        browser, path = self.window.browser, self.current
        if path is None or not browser.has_image(path):
            self.offers.offer(None, None)
        else:
            shown = self._shown_paths()
            prior = prior_study(browser, path)
            lateral = lateral_of(browser, path)
            date, time, _ = browser.study_moment(path)
            self.offers.offer(prior if prior and prior[2] not in shown else None,
                              lateral if lateral not in shown else None, (date, time))
        framed = self._visible() > 1
        for index, pane in enumerate(self.panes):
            pane.set_caption(*self._caption(index))
            pane.show_frame(framed, index == self.active)

    def _caption(self, index: int) -> tuple[str, bool, bool]:
        """(a viewport's caption, whether it shows another patient's film than the current one, whether its film is
        not known to be the current patient's)."""
        browser, current = self.window.browser, self.current
        path = current if index == 0 else self.viewports[index - 1].path
        if path is None or not browser.has_image(path):
            return (CURRENT if index == 0 else "Empty"), False, False
        date, time, description = browser.study_moment(path)
        details = " · ".join(part for part in (moment_text(date, time), description) if part)
        if index == 0:
            return " · ".join(part for part in (CURRENT, details) if part), False, False
        same = same_patient(browser, path, current) if current is not None and browser.has_image(current) else SAME
        if same == UNKNOWN and self._differs_from_another_shown(index, path):
            # an unidentified current film must not hide that two identified panes show different patients
            same = OTHER
        if same != SAME:
            start = ANOTHER_PATIENT if same == OTHER else PATIENT_NOT_KNOWN
            text = f"{start}: {browser.patient_text(path)}" + (f" · {details}" if details else "")
            return text, same == OTHER, same == UNKNOWN
        return " · ".join(part for part in (relation(browser, path, current), details) if part), False, False

    def _differs_from_another_shown(self, index: int, path: Path) -> bool:
        """Whether the film of viewport ``index`` (``path``) is known to be another patient's (``OTHER``) than the
        film of any other viewport on screen."""
        browser = self.window.browser
        others = [self.current, *(viewport.path for i, viewport in enumerate(self.viewports[: self._visible() - 1])
                                  if i != index - 1)]
        return any(same_patient(browser, path, other) == OTHER for other in others
                   if other is not None and other != path and browser.has_image(other))

    def _visible(self) -> int:
        rows, columns = LAYOUTS[self.layout_name]
        return rows * columns

    # ------------------------------------------------------------------ the active viewport and its keys
    def _on_focus(self, _old, new) -> None:
        """The viewport with the keyboard focus is the active one; with the focus anywhere else, the main one."""
        if not shiboken6.isValid(self):
            return
        views = self.views[: self._visible()]
        active = next((index for index, view in enumerate(views) if new is view), 0)
        if active != self.active:
            self.active = active
            self._refresh()

    def eventFilter(self, obj, event):
        """In a comparison viewport with the focus, the display keys act on its own film (not the main one)."""
        kind = event.type()
        if kind in (QEvent.Type.ShortcutOverride, QEvent.Type.KeyPress):
            viewport = next((v for v in self.viewports if v.view is obj), None)
            handler = self._pane_key(viewport, event) if viewport is not None else None
            if handler is not None:
                event.accept()
                if kind == QEvent.Type.KeyPress:
                    handler()
                return True
        return super().eventFilter(obj, event)

    def _pane_key(self, viewport: Viewport, event):
        """What ``event``'s key does to ``viewport`` (None: not a display key; it acts as anywhere else)."""
        try:
            pressed = QKeySequence(QKeyCombination(event.modifiers() & ~Qt.KeyboardModifier.KeypadModifier,
                                                   Qt.Key(event.key())))
        except ValueError:  # a key Qt does not name
            return None
        model, view = viewport.model, viewport.view
        acts, desk = self.window.acts, getattr(self.window, "desk", None)
        pairs = [
            ("fit", view.fit), ("one_to_one", view.actual_size),
            ("auto_window", lambda: viewport.apply_preset(Auto())),
            ("invert", lambda: model.set_user_invert(not model.user_invert)),
            ("rotate", lambda: model.rotate(90)),
            ("flip_h", lambda: model.set_flip(horizontal=not model.flip_h)),
            ("flip_v", lambda: model.set_flip(vertical=not model.flip_v)),
            ("reset", viewport.reset),
        ]
        actions = [(getattr(acts, name, None), slot) for name, slot in pairs]
        actions += [(action, lambda i=i: viewport.apply_nth_preset(i))
                    for i, action in enumerate(getattr(desk, "presets", []) if desk is not None else [])]
        for action, slot in actions:
            if action is not None and any(key == pressed for key in action.shortcuts()):
                return slot
        return None
