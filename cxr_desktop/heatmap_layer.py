"""The heat-map on the image: a colour wash or one outline, mirroring the viewer model's heat-map fields.

Both are children of the image item, in image pixel coordinates, so they follow zoom, rotation,
flips and the physical pixel aspect. The outline is the contour where Grad-CAM × class
probability reaches ``cxr_engine.pixels.overlay.OUTLINE_LEVEL``; it takes no mouse clicks, so the reader
pans and draws through it.
"""
from __future__ import annotations

from PySide6.QtCore import QPointF, Qt
from PySide6.QtGui import QColor, QPainterPath, QPen, QPixmap
from PySide6.QtWidgets import QGraphicsItem, QGraphicsPathItem, QGraphicsPixmapItem

from cxr_engine.pixels.overlay import outline_contours, shown_heat

from .heatmap import heatmap_rgba
from .qimage import to_qimage
from .viewer_model import HEATMAP_OUTLINE, ViewerModel

OUTLINE_COLOUR = QColor(255, 64, 32)
OUTLINE_PX = 2.5
#: The colour wash is built from every n-th heat-map pixel, n chosen to keep at most this many on its
#: long side, and scaled onto the image: the heat-map is smooth (a 7×7 Grad-CAM resized), and a whole
#: 2128×2000 layer held the GUI thread 100–190 ms under load (its numpy steps wait for the GIL behind
#: the decoding and classification threads; ``benchmarks/README.md``).
LAYER_MAX_PX = 1100


def layer_step(shape: tuple[int, ...]) -> int:
    """n for a heat-map of ``shape`` (rows, columns): the least that keeps ``LAYER_MAX_PX`` on the long side."""
    return max(1, -(-max(shape[:2]) // LAYER_MAX_PX))


class HeatmapOutlineItem(QGraphicsPathItem):
    """The outline's contours; never the target of a click."""

    def __init__(self, parent: QGraphicsItem | None = None):
        super().__init__(parent)
        pen = QPen(OUTLINE_COLOUR, OUTLINE_PX)
        pen.setCosmetic(True)
        pen.setJoinStyle(Qt.PenJoinStyle.RoundJoin)
        self.setPen(pen)
        self.setAcceptedMouseButtons(Qt.MouseButton.NoButton)

    def shape(self) -> QPainterPath:
        return QPainterPath()

    def set_contours(self, contours) -> None:
        """``contours``: (N, 2) arrays of (x, y) pixel-centre coordinates (drawn through the centres)."""
        path = QPainterPath()
        for contour in contours:
            points = [QPointF(float(x) + 0.5, float(y) + 0.5) for x, y in contour]
            if len(points) < 2:
                continue
            path.moveTo(points[0])
            for point in points[1:]:
                path.lineTo(point)
            path.closeSubpath()
        self.setPath(path)

    def set_export_scale(self, line_factor: float, text_factor: float) -> None:
        pen = self.pen()
        pen.setWidthF(OUTLINE_PX * line_factor)
        self.setPen(pen)


class HeatmapLayer:
    """The colour pixmap (``pixmap_item``) and the outline (``outline_item``) of one image item."""

    def __init__(self, model: ViewerModel, image_item: QGraphicsItem):
        self.model = model
        self.pixmap_item = QGraphicsPixmapItem(image_item)
        self.pixmap_item.setTransformationMode(Qt.TransformationMode.SmoothTransformation)
        self.pixmap_item.setZValue(1)
        self.pixmap_item.setVisible(False)
        self.outline_item = HeatmapOutlineItem(image_item)
        self.outline_item.setZValue(2)
        self.outline_item.setVisible(False)
        self.pixmap_item.setOpacity(model.heatmap_opacity)
        model.heatmapChanged.connect(self.refresh)
        model.heatmapStyleChanged.connect(lambda _: self.refresh())
        model.heatmapVisibleChanged.connect(lambda _: self.sync_visibility())
        model.heatmapOpacityChanged.connect(self.pixmap_item.setOpacity)

    def clear(self) -> None:
        self.pixmap_item.setPixmap(QPixmap())
        self.outline_item.setPath(QPainterPath())

    def refresh(self) -> None:
        """Rebuild the layer shown for the model's style (only that one is computed)."""
        heatmap, p = self.model.heatmap, self.model.heatmap_probability
        self.clear()
        if heatmap is not None:
            if self.model.heatmap_style == HEATMAP_OUTLINE:
                self.outline_item.set_contours(outline_contours(shown_heat(heatmap, p)))
            else:
                step = layer_step(heatmap.shape)
                self.pixmap_item.setPixmap(QPixmap.fromImage(to_qimage(heatmap_rgba(heatmap[::step, ::step], p))))
                # Layer pixel i, drawn over image pixels [i·n, (i+1)·n) shifted by (1 - n) / 2, is centred on
                # the centre of image pixel i·n, the one it was sampled at.
                self.pixmap_item.setScale(step)
                self.pixmap_item.setPos((1 - step) / 2, (1 - step) / 2)
        self.sync_visibility()

    def sync_visibility(self, visible: bool | None = None) -> None:
        """Show the style's item when the model says so (``visible`` forces on or off, for exports)."""
        on = self.model.heatmap_visible if visible is None else visible
        on = on and self.model.heatmap is not None
        outline = self.model.heatmap_style == HEATMAP_OUTLINE
        self.pixmap_item.setVisible(on and not outline)
        self.outline_item.setVisible(on and outline)

    @property
    def visible(self) -> bool:
        return self.pixmap_item.isVisible() or self.outline_item.isVisible()
