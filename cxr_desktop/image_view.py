"""The viewer: a QGraphicsView over an ``ImageScene`` with reading-room mouse handling.

Mouse: wheel zooms about the cursor; right-drag is window/level in every mode; middle-drag
pans; left-drag does what the mode says (navigate: move an annotation or pan; window/level;
or draw an annotation). The corner overlay is painted over the viewport, never into the scene.
"""
from __future__ import annotations

import math
from contextlib import contextmanager

from PySide6.QtCore import QPointF, QRectF, Qt, Signal
from PySide6.QtGui import QColor, QPainter, QPen, QTransform
from PySide6.QtWidgets import QFrame, QGraphicsItem, QGraphicsSimpleTextItem, QGraphicsView

from .annotation_items import ShapeAnnotationItem, TextAnnotationItem
from .annotation_model import ANGLE, TEXT, Annotation
from .label_layout import LABEL_MARGIN_PX, arranged_labels, measurement_labels, place_labels  # noqa: F401
from .corner_layout import SHADOW_PX, corner_blocks, corner_font, corner_text_rects
from .formatting import heatmap_caption, pixel_readout
from .image_scene import ImageScene
from .presets import drag_start_window, drag_step, drag_window

NAVIGATE, WINDOW_LEVEL = "navigate", "window_level"
MIN_ZOOM, MAX_ZOOM = 0.02, 32.0
WHEEL_STEP = 1.15
#: A drawn shape shorter than this many screen pixels is treated as a stray click.
MIN_DRAW_PX = 4.0


class ImageView(QGraphicsView):
    """Shows the scene and turns mouse gestures into model changes."""

    pixelHovered = Signal(str)
    zoomChanged = Signal(float)
    textRequested = Signal(float, float)  # image x, y where the reader clicked with the text tool
    textEditRequested = Signal(object)  # a TextAnnotationItem the reader double-clicked
    annotationCommitted = Signal(object)

    def __init__(self, scene: ImageScene, parent=None):
        super().__init__(scene, parent)
        self.image_scene = scene
        self.model = scene.model
        self.mode = NAVIGATE
        self.fit_mode = True
        self.message = ""
        self._drag = None  # (kind, start screen pos, payload)
        self.setFrameShape(QFrame.Shape.NoFrame)
        self.setBackgroundBrush(QColor(0, 0, 0))
        self.setRenderHints(QPainter.RenderHint.Antialiasing | QPainter.RenderHint.SmoothPixmapTransform)
        self.setTransformationAnchor(QGraphicsView.ViewportAnchor.AnchorUnderMouse)
        self.setResizeAnchor(QGraphicsView.ViewportAnchor.AnchorViewCenter)
        self.setViewportUpdateMode(QGraphicsView.ViewportUpdateMode.FullViewportUpdate)
        self.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.setVerticalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.setMouseTracking(True)
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        self.model.imageChanged.connect(self.fit)
        self.model.orientationChanged.connect(self._refit_if_fitted)
        for signal in (self.model.windowChanged, self.model.cornerOverlayChanged, self.model.orientationChanged,
                       self.model.heatmapChanged, self.model.heatmapVisibleChanged):
            signal.connect(self.viewport().update)

    # ------------------------------------------------------------------ zoom
    @property
    def zoom(self) -> float:
        """Screen pixels per image pixel."""
        return math.hypot(self.transform().m11(), self.transform().m12())

    def fit(self) -> None:
        """Fit the whole image in the viewport (and keep fitting on resize)."""
        self.fit_mode = True
        rect = self.image_scene.image_item.sceneBoundingRect()
        if rect.isEmpty():
            return
        self.fitInView(rect, Qt.AspectRatioMode.KeepAspectRatio)
        self.zoomChanged.emit(self.zoom)

    def actual_size(self) -> None:
        """One image pixel per screen pixel, about the view's centre (not the mouse: a key asks for it)."""
        with self._about_view_centre():
            self.set_zoom(1.0)

    def zoom_by(self, factor: float) -> None:
        """Zoom by ``factor`` about the view's centre: the zoom keys and menu items ask for it, and the mouse may be
        anywhere or never have entered the view (zooming about its last position pushed the film off screen). The
        wheel zooms about the mouse (:meth:`wheelEvent`)."""
        with self._about_view_centre():
            self.set_zoom(self.zoom * factor)

    @contextmanager
    def _about_view_centre(self):
        anchor = self.transformationAnchor()
        self.setTransformationAnchor(QGraphicsView.ViewportAnchor.AnchorViewCenter)
        try:
            yield
        finally:
            self.setTransformationAnchor(anchor)

    def set_zoom(self, zoom: float) -> None:
        zoom = min(max(zoom, MIN_ZOOM), MAX_ZOOM)
        if self.zoom > 0:
            self.fit_mode = False
            factor = zoom / self.zoom
            self.scale(factor, factor)
            self.zoomChanged.emit(self.zoom)
            self.viewport().update()

    def _refit_if_fitted(self) -> None:
        if self.fit_mode:
            self.fit()

    def resizeEvent(self, event):
        super().resizeEvent(event)
        self._refit_if_fitted()

    def wheelEvent(self, event):
        steps = event.angleDelta().y() / 120.0
        if steps:  # about the point under the mouse (the view's transformation anchor)
            self.set_zoom(self.zoom * WHEEL_STEP**steps)
        event.accept()

    # ------------------------------------------------------------------ mouse
    def image_point(self, view_pos: QPointF) -> QPointF:
        """Image pixel coordinates (x = column, y = row) under a viewport position."""
        return self.image_scene.image_item.mapFromScene(self.mapToScene(view_pos.toPoint()))

    def mousePressEvent(self, event):
        if self.model.image is None:
            return super().mousePressEvent(event)
        button, pos = event.button(), event.position()
        if self._drag is not None and self._drag[0] == "angle":
            self._finish_angle(pos, keep=button == Qt.MouseButton.LeftButton)
            event.accept()
            return
        if button == Qt.MouseButton.RightButton or (button == Qt.MouseButton.LeftButton and self.mode == WINDOW_LEVEL):
            image = self.model.image
            self._drag = ("wl", pos, (drag_start_window(image, self.model.voi), drag_step(image)))
            self.setCursor(Qt.CursorShape.SizeAllCursor)
        elif button == Qt.MouseButton.MiddleButton:
            self._start_pan(pos)
        elif button == Qt.MouseButton.LeftButton and self.mode == NAVIGATE:
            if self.itemAt(pos.toPoint()) not in (None, self.image_scene.image_item, self.image_scene.heatmap_item):
                return super().mousePressEvent(event)  # select / move an annotation
            self.image_scene.clearSelection()
            self._start_pan(pos)
        elif button == Qt.MouseButton.LeftButton:
            self._start_drawing(pos)
        event.accept()

    def mouseMoveEvent(self, event):
        pos = event.position()
        if self.model.image is not None:
            point = self.image_point(pos)
            self.pixelHovered.emit(pixel_readout(self.model.image, math.floor(point.y()), math.floor(point.x())))
        if self._drag is None:
            return super().mouseMoveEvent(event)
        kind, start, payload = self._drag
        if kind == "wl":
            window, step = payload
            delta = pos - start
            self.model.set_voi(drag_window(window, delta.x(), delta.y(), step, self.model.display_inverted), "Manual")
        elif kind == "pan":
            delta = pos - payload
            self._drag = (kind, start, pos)
            self.horizontalScrollBar().setValue(self.horizontalScrollBar().value() - round(delta.x()))
            self.verticalScrollBar().setValue(self.verticalScrollBar().value() - round(delta.y()))
        elif kind == "draw":
            item, first = payload
            end = self._point_tuple(pos)
            points = (first, end, end) if item.annotation.kind == ANGLE else (first, end)
            item.set_points(points, self.image_scene.label_for(Annotation(item.annotation.kind, points)))
        elif kind == "angle":  # the first arm is down; the second follows the mouse until a click
            item, (end_a, vertex) = payload
            points = (end_a, vertex, self._point_tuple(pos))
            item.set_points(points, self.image_scene.label_for(Annotation(ANGLE, points)))
        event.accept()

    def mouseReleaseEvent(self, event):
        if self._drag is None:
            return super().mouseReleaseEvent(event)
        kind, start, payload = self._drag
        self._drag = None
        self.unsetCursor()
        if kind == "angle":
            self._drag = (kind, start, payload)  # the release of the first arm's drag: wait for the click
            return
        if kind == "draw":
            item, first = payload
            long_enough = (event.position() - start).manhattanLength() >= MIN_DRAW_PX
            if item.annotation.kind == ANGLE and long_enough:
                vertex = self._point_tuple(event.position())
                self._drag = ("angle", start, (item, (first, vertex)))
                event.accept()
                return
            self.image_scene.removeItem(item)
            if long_enough and item.annotation.kind != ANGLE:
                annotation = Annotation(item.annotation.kind, (first, self._point_tuple(event.position())))
                self.image_scene.commit(annotation)
                self.annotationCommitted.emit(annotation)
        event.accept()

    def mouseDoubleClickEvent(self, event):
        item = self.itemAt(event.position().toPoint())
        if isinstance(item, TextAnnotationItem):
            self.textEditRequested.emit(item)
            event.accept()
            return
        super().mouseDoubleClickEvent(event)

    def _start_pan(self, pos) -> None:
        self.fit_mode = False
        self._drag = ("pan", pos, pos)
        self.setCursor(Qt.CursorShape.ClosedHandCursor)

    def _start_drawing(self, pos) -> None:
        x, y = self._point_tuple(pos)
        if self.mode == TEXT:
            self.textRequested.emit(x, y)
            return
        points = ((x, y),) * (3 if self.mode == ANGLE else 2)
        item = self.image_scene.preview_item(Annotation(self.mode, points))
        self._drag = ("draw", pos, (item, (x, y)))

    def _finish_angle(self, pos, keep: bool = True) -> None:
        """Store the angle being drawn with its second arm ending at ``pos`` (or drop it)."""
        item, (end_a, vertex) = self._drag[2]
        self._drag = None
        self.image_scene.removeItem(item)
        if keep:
            annotation = Annotation(ANGLE, (end_a, vertex, self._point_tuple(pos)))
            self.image_scene.commit(annotation)
            self.annotationCommitted.emit(annotation)

    def cancel_drawing(self) -> bool:
        """Drop the shape being drawn (a drag not let go yet, an angle waiting for its second arm); True
        when there was one. Nothing is stored."""
        if self._drag is None or self._drag[0] not in ("draw", "angle"):
            return False
        item = self._drag[2][0]
        self._drag = None
        self.unsetCursor()
        if item.scene() is not None:
            self.image_scene.removeItem(item)
        return True

    def _point_tuple(self, pos) -> tuple[float, float]:
        point = self.image_point(pos)
        return (point.x(), point.y())

    def keyPressEvent(self, event):
        if event.key() in (Qt.Key.Key_Delete, Qt.Key.Key_Backspace) and self.image_scene.delete_selected():
            event.accept()
            return
        super().keyPressEvent(event)

    # ------------------------------------------------------------------ overlays
    def set_message(self, text: str) -> None:
        """A line shown in the middle of the viewer while there is no image (loading, errors)."""
        self.message = text
        self.viewport().update()

    def paintEvent(self, event):
        self.keep_labels_inside()
        super().paintEvent(event)

    def keep_labels_inside(self) -> None:
        """Shift each measurement label that would stick out of the view back inside it, off the corner text
        (a label over "rotated 90° flipped H" hides the film's orientation), and each label that would overprint
        another one clear of it (:func:`arranged_labels`), by a
        translation in screen pixels (its position, the end point it labels, is unchanged)."""
        port = QRectF(self.viewport().rect()).adjusted(LABEL_MARGIN_PX, LABEL_MARGIN_PX,
                                                       -LABEL_MARGIN_PX, -LABEL_MARGIN_PX)
        place_labels(measurement_labels(self.image_scene),
                     lambda item: QPointF(self.mapFromScene(item.parentItem().mapToScene(item.pos()))), port,
                     keep_clear=corner_text_rects(self))

    def heatmap_caption(self) -> str:
        """The shown heat-map's class and probability (``formatting.heatmap_caption``); ``""`` when none is shown."""
        model = self.model
        if model.heatmap is None or not model.heatmap_visible:
            return ""
        return heatmap_caption(model.heatmap_class, model.heatmap_probability)

    def drawForeground(self, painter: QPainter, rect: QRectF) -> None:
        image = self.model.image
        if image is None and self.message:
            painter.save()
            painter.resetTransform()
            painter.setPen(QPen(QColor(200, 200, 200)))
            area = QRectF(self.viewport().rect()).adjusted(16, 16, -16, -16)
            painter.drawText(area, int(Qt.AlignmentFlag.AlignCenter | Qt.TextFlag.TextWordWrap), self.message)
            painter.restore()
        if image is None:
            return
        blocks = corner_blocks(self)  # one layout for painting and for keeping labels off it (corner_layout)
        if not blocks:
            return
        painter.save()
        painter.resetTransform()
        painter.setFont(corner_font(self))
        for area, align, block in blocks:
            painter.setPen(QPen(QColor(0, 0, 0)))  # a shadow keeps the text readable on bright lung fields
            painter.drawText(area.translated(SHADOW_PX, SHADOW_PX), int(align), block)
            painter.setPen(QPen(QColor(235, 235, 235)))
            painter.drawText(area, int(align), block)
        painter.restore()
