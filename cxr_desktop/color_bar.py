"""The heat-map legend: the engine's colour map over Grad-CAM × class probability, 0 to 1."""
from __future__ import annotations

from dataclasses import dataclass

from PySide6.QtCore import QEvent, QRect, QSize, Qt
from PySide6.QtGui import QPainter, QPen, QPixmap
from PySide6.QtWidgets import QSizePolicy, QWidget

from cxr_engine.pixels.overlay import LEGEND_NOTE, LEGEND_TITLE, OUTLINE_LEVEL

from .heatmap import TRANSPARENT_BELOW, legend_rgb
from .qimage import to_qimage

#: The colour bar's height (px), the space between it and its labels, and the labels' least distance
#: from one another (px).
BAR_HEIGHT, LABEL_GAP, LABEL_SPACING = 16, 3, 8


@dataclass(frozen=True)
class LegendParts:
    """Where :class:`ColorBar` paints, in its own pixels: the bar, and each label with its rectangle."""

    bar: QRect
    labels: tuple[tuple[QRect, str], ...]  # "0", the title (elided to fit between the ends), "1"


class ColorBar(QWidget):
    """A horizontal colour bar labelled 0, the legend's title and 1; the uncoloured band is hatched
    and a tick marks the outline mode's level.

    Its height follows the font (the bar, a gap and one line of text), and the title is elided rather
    than drawn over the end labels when the bar is narrow; the full explanation is the tooltip."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self._pixmap = QPixmap.fromImage(to_qimage(legend_rgb()))
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
        self.setToolTip(LEGEND_NOTE)

    def sizeHint(self) -> QSize:
        metrics = self.fontMetrics()
        return QSize(metrics.horizontalAdvance(f"0 {LEGEND_TITLE} 1") + 2 * LABEL_SPACING, self._height())

    def minimumSizeHint(self) -> QSize:
        metrics = self.fontMetrics()
        return QSize(metrics.horizontalAdvance("0…1") + 2 * LABEL_SPACING, self._height())

    def _height(self) -> int:
        return BAR_HEIGHT + LABEL_GAP + self.fontMetrics().height()

    def changeEvent(self, event) -> None:
        if event.type() == QEvent.Type.FontChange:  # the reader's text size: the labels' line changes height
            self.updateGeometry()
        super().changeEvent(event)

    def parts(self) -> LegendParts:
        """The bar and the labels' rectangles for the widget's present size and font: the labels lie under
        the bar, inside the widget, at least ``LABEL_SPACING`` apart."""
        metrics = self.fontMetrics()
        width, line = self.width(), metrics.height()
        bar = QRect(0, 0, width, BAR_HEIGHT)
        top = bar.bottom() + 1 + LABEL_GAP
        low = QRect(0, top, metrics.horizontalAdvance("0"), line)
        high_width = metrics.horizontalAdvance("1")
        high = QRect(width - high_width, top, high_width, line)
        middle = QRect(low.right() + 1 + LABEL_SPACING, top, max(0, high.left() - low.right() - 1 - 2 * LABEL_SPACING),
                       line)
        title = metrics.elidedText(LEGEND_TITLE, Qt.TextElideMode.ElideRight, middle.width())
        title_width = metrics.horizontalAdvance(title)
        title_rect = QRect(middle.left() + (middle.width() - title_width) // 2, top, title_width, line)
        return LegendParts(bar, ((low, "0"), (title_rect, title), (high, "1")))

    def paintEvent(self, event):
        parts = self.parts()
        bar = parts.bar
        painter = QPainter(self)
        painter.drawPixmap(bar, self._pixmap)
        clear = QRect(bar.left(), bar.top(), round(bar.width() * TRANSPARENT_BELOW), bar.height())
        painter.fillRect(clear, Qt.BrushStyle.BDiagPattern)
        tick = round(bar.left() + bar.width() * OUTLINE_LEVEL)
        painter.setPen(QPen(Qt.GlobalColor.white, 2))
        painter.drawLine(tick, bar.top(), tick, bar.bottom())
        painter.setPen(self.palette().windowText().color())
        for rect, text in parts.labels:
            if text:
                painter.drawText(rect, int(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter), text)
        painter.end()
