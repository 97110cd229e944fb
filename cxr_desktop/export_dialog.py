"""The export dialog: de-identify, reader's name and comment, then where to save the PDF."""
from __future__ import annotations

from datetime import datetime
from pathlib import Path

from PySide6.QtWidgets import (
    QCheckBox,
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QFormLayout,
    QLabel,
    QLineEdit,
    QMessageBox,
    QPlainTextEdit,
)

from .report_export import ExportRequest


def default_file_name(now: datetime | None = None) -> str:
    """A name that never holds patient data (names and IDs must not leak into file names)."""
    return f"cxr_report_{(now or datetime.now()):%Y%m%d_%H%M}.pdf"


def scope_text(count: int, scope: str) -> str:
    """What the PDF will hold, in words: ``1 image``, ``3 images of this study``."""
    images = f"{count} image" + ("" if count == 1 else "s")
    return images if scope == "image" else f"{images} of this study"


class ExportDialog(QDialog):
    """Options for one PDF export."""

    def __init__(self, scope_text: str, reader_name: str = "", parent=None):
        super().__init__(parent)
        self.setWindowTitle("Export PDF summary")
        form = QFormLayout(self)
        form.addRow(QLabel(scope_text))
        self.deidentify = QCheckBox("De-identify (remove name, ID, birth date, accession number, dates, UIDs)")
        form.addRow(self.deidentify)
        self.reader = QLineEdit(reader_name)
        self.reader.setPlaceholderText("optional; withheld when de-identifying")
        form.addRow("Reader", self.reader)
        self.comment = QPlainTextEdit()
        self.comment.setPlaceholderText("Reader's comment (printed on every page)")
        self.comment.setMinimumHeight(100)
        form.addRow("Comment", self.comment)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Save | QDialogButtonBox.StandardButton.Cancel)
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        form.addRow(buttons)


def run_export_dialog(window, scope: str) -> None:
    """Ask for options and a destination, then start the export on ``window``."""
    current = window.viewer.path
    if current is None:
        QMessageBox.information(window, "Export PDF", "Open an image first.")
        return
    paths = [current] if scope == "image" else window.browser.study_paths(current)
    dialog = ExportDialog(scope_text(len(paths), scope), window.settings.reader_name, window)
    if not dialog.exec():
        return
    start = str(Path(window.settings.last_export_folder or Path.home()) / default_file_name())
    destination, _ = QFileDialog.getSaveFileName(window, "Save the PDF summary", start, "PDF (*.pdf)")
    if not destination:
        return
    destination = Path(destination).with_suffix(".pdf")
    reason = window.workspace.output_problem(destination, paths)
    if reason:
        QMessageBox.warning(window, "Export PDF", f"{destination} {reason}. Choose a folder outside the studies' folders.")
        return
    window.settings.reader_name = dialog.reader.text().strip()
    window.settings.last_export_folder = str(destination.parent)
    window.start_export(ExportRequest(tuple(paths), destination, dialog.deidentify.isChecked(),
                                      dialog.comment.toPlainText().strip(), dialog.reader.text().strip()))
