"""Printing the image on screen (Ctrl+P) through ``QPrinter``: one page, the image as displayed
(window, orientation, heat-map and annotations as shown) and a caption. No patient identifiers
are printed: the caption holds the technique, the window and the intended-use notice."""
from __future__ import annotations

from PySide6.QtCore import QRectF, Qt
from PySide6.QtGui import QFont, QPainter
from PySide6.QtPrintSupport import QPrintDialog, QPrinter
from PySide6.QtWidgets import QMessageBox

from cxr_engine.models.model_card import INTENDED_USE

from .formatting import voi_text
from .qimage import to_qimage

#: The longest side of the rendering sent to the printer, in image pixels.
PRINT_MAX_SIDE = 3000
CAPTION_PT = 9.0


def caption(viewer) -> str:
    """One line under the printed image: file, technique, window, notice."""
    image = viewer.image
    meta = image.metadata
    technique = " ".join(v for v in (meta.modality, meta.view_position, meta.body_part) if v)
    parts = [image.path.name, technique, voi_text(viewer.voi) if viewer.voi is not None else ""]
    return " · ".join(p for p in parts if p) + f"\n{INTENDED_USE}"


def print_view(scene, viewer, printer: QPrinter) -> None:
    """Paint the image of ``scene`` as displayed, fitted to one page of ``printer``, with ``caption``.

    Raises ``RuntimeError`` when there is no image or the printer cannot be painted on.
    """
    if viewer.image is None:
        raise RuntimeError("no image to print")
    pixels = scene.render_image(PRINT_MAX_SIDE)
    picture = to_qimage(pixels)
    painter = QPainter()
    if not painter.begin(printer):
        raise RuntimeError(f"the printer could not be opened ({printer.printerName() or printer.outputFileName()})")
    try:
        page = QRectF(painter.viewport())
        font = QFont()
        font.setPointSizeF(CAPTION_PT)
        painter.setFont(font)
        text_height = painter.fontMetrics().height() * 3
        room = page.adjusted(0, 0, 0, -text_height)
        scale = min(room.width() / picture.width(), room.height() / picture.height())
        target = QRectF(0, 0, picture.width() * scale, picture.height() * scale)
        target.moveCenter(room.center())
        target.moveTop(room.top())
        painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform)
        painter.drawImage(target, picture)
        painter.drawText(QRectF(page.left(), target.bottom() + 4, page.width(), text_height),
                         int(Qt.AlignmentFlag.AlignHCenter | Qt.AlignmentFlag.AlignTop | Qt.TextFlag.TextWordWrap),
                         caption(viewer))
    finally:
        painter.end()


def print_current(window) -> None:
    """Ask for a printer and print the main viewer's image (Ctrl+P)."""
    if window.viewer.image is None:
        QMessageBox.information(window, "Print", "Open an image first.")
        return
    printer = QPrinter(QPrinter.PrinterMode.HighResolution)
    dialog = QPrintDialog(printer, window)
    dialog.setWindowTitle("Print the image")
    if dialog.exec():
        try:
            print_view(window.scene, window.viewer, printer)
        except RuntimeError as exc:
            QMessageBox.warning(window, "Print", str(exc))
