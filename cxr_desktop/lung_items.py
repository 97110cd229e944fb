"""Graphics items for the lung fields: their outline, and the cardiothoracic ratio's two lines with
draggable ends. Children of the image item, in image pixel coordinates, so they stay on their
pixels under zoom, rotation, flips and non-square pixels, like the heat-map and the annotations.

Lines are cosmetic (constant width on screen); the end handles and the ratio label ignore the
view's transformations (constant size, upright). Only the handles can be picked: clicking on a
line or inside a lung still pans the image.

A proposal the reader has not adjusted whose ratio lies outside the range the model gave on normal
films (``unusual_proposal_note``, as the CTR box and the PDF line say) carries "⚠ check" after the
ratio, in the app's warning colour, until the reader moves a line.
"""
from __future__ import annotations

from typing import Callable

import numpy as np
from PySide6.QtCore import QPointF, Qt
from PySide6.QtGui import QBrush, QColor, QFont, QPainterPath, QPen, QTransform
from PySide6.QtWidgets import QGraphicsEllipseItem, QGraphicsItem, QGraphicsPathItem, QGraphicsSimpleTextItem

from cxr_engine.models.cardiothoracic import CardiothoracicRatio, Line, unusual_proposal_note

OUTLINE_COLOUR = QColor(64, 224, 160)
THORACIC_COLOUR = QColor(90, 180, 255)
CARDIAC_COLOUR = QColor(255, 128, 64)
DARK = QColor(0, 0, 0, 200)
WARNING_COLOUR = QColor("#ffb347")  # the app's warning colour (lung_panel.WARNING_STYLE, the result panel's warnings)
CHECK_FLAG = "⚠ check"  # after the ratio of an unadjusted proposal outside the plausible range
LINE_PX = 2.0
HANDLE_PX = 6.0  # handle radius on screen
LABEL_GAP_PX = 4.0  # screen pixels between the ratio's label and the handle above it


def _pen(colour: QColor, width: float = LINE_PX, style=Qt.PenStyle.SolidLine) -> QPen:
    pen = QPen(colour, width, style)
    pen.setCosmetic(True)
    pen.setCapStyle(Qt.PenCapStyle.RoundCap)
    pen.setJoinStyle(Qt.PenJoinStyle.RoundJoin)
    return pen


class _Unpickable:
    """Mixin: an item the mouse never finds (an empty shape), so clicks pan the image beneath."""

    def shape(self) -> QPainterPath:
        return QPainterPath()


class LungOutlineItem(_Unpickable, QGraphicsPathItem):
    """The lung fields' boundaries as closed polygons ((N, 2) arrays of x, y image coordinates)."""

    def __init__(self, contours, parent: QGraphicsItem | None = None):
        super().__init__(parent)
        path = QPainterPath()
        for polygon in contours:
            points = np.asarray(polygon, dtype=float)
            path.moveTo(*points[0])
            for x, y in points[1:]:
                path.lineTo(x, y)
            path.closeSubpath()
        self.setPath(path)
        self.setPen(_pen(OUTLINE_COLOUR))
        self.setAcceptedMouseButtons(Qt.MouseButton.NoButton)
        self.setZValue(5)

    def set_export_scale(self, line_factor: float, text_factor: float) -> None:
        self.setPen(_pen(OUTLINE_COLOUR, LINE_PX * line_factor))


class _Handle(QGraphicsEllipseItem):
    """One draggable end of a ``CtrLineItem``; its position is the end's image coordinates."""

    def __init__(self, line: "CtrLineItem", index: int, colour: QColor):
        super().__init__(-HANDLE_PX, -HANDLE_PX, 2 * HANDLE_PX, 2 * HANDLE_PX, line)
        self.index = index
        self.setBrush(QBrush(colour))
        self.setPen(QPen(DARK, 1.5))
        self.setFlag(QGraphicsItem.GraphicsItemFlag.ItemIgnoresTransformations, True)
        self.setFlag(QGraphicsItem.GraphicsItemFlag.ItemIsMovable, True)
        self.setFlag(QGraphicsItem.GraphicsItemFlag.ItemSendsGeometryChanges, True)
        self.setCursor(Qt.CursorShape.SizeAllCursor)
        self.setZValue(1)

    def itemChange(self, change, value):
        result = super().itemChange(change, value)
        if change == QGraphicsItem.GraphicsItemChange.ItemPositionHasChanged:
            parent = self.parentItem()
            if isinstance(parent, CtrLineItem):
                parent.handle_moved(self.index, self.pos())
        return result


class CtrLineItem(_Unpickable, QGraphicsPathItem):
    """A diameter: a line between two draggable handles, and thin dashed guides that show its
    transverse extent (the measured length: the ends' horizontal distance)."""

    def __init__(self, line: Line, colour: QColor, on_change: Callable[[Line], None] | None = None,
                 parent: QGraphicsItem | None = None):
        super().__init__(parent)
        self.colour = colour
        self.line = line
        self._on_change = None
        self.setPen(_pen(colour))
        self.setZValue(6)
        self.handles = (_Handle(self, 0, colour), _Handle(self, 1, colour))
        self.handles[0].setPos(QPointF(*line.start))
        self.handles[1].setPos(QPointF(*line.end))
        self._on_change = on_change
        self._rebuild()

    def handle_moved(self, index: int, pos: QPointF) -> None:
        self.line = self.line.with_end(index, (pos.x(), pos.y()))
        self._rebuild()
        if self._on_change is not None:
            self._on_change(self.line)

    def set_end(self, index: int, x: float, y: float) -> None:
        """Move end ``index`` (0 = start, 1 = end) as a drag would."""
        self.handles[index].setPos(QPointF(x, y))

    def _rebuild(self) -> None:
        (x1, y1), (x2, y2) = self.line.start, self.line.end
        path = QPainterPath()
        path.moveTo(x1, y1)
        path.lineTo(x2, y2)
        self.setPath(path)

    def set_export_scale(self, line_factor: float, text_factor: float) -> None:
        self.setPen(_pen(self.colour, LINE_PX * line_factor))
        for handle in self.handles:
            handle.setScale(text_factor)


class _Label(QGraphicsSimpleTextItem):
    """Bold text with a dark outline that ignores zoom and rotation (``upright=False``: a child of such a
    label, drawn in its coordinates)."""

    def __init__(self, parent: QGraphicsItem | None = None, colour: QColor = QColor(255, 255, 255),
                 upright: bool = True):
        super().__init__("", parent)
        font = QFont()
        font.setPointSizeF(12.0)
        font.setBold(True)
        self.setFont(font)
        self.setBrush(QBrush(colour))
        self.setPen(QPen(DARK, 0.8))
        self.setFlag(QGraphicsItem.GraphicsItemFlag.ItemIgnoresTransformations, upright)
        self.setAcceptedMouseButtons(Qt.MouseButton.NoButton)

    def shape(self) -> QPainterPath:
        return QPainterPath()


class CtrOverlayItem(_Unpickable, QGraphicsPathItem):
    """The thoracic and cardiac lines and the ratio beside them; ``on_change(ratio)`` after a drag.

    ``proposed``: the model's proposal for this film, if known. While the lines are the proposal's and its
    ratio is outside the plausible range (``unusual_proposal_note``), ``flag`` ("⚠ check", in the warning
    colour) follows the ratio's label; moving a line (the ratio is the reader's) hides it."""

    def __init__(self, ctr: CardiothoracicRatio, caption: str = "",
                 on_change: Callable[[CardiothoracicRatio], None] | None = None, parent: QGraphicsItem | None = None,
                 proposed: CardiothoracicRatio | None = None):
        super().__init__(parent)
        self.ctr = ctr
        self.caption = caption
        self.proposed = proposed
        self._on_change = None
        self.thoracic = CtrLineItem(ctr.thoracic, THORACIC_COLOUR, lambda line: self._changed(thoracic=line), self)
        self.cardiac = CtrLineItem(ctr.cardiac, CARDIAC_COLOUR, lambda line: self._changed(cardiac=line), self)
        self.label = _Label(self)
        self.flag = _Label(self.label, WARNING_COLOUR, upright=False)  # in the label's coordinates, after its text
        self.flag.setText(CHECK_FLAG)
        self.setZValue(6)
        self._on_change = on_change
        self._relabel()

    def _changed(self, thoracic: Line | None = None, cardiac: Line | None = None) -> None:
        self.ctr = self.ctr.with_lines(thoracic, cardiac)
        self._relabel()
        if self._on_change is not None:
            self._on_change(self.ctr)

    def label_text(self) -> str:
        """The ratio's label ("CTR 0.47 (PA)"), without the flag (``flag_text``)."""
        return self.label.text()

    def flag_text(self) -> str:
        """"⚠ check" while the flag shows after the label, else ""."""
        return self.flag.text() if self.flag.isVisibleTo(self) else ""

    def unusual(self) -> bool:
        """The lines are the model's proposal and its ratio lies outside the plausible range."""
        proposed = self.proposed
        if proposed is None:
            return False
        adjusted = (self.ctr.thoracic, self.ctr.cardiac) != (proposed.thoracic, proposed.cardiac)
        return bool(unusual_proposal_note(self.ctr, adjusted))

    def _relabel(self) -> None:
        self.label.setText(f"CTR {self.ctr.ratio:.2f}" + (f" ({self.caption})" if self.caption else ""))
        self.flag.setVisible(self.unusual())
        self.flag.setPos(self.label.boundingRect().width() + self.label.font().pointSizeF() / 2, 0.0)
        (x1, y1), (x2, y2) = self.ctr.thoracic.start, self.ctr.thoracic.end
        self.label.setPos(QPointF(x1, y1) if x1 <= x2 else QPointF(x2, y2))  # under the thoracic line's left end
        self._place_label(self.label.scale())

    def _place_label(self, text_factor: float) -> None:
        # Below that end's handle on screen, whatever the zoom: the shift is in device pixels (Qt scales
        # the label before its transform), as large as the handle is drawn.
        self.label.setTransform(QTransform.fromTranslate(0.0, (HANDLE_PX + LABEL_GAP_PX) * text_factor))

    def set_export_scale(self, line_factor: float, text_factor: float) -> None:
        for line in (self.thoracic, self.cardiac):
            line.set_export_scale(line_factor, text_factor)
        self.label.setScale(text_factor)
        self._place_label(text_factor)
