"""The heat-map legend: the engine's colour map from low to high relative evidence."""
from __future__ import annotations

from PySide6.QtCore import QRect, Qt
from PySide6.QtGui import QPainter, QPixmap
from PySide6.QtWidgets import QSizePolicy, QWidget

from .heatmap import OPAQUE_FROM, TRANSPARENT_BELOW, legend_rgb
from .qimage import to_qimage


class ColorBar(QWidget):
    """A horizontal colour bar labelled "low" and "high"; the uncoloured band is hatched."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self._pixmap = QPixmap.fromImage(to_qimage(legend_rgb()))
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
        self.setMinimumHeight(34)
        self.setToolTip(
            "Grad-CAM heat-map colours, scaled within each image: they show where the model's evidence "
            f"for the chosen class is relatively strongest. Below {TRANSPARENT_BELOW:.0%} of the image's "
            f"maximum nothing is drawn; from {OPAQUE_FROM:.0%} the colour is fully opaque."
        )

    def paintEvent(self, event):
        painter = QPainter(self)
        metrics = painter.fontMetrics()
        bar = QRect(0, 0, self.width(), self.height() - metrics.height() - 2)
        painter.drawPixmap(bar, self._pixmap)
        clear = QRect(bar.left(), bar.top(), round(bar.width() * TRANSPARENT_BELOW), bar.height())
        painter.fillRect(clear, Qt.BrushStyle.BDiagPattern)
        painter.setPen(self.palette().windowText().color())
        labels = QRect(0, bar.bottom() + 2, self.width(), metrics.height())
        painter.drawText(labels, int(Qt.AlignmentFlag.AlignLeft), "low")
        painter.drawText(labels, int(Qt.AlignmentFlag.AlignHCenter), "relative evidence")
        painter.drawText(labels, int(Qt.AlignmentFlag.AlignRight), "high")
        painter.end()
