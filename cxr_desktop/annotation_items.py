"""Graphics items that draw ``Annotation`` records on the image item (image pixel coordinates).

Items are selectable and movable; a move writes the translated record back through the
``on_change`` callback. The end points of arrows, rulers and angles and the corners of ellipses
and rectangles can be dragged one at a time (a square marks each on a selected item). Lines keep
a constant on-screen width (cosmetic pens) and text stays upright and readable at any zoom.
"""
from __future__ import annotations

import math
from typing import Callable

from PySide6.QtCore import QLineF, QPointF, QRectF, Qt
from PySide6.QtGui import QBrush, QColor, QFont, QPainterPath, QPainterPathStroker, QPen
from PySide6.QtWidgets import QGraphicsItem, QGraphicsPathItem, QGraphicsSimpleTextItem

from .annotation_model import ANGLE, ARROW, ELLIPSE, MEASURED, RECTANGLE, TEXT, Annotation

COLOUR = QColor(255, 210, 31)
OUTLINE = QColor(0, 0, 0, 200)
#: Lines are this many screen pixels wide.
LINE_PX = 2.0
#: Lines can be picked this far from the stroke, as a fraction of the image diagonal.
PICK_FRACTION = 0.004
#: An end point is grabbed within this many picking margins of it (``_pick_margin``).
HANDLE_PICKS = 2.5
#: The squares marking a selected item's draggable points, in screen pixels.
HANDLE_PX = 7.0

OnChange = Callable[[Annotation], None]


def _pen() -> QPen:
    pen = QPen(COLOUR, LINE_PX)
    pen.setCosmetic(True)
    pen.setCapStyle(Qt.PenCapStyle.RoundCap)
    pen.setJoinStyle(Qt.PenJoinStyle.RoundJoin)
    return pen


def _label_font() -> QFont:
    font = QFont()
    font.setPointSizeF(12.0)
    font.setBold(True)
    return font


class _Label(QGraphicsSimpleTextItem):
    """Yellow text with a dark outline that ignores zoom and rotation."""

    def __init__(self, text: str, parent: QGraphicsItem | None = None):
        super().__init__(text, parent)
        self.setFont(_label_font())
        self.setBrush(QBrush(COLOUR))
        outline = QPen(OUTLINE, 0.8)
        self.setPen(outline)
        self.setFlag(QGraphicsItem.GraphicsItemFlag.ItemIgnoresTransformations, True)


class _Movable:
    """Shared behaviour: selectable, movable, and writing moves back to the record."""

    def set_export_scale(self, line_factor: float, text_factor: float) -> None:
        """Thicken lines and enlarge text for an off-screen rendering (1, 1 = as on screen)."""
        if isinstance(self, QGraphicsPathItem):
            pen = self.pen()
            pen.setWidthF(LINE_PX * line_factor)
            self.setPen(pen)
        for label in [self, *self.childItems()]:
            if isinstance(label, _Label):
                label.setScale(text_factor)

    def _init_movable(self, annotation: Annotation, on_change: OnChange | None) -> None:
        self.annotation = annotation
        self._on_change = on_change
        self.setFlag(QGraphicsItem.GraphicsItemFlag.ItemIsSelectable, True)
        self.setFlag(QGraphicsItem.GraphicsItemFlag.ItemIsMovable, True)
        self.setFlag(QGraphicsItem.GraphicsItemFlag.ItemSendsGeometryChanges, True)
        self.setCursor(Qt.CursorShape.SizeAllCursor)
        self.setZValue(10)

    def current_annotation(self) -> Annotation:
        """The record as drawn now, including any move."""
        return self.annotation.moved(self.pos().x(), self.pos().y())

    def itemChange(self, change, value):
        result = super().itemChange(change, value)
        if change == QGraphicsItem.GraphicsItemChange.ItemPositionHasChanged and self._on_change is not None:
            self._on_change(self.current_annotation())
        return result


class ShapeAnnotationItem(_Movable, QGraphicsPathItem):
    """An arrow, ellipse, rectangle, ruler or angle; measured kinds carry a label."""

    def __init__(self, annotation: Annotation, image_diagonal: float, on_change: OnChange | None = None,
                 label: str = "", parent: QGraphicsItem | None = None, pixel_scale: tuple[float, float] = (1.0, 1.0)):
        super().__init__(parent)
        self._diagonal = max(image_diagonal, 1.0)
        # Image pixels -> display units (the parent's physical-aspect scale): arrow heads and
        # ruler caps are shaped in display units, so they look right on non-square pixels.
        self._scale = (float(pixel_scale[0]), float(pixel_scale[1]))
        self._label = _Label(label, self) if annotation.kind in MEASURED else None
        self._grabbed: int | None = None  # index of the point being dragged
        self.setPen(_pen())
        self._init_movable(annotation, on_change)
        self._rebuild()

    def set_points(self, points, label: str = "") -> None:
        """Change the geometry while the reader is drawing (before the record is stored)."""
        self.annotation = Annotation(self.annotation.kind, tuple(points), self.annotation.text, self.annotation.id)
        if self._label is not None:
            self._label.setText(label)
        self._rebuild()

    def set_label(self, label: str) -> None:
        if self._label is not None:
            self._label.setText(label)

    def label_text(self) -> str:
        return self._label.text() if self._label is not None else ""

    def _rebuild(self) -> None:
        points = [QPointF(x, y) for x, y in self.annotation.points]
        path = QPainterPath()
        kind = self.annotation.kind
        anchor = points[-1]
        if kind in (ELLIPSE, RECTANGLE):
            rect = QRectF(points[0], points[1]).normalized()
            path.addEllipse(rect) if kind == ELLIPSE else path.addRect(rect)
            anchor = rect.bottomRight()
        elif kind == ANGLE:
            path.moveTo(points[0])
            path.lineTo(points[1])
            path.lineTo(points[2])
            anchor = points[1]
        else:
            path.moveTo(points[0])
            path.lineTo(points[1])
            if kind == ARROW:
                self._add_head(path, QLineF(points[1], points[0]))
            else:
                self._add_caps(path, QLineF(points[0], points[1]))
        self.prepareGeometryChange()
        self.setPath(path)
        if self._label is not None:
            self._label.setPos(anchor + QPointF(4.0, 4.0))

    # ------------------------------------------------------------------ dragging one point
    def point_near(self, pos: QPointF) -> int | None:
        """Index of the draggable point within reach of ``pos`` (item coordinates), nearest first."""
        reach = HANDLE_PICKS * self._pick_margin()
        best = None
        for i, (x, y) in enumerate(self.annotation.points):
            distance = math.hypot(pos.x() - x, pos.y() - y)
            if distance <= reach and (best is None or distance < best[1]):
                best = (i, distance)
        return best[0] if best else None

    def move_point(self, index: int, pos: QPointF) -> None:
        """Put point ``index`` at ``pos`` (item coordinates) and report the change."""
        points = list(self.annotation.points)
        points[index] = (pos.x(), pos.y())
        self.annotation = Annotation(self.annotation.kind, tuple(points), self.annotation.text, self.annotation.id)
        self._rebuild()
        if self._on_change is not None:
            self._on_change(self.current_annotation())

    def mousePressEvent(self, event):
        index = self.point_near(event.pos()) if event.button() == Qt.MouseButton.LeftButton else None
        if index is not None and self._on_change is not None:
            self._grabbed = index
            self.setSelected(True)
            event.accept()
            return
        super().mousePressEvent(event)

    def mouseMoveEvent(self, event):
        if self._grabbed is not None:
            self.move_point(self._grabbed, event.pos())
            event.accept()
            return
        super().mouseMoveEvent(event)

    def mouseReleaseEvent(self, event):
        if self._grabbed is not None:
            self._grabbed = None
            event.accept()
            return
        super().mouseReleaseEvent(event)

    def paint(self, painter, option, widget=None):
        super().paint(painter, option, widget)
        if not self.isSelected():
            return
        scale = math.hypot(painter.worldTransform().m11(), painter.worldTransform().m12()) or 1.0
        half = HANDLE_PX / 2.0 / scale
        painter.save()
        painter.setPen(QPen(OUTLINE, 0))
        painter.setBrush(QBrush(COLOUR))
        for x, y in self.annotation.points:
            painter.drawRect(QRectF(x - half, y - half, 2 * half, 2 * half))
        painter.restore()

    def _display(self, point: QPointF) -> QPointF:
        return QPointF(point.x() * self._scale[0], point.y() * self._scale[1])

    def _image(self, point: QPointF) -> QPointF:
        return QPointF(point.x() / self._scale[0], point.y() / self._scale[1])

    def _add_head(self, path: QPainterPath, back: QLineF) -> None:
        """Two barbs at the tip (the first point is the tail, the second the tip)."""
        back = QLineF(self._display(back.p1()), self._display(back.p2()))
        length = min(max(0.02 * self._diagonal, 6.0), 0.4 * back.length()) if back.length() else 0.0
        angle = math.radians(back.angle())
        tip = back.p1()
        for spread in (-25.0, 25.0):
            a = angle + math.radians(spread)
            path.moveTo(self._image(tip))
            path.lineTo(self._image(QPointF(tip.x() + length * math.cos(a), tip.y() - length * math.sin(a))))

    def _add_caps(self, path: QPainterPath, line: QLineF) -> None:
        """Short end marks, perpendicular on screen, so a ruler reads as a measurement."""
        line = QLineF(self._display(line.p1()), self._display(line.p2()))
        if not line.length():
            return
        half = 0.006 * self._diagonal
        normal = line.normalVector().unitVector()
        offset = QPointF(normal.dx() * half, normal.dy() * half)
        for end in (line.p1(), line.p2()):
            path.moveTo(self._image(end - offset))
            path.lineTo(self._image(end + offset))

    def shape(self) -> QPainterPath:
        """A wide stroke, so thin lines can be picked when zoomed out."""
        stroker = QPainterPathStroker()
        stroker.setWidth(2.0 * self._pick_margin())
        outline = stroker.createStroke(self.path())
        outline.setFillRule(Qt.FillRule.WindingFill)
        if self.annotation.kind in (ELLIPSE, RECTANGLE):
            outline.addPath(self.path())
        reach = HANDLE_PICKS * self._pick_margin()
        for x, y in self.annotation.points:  # the grab zones of the draggable points
            outline.addEllipse(QPointF(x, y), reach, reach)
        return outline

    def boundingRect(self) -> QRectF:
        margin = HANDLE_PICKS * self._pick_margin()
        return self.path().boundingRect().adjusted(-margin, -margin, margin, margin)

    def _pick_margin(self) -> float:
        """Half the picking width in image pixels (about 5 screen pixels at a fitted zoom)."""
        return PICK_FRACTION * self._diagonal


class TextAnnotationItem(_Movable, _Label):
    """A free-text note; its position is its anchor point on the image."""

    def __init__(self, annotation: Annotation, on_change: OnChange | None = None, parent: QGraphicsItem | None = None):
        _Label.__init__(self, annotation.text, parent)
        self._init_movable(annotation, None)
        self.setPos(*annotation.points[0])
        self._on_change = on_change

    def current_annotation(self) -> Annotation:
        return Annotation(TEXT, ((self.pos().x(), self.pos().y()),), self.annotation.text, self.annotation.id)

    def set_text(self, text: str) -> None:
        self.annotation = Annotation(TEXT, self.current_annotation().points, text, self.annotation.id)
        self.setText(text)
        if self._on_change is not None:
            self._on_change(self.annotation)

    def paint(self, painter, option, widget=None):
        super().paint(painter, option, widget)
        if self.isSelected():
            painter.setPen(QPen(COLOUR, 1.0, Qt.PenStyle.DashLine))
            painter.drawRect(self.boundingRect())


def make_item(annotation: Annotation, image_diagonal: float, on_change: OnChange | None = None,
              label: str = "", pixel_scale: tuple[float, float] = (1.0, 1.0)) -> QGraphicsItem:
    """The item that draws ``annotation``; ``image_diagonal`` is in display units and
    ``pixel_scale`` takes image pixels to display units (``ViewerModel.pixel_scale``)."""
    if annotation.kind == TEXT:
        return TextAnnotationItem(annotation, on_change)
    return ShapeAnnotationItem(annotation, image_diagonal, on_change, label, pixel_scale=pixel_scale)
