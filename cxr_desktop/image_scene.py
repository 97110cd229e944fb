"""The scene of one image: the picture, its heat-map layer and annotations, all children of the image item.

Rotation, flips and the physical pixel aspect (non-square pixels: ``ViewerModel.pixel_scale``)
are the image item's transform, so the heat-map and the annotations, drawn in image pixel
coordinates, stay aligned under every zoom, pan, rotation and flip, and exported renderings
(``render_image``) come out at the physical aspect. The scene holds no demographics text (that
is the view's corner overlay), so rendering it for a de-identified report is safe.
"""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
from PySide6.QtCore import QRectF, Qt
from PySide6.QtGui import QColor, QImage, QPainter, QPixmap, QTransform
from PySide6.QtWidgets import QGraphicsItem, QGraphicsPixmapItem, QGraphicsScene

from .annotation_items import ShapeAnnotationItem, make_item
from .annotation_model import Annotation, AnnotationStore, measure
from .measurements import label_for, report_line
from .heatmap_layer import HeatmapLayer
from .label_layout import LABEL_MARGIN_PX, measurement_labels, place_labels
from .qimage import to_qimage, to_rgb_array
from .viewer_model import ViewerModel


#: In a rendering this many pixels across, lines / text are as thick / large as on screen; in
#: larger ones they grow in proportion, so they stay legible on a report page.
EXPORT_LINE_PX = 800
EXPORT_TEXT_PX = 450


class ImageScene(QGraphicsScene):
    """Mirrors a ``ViewerModel`` and the annotations of its current image."""

    def __init__(self, model: ViewerModel, annotations: AnnotationStore, parent=None):
        super().__init__(parent)
        self.model = model
        self.annotations = annotations
        self.setBackgroundBrush(QColor(0, 0, 0))
        self.image_item = QGraphicsPixmapItem()
        self.image_item.setTransformationMode(Qt.TransformationMode.SmoothTransformation)
        self.image_item.setShapeMode(QGraphicsPixmapItem.ShapeMode.BoundingRectShape)
        self.addItem(self.image_item)
        self.heatmap_layer = HeatmapLayer(model, self.image_item)  # colour wash or outline
        self.heatmap_item = self.heatmap_layer.pixmap_item
        self._annotation_items: dict[int, QGraphicsItem] = {}
        self._overlays: list[QGraphicsItem] = []  # e.g. the lung outline and CTR lines (lung_controller)
        model.imageChanged.connect(self._on_image_changed)
        model.windowChanged.connect(self.refresh_pixels)
        model.orientationChanged.connect(self._apply_orientation)

    # ------------------------------------------------------------------ mirroring the model
    def _on_image_changed(self) -> None:
        self._clear_annotation_items()
        self.heatmap_layer.clear()
        image = self.model.image
        if image is None:
            self.image_item.setPixmap(QPixmap())
            self.setSceneRect(QRectF())
            return
        self.refresh_pixels()
        self._apply_orientation()
        for annotation in self.annotations.for_path(image.path):
            self._add_item(annotation)
        self.heatmap_layer.sync_visibility()

    def refresh_pixels(self) -> None:
        """Re-render the picture for the model's window and polarity."""
        pixels = self.model.render()
        self.image_item.setPixmap(QPixmap.fromImage(to_qimage(pixels)) if pixels is not None else QPixmap())

    def _apply_orientation(self) -> None:
        image = self.model.image
        if image is None:
            return
        height, width = image.shape
        sx, sy = self.model.pixel_scale
        cx, cy = width * sx / 2.0, height * sy / 2.0
        # Qt applies the last call first: square the pixels (physical aspect), centre, rotate,
        # then flip along the *screen* axes.
        screen = QTransform().translate(cx, cy)
        screen.scale(-1.0 if self.model.flip_h else 1.0, -1.0 if self.model.flip_v else 1.0)
        screen.rotate(self.model.rotation)
        screen.translate(-cx, -cy)
        screen.scale(sx, sy)
        self.image_item.setTransform(screen)
        # Room around the image so the reader can pan it anywhere, as in other viewers.
        rect = self.image_item.sceneBoundingRect()
        margin = max(rect.width(), rect.height())
        self.setSceneRect(rect.adjusted(-margin, -margin, margin, margin))

    # ------------------------------------------------------------------ annotations
    @property
    def image_diagonal(self) -> float:
        """The image's diagonal in display units (square pixels at the physical aspect)."""
        image = self.model.image
        if image is None:
            return 1.0
        sx, sy = self.model.pixel_scale
        return math.hypot(image.shape[0] * sy, image.shape[1] * sx)

    def ruler_label(self, annotation: Annotation) -> str:
        image = self.model.image
        spacing = image.spacing_mm if image is not None else None
        source = image.spacing_source if image is not None else None
        return str(measure(annotation.points[0], annotation.points[1], spacing, source))

    def label_for(self, annotation: Annotation) -> str:
        """The measurement a ruler, angle, ellipse or rectangle shows on the current image ("" for others)."""
        return label_for(annotation, self.model.image)

    def measurement_lines(self, numbered: bool = False) -> list[str]:
        """One line per measured annotation of the current image, oldest first (for the PDF); ``numbered``:
        each led by the number its mark carries in ``render_image(numbered=True)`` ("1. Ruler: 334 px")."""
        if self.model.image is None:
            return []
        lines = [report_line(a, self.model.image) for a in self.annotations.for_path(self.model.path)]
        lines = [line for line in lines if line]
        return [f"{n}. {line}" for n, line in enumerate(lines, 1)] if numbered else lines

    def _numbered_items(self) -> list[tuple[int, QGraphicsItem]]:
        """(number, item) of each measured annotation drawn, numbered as ``measurement_lines(numbered=True)``."""
        measured = [a for a in self.annotations.for_path(self.model.path) if report_line(a, self.model.image)]
        return [(n, self._annotation_items[a.id]) for n, a in enumerate(measured, 1) if a.id in self._annotation_items]

    def preview_item(self, annotation: Annotation) -> QGraphicsItem:
        """An unstored item that follows the mouse while the reader draws ``annotation``."""
        label = self.label_for(annotation)
        item = make_item(annotation, self.image_diagonal, None, label, self.model.pixel_scale)
        item.setParentItem(self.image_item)
        return item

    def commit(self, annotation: Annotation) -> QGraphicsItem:
        """Store ``annotation`` for the current image and draw it."""
        path = self.model.path
        self.annotations.add(path, annotation)
        return self._add_item(annotation)

    def delete_selected(self) -> int:
        """Remove the selected annotations from the image and the store; returns how many."""
        path = self.model.path
        removed = 0
        for annotation_id, item in list(self._annotation_items.items()):
            if item.isSelected():
                self.annotations.remove(path, annotation_id)
                self.removeItem(item)
                del self._annotation_items[annotation_id]
                removed += 1
        return removed

    def annotation_items(self) -> list[QGraphicsItem]:
        return list(self._annotation_items.values())

    def _add_item(self, annotation: Annotation) -> QGraphicsItem:
        path = self.model.path
        label = self.label_for(annotation)

        def on_change(changed: Annotation, path: Path = path) -> None:
            self.annotations.update(path, changed)
            if isinstance(item, ShapeAnnotationItem):
                item.set_label(self.label_for(changed))

        item = make_item(annotation, self.image_diagonal, on_change, label, self.model.pixel_scale)
        item.setParentItem(self.image_item)
        self._annotation_items[annotation.id] = item
        return item

    def reload_annotations(self) -> None:
        """Redraw the current image's annotations from the store (after an undo or a redo)."""
        self._clear_annotation_items()
        if self.model.image is not None:
            for annotation in self.annotations.for_path(self.model.path):
                self._add_item(annotation)

    def _clear_annotation_items(self) -> None:
        for item in self._annotation_items.values():
            self.removeItem(item)
        self._annotation_items.clear()

    # ------------------------------------------------------------------ overlays
    def add_overlay(self, item: QGraphicsItem) -> QGraphicsItem:
        """Draw ``item`` (image pixel coordinates) on the image; it is exported like an annotation
        and must have ``set_export_scale(line_factor, text_factor)``."""
        item.setParentItem(self.image_item)
        self._overlays.append(item)
        return item

    def remove_overlay(self, item: QGraphicsItem) -> None:
        if item in self._overlays:
            self._overlays.remove(item)
            self.removeItem(item)

    # ------------------------------------------------------------------ export
    def render_image(self, max_side: int = 2048, heatmap: bool | None = None, annotations: bool = True,
                     area: QRectF | None = None, numbered: bool = False) -> np.ndarray:
        """RGB uint8 of the image as displayed (orientation, window, layers), at most ``max_side`` px.

        ``heatmap`` forces the heat-map layer on or off (default: as shown). ``area`` is the part of
        the scene to render (e.g. what a view shows; default: the whole image), never upscaled.
        ``numbered``: each measured mark is labelled with its number in ``measurement_lines(numbered=True)``
        instead of its measurement (a small picture, as the PDF's, cannot hold the labels' text without
        hiding the measured regions; the page lists the measurements).
        """
        if self.model.image is None:
            raise RuntimeError("no image to render")
        rect = area if area is not None and not area.isEmpty() else self.image_item.sceneBoundingRect()
        scale = min(1.0, max_side / max(rect.width(), rect.height()))
        width, height = max(1, round(rect.width() * scale)), max(1, round(rect.height() * scale))
        numbers = self._numbered_items() if numbered and annotations else []
        texts = [(item, item.label_text()) for _, item in numbers]
        for number, item in numbers:
            item.set_label(str(number))
        selected = [item for item in self._annotation_items.values() if item.isSelected()]
        for item in selected:
            item.setSelected(False)
        if heatmap is not None:
            self.heatmap_layer.sync_visibility(bool(heatmap))
        # Screen-sized strokes and labels would be hair-thin on a large rendering.
        side = max(width, height)
        line_scale, text_scale = max(1.0, side / EXPORT_LINE_PX), max(1.0, side / EXPORT_TEXT_PX)
        marks = [*self._annotation_items.values(), *self._overlays]
        self.heatmap_layer.outline_item.set_export_scale(line_scale, text_scale)
        was_visible = [item.isVisible() for item in marks]
        for item in marks:
            item.setVisible(annotations and item.isVisible())
            item.set_export_scale(line_scale, text_scale)
        target = QImage(width, height, QImage.Format.Format_RGB888)
        target.fill(QColor(0, 0, 0))
        painter = QPainter(target)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform)
        # Measurement labels inside the picture and clear of each other at its own size, not the view's.
        labels = measurement_labels(self) if annotations else []
        place_labels(labels, lambda item: (item.parentItem().mapToScene(item.pos()) - rect.topLeft()) * scale,
                     QRectF(0, 0, width, height).adjusted(LABEL_MARGIN_PX, LABEL_MARGIN_PX,
                                                          -LABEL_MARGIN_PX, -LABEL_MARGIN_PX),
                     keep_clear=())  # the picture has no corner text
        self.render(painter, QRectF(0, 0, width, height), rect)
        painter.end()
        for label in labels:  # the view places them again for the screen on its next paint
            label.setTransform(QTransform())
        self.heatmap_layer.sync_visibility()
        for item, visible in zip(marks, was_visible):
            item.setVisible(visible)
            item.set_export_scale(1.0, 1.0)
        self.heatmap_layer.outline_item.set_export_scale(1.0, 1.0)
        for item in selected:
            item.setSelected(True)
        for item, text in texts:
            item.set_label(text)
        return to_rgb_array(target)

