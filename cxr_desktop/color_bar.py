"""The heat-map legend: the engine's colour map over Grad-CAM × class probability, 0 to 1."""
from __future__ import annotations

from PySide6.QtCore import QRect, Qt
from PySide6.QtGui import QPainter, QPen, QPixmap
from PySide6.QtWidgets import QSizePolicy, QWidget

from cxr_engine.pixels.overlay import LEGEND_NOTE, LEGEND_TITLE, OUTLINE_LEVEL

from .heatmap import TRANSPARENT_BELOW, legend_rgb
from .qimage import to_qimage


class ColorBar(QWidget):
    """A horizontal colour bar labelled 0, the legend's title and 1; the uncoloured band is hatched
    and a tick marks the outline mode's level."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self._pixmap = QPixmap.fromImage(to_qimage(legend_rgb()))
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
        self.setMinimumHeight(34)
        self.setToolTip(LEGEND_NOTE)

    def paintEvent(self, event):
        painter = QPainter(self)
        metrics = painter.fontMetrics()
        bar = QRect(0, 0, self.width(), self.height() - metrics.height() - 2)
        painter.drawPixmap(bar, self._pixmap)
        clear = QRect(bar.left(), bar.top(), round(bar.width() * TRANSPARENT_BELOW), bar.height())
        painter.fillRect(clear, Qt.BrushStyle.BDiagPattern)
        tick = round(bar.left() + bar.width() * OUTLINE_LEVEL)
        painter.setPen(QPen(Qt.GlobalColor.white, 2))
        painter.drawLine(tick, bar.top(), tick, bar.bottom())
        painter.setPen(self.palette().windowText().color())
        labels = QRect(0, bar.bottom() + 2, self.width(), metrics.height())
        painter.drawText(labels, int(Qt.AlignmentFlag.AlignLeft), "0")
        painter.drawText(labels, int(Qt.AlignmentFlag.AlignHCenter), LEGEND_TITLE)
        painter.drawText(labels, int(Qt.AlignmentFlag.AlignRight), "1")
        painter.end()
