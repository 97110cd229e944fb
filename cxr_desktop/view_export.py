"""Export the view as a PNG or JPEG: the image as displayed (window, orientation, physical aspect),
with or without annotations and heat-map, optionally with the corner text burned in.

De-identified exports burn no identifiers into the pixels: no corner text (names, IDs, dates,
institution, descriptions), and text annotations are redacted like the PDF's comment
(``cxr_engine.outputs.deidentify.redact_free_text``); the file itself carries no metadata
(``cxr_engine.outputs.image_export``). What the film's own pixels show (burned-in labels from the
modality) is not changed.
"""
from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import numpy as np
from PySide6.QtCore import QRectF, Qt
from PySide6.QtGui import QColor, QFont, QPainter, QPen
from PySide6.QtWidgets import (
    QCheckBox,
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QMessageBox,
    QRadioButton,
    QVBoxLayout,
)

from cxr_engine.outputs.deidentify import redact_free_text
from cxr_engine.outputs.image_export import write_view_image

from .annotation_items import TextAnnotationItem
from .formatting import corner_text
from .qimage import to_qimage, to_rgb_array

#: Longest side of an exported whole image, in pixels (the film's own resolution up to this).
MAX_EXPORT_PX = 8192


@dataclass(frozen=True)
class ViewExportOptions:
    """What goes into the exported picture."""

    annotations: bool = True
    heatmap: bool = True
    deidentify: bool = False
    corner_text: bool = False  # never burned in when de-identifying
    visible_area: bool = False  # what the viewer shows now, else the whole image


def default_view_file_name(now: datetime | None = None, suffix: str = ".png") -> str:
    """A name that never holds patient data."""
    return f"cxr_view_{(now or datetime.now()):%Y%m%d_%H%M%S}{suffix}"


def render_view(view, options: ViewExportOptions) -> np.ndarray:
    """RGB uint8 (H, W, 3) of ``view``'s (an ``ImageView``) image as ``options`` say."""
    scene = view.image_scene
    image = view.model.image
    if image is None:
        raise RuntimeError("no image to export")
    area = view.mapToScene(view.viewport().rect()).boundingRect() if options.visible_area else None
    with text_annotations_redacted(scene, image.metadata, options.deidentify):
        rgb = scene.render_image(MAX_EXPORT_PX, heatmap=options.heatmap, annotations=options.annotations, area=area)
    if options.corner_text and not options.deidentify:
        rgb = _with_corner_text(rgb, view)
    return rgb


@contextmanager
def text_annotations_redacted(scene, metadata, active: bool = True):
    """While the block runs, ``scene``'s text notes show the patient's name parts, IDs and birth date as
    ``[removed]``, with paths, UIDs and typed dates (``redact_free_text``; only when ``active``): what a
    de-identified picture or report page renders, since pixels cannot be redacted afterwards. The notes are put back as typed afterwards."""
    redacted = []
    if active:
        for item in scene.annotation_items():
            if isinstance(item, TextAnnotationItem):
                safe = redact_free_text(item.text(), metadata)
                if safe != item.text():
                    redacted.append((item, item.text()))
                    item.setText(safe)
    try:
        yield
    finally:
        for item, text in redacted:
            item.setText(text)


def _with_corner_text(rgb: np.ndarray, view) -> np.ndarray:
    """``rgb`` with the viewer's four corner blocks painted on, sized to the picture."""
    m = view.model
    text = corner_text(m.image.metadata, m.image.shape, m.voi, view.zoom, m.rotation, m.flip_h, m.flip_v, m.user_invert)
    picture = to_qimage(rgb).copy()
    height, width = rgb.shape[:2]
    painter = QPainter(picture)
    font = QFont()
    font.setPixelSize(max(10, round(min(width, height) / 45)))
    painter.setFont(font)
    margin = font.pixelSize() * 0.6
    area = QRectF(margin, margin, width - 2 * margin, height - 2 * margin)
    corners = {"top_left": Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignTop,
               "top_right": Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignTop,
               "bottom_left": Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignBottom,
               "bottom_right": Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignBottom}
    for corner, align in corners.items():
        block = "\n".join(line for line in getattr(text, corner) if line)
        if block:
            shadow = max(1.0, font.pixelSize() / 12)
            painter.setPen(QPen(QColor(0, 0, 0)))
            painter.drawText(area.translated(shadow, shadow), int(align), block)
            painter.setPen(QPen(QColor(235, 235, 235)))
            painter.drawText(area, int(align), block)
    painter.end()
    return to_rgb_array(picture)


def export_view(view, path: str | Path, options: ViewExportOptions) -> Path:
    """Render and write the view to ``path`` (.png, .jpg or .jpeg)."""
    return write_view_image(path, render_view(view, options))


class ViewExportDialog(QDialog):
    """The options of one view export."""

    def __init__(self, heatmap_available: bool, parent=None):
        super().__init__(parent)
        self.setWindowTitle("Export view as image")
        layout = QVBoxLayout(self)
        self.whole = QRadioButton("Whole image (at the film's resolution)")
        self.visible = QRadioButton("Visible area only (as zoomed and panned)")
        self.whole.setChecked(True)
        self.annotations = QCheckBox("Annotations and measurements")
        self.annotations.setChecked(True)
        self.heatmap = QCheckBox("Heat-map (as shown: colour or outline)")
        self.heatmap.setChecked(heatmap_available)
        self.heatmap.setEnabled(heatmap_available)
        self.deidentify = QCheckBox("De-identify: burn no identifiers into the picture (no corner text; "
                                    "names and IDs in text annotations redacted)")
        self.corner_text = QCheckBox("Corner text (patient, study and technique, as in the viewer)")
        self.deidentify.toggled.connect(lambda on: self.corner_text.setEnabled(not on))
        self.deidentify.toggled.connect(lambda on: on and self.corner_text.setChecked(False))
        for widget in (self.whole, self.visible, self.annotations, self.heatmap, self.deidentify, self.corner_text):
            layout.addWidget(widget)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Save | QDialogButtonBox.StandardButton.Cancel)
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        layout.addWidget(buttons)

    def options(self) -> ViewExportOptions:
        return ViewExportOptions(annotations=self.annotations.isChecked(),
                                 heatmap=self.heatmap.isChecked() and self.heatmap.isEnabled(),
                                 deidentify=self.deidentify.isChecked(),
                                 corner_text=self.corner_text.isChecked() and not self.deidentify.isChecked(),
                                 visible_area=self.visible.isChecked())


def run_view_export_dialog(window) -> Path | None:
    """Ask for the options and the file, then write the view of ``window`` (a ``MainWindow``)."""
    if window.viewer.image is None:
        QMessageBox.information(window, "Export view", "Open an image first.")
        return None
    dialog = ViewExportDialog(window.viewer.heatmap is not None, window)
    if not dialog.exec():
        return None
    start = str(Path(window.settings.last_export_folder or Path.home()) / default_view_file_name())
    destination, chosen = QFileDialog.getSaveFileName(window, "Save the view", start,
                                                      "PNG image (*.png);;JPEG image (*.jpg *.jpeg)")
    if not destination:
        return None
    path = Path(destination)
    if path.suffix.lower() not in (".png", ".jpg", ".jpeg"):
        path = path.with_suffix(".jpg" if chosen.startswith("JPEG") else ".png")
    reason = window.workspace.output_problem(path, [window.viewer.path])
    if reason:
        QMessageBox.warning(window, "Export view", f"{path} {reason}. Choose a folder outside the studies' folders.")
        return None
    try:
        export_view(window.view, path, dialog.options())
    except (OSError, ValueError, RuntimeError) as exc:
        QMessageBox.warning(window, "Export view", f"{path}: the image could not be written ({exc}).")
        return None
    window.settings.last_export_folder = str(path.parent)
    window.statusBar().showMessage(f"View written: {path}", 10000)
    return path
