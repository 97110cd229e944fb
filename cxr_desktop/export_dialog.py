"""The export dialog: de-identify, reader's name and comment, then where to save the PDF.

What the reader types is not lost when the export goes no further (a cancelled save dialog, a refused file):
the comment is kept with the film the dialog was opened on, in the session and on this PC beside its marks
(``AnnotationAutosave.keep_comment``), and offered again next time; the reader's name is kept in the settings as
soon as the dialog is confirmed."""
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

    def __init__(self, scope_text: str, reader_name: str = "", parent=None, comment: str = ""):
        super().__init__(parent)
        self.setWindowTitle("Export PDF summary")
        form = QFormLayout(self)
        form.addRow(QLabel(scope_text))
        self.deidentify = QCheckBox("De-identify (remove name, ID, birth date, accession number, dates, UIDs)")
        form.addRow(self.deidentify)
        self.reader = QLineEdit(reader_name)
        self.reader.setPlaceholderText("optional; withheld when de-identifying")
        form.addRow("Reader", self.reader)
        self.comment = QPlainTextEdit(comment)
        self.comment.setPlaceholderText("Reader's comment (printed on every page)")
        self.comment.setMinimumHeight(100)
        form.addRow("Comment", self.comment)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Save | QDialogButtonBox.StandardButton.Cancel)
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        form.addRow(buttons)


def ask_pdf_file(window, start: Path) -> Path | None:
    """The file the reader picks in a save dialog opened at ``start`` (made ``.pdf``), or None."""
    destination, _ = QFileDialog.getSaveFileName(window, "Save the PDF summary", str(start), "PDF (*.pdf)")
    return Path(destination).with_suffix(".pdf") if destination else None


def refusal_text(destination: Path, reason: str) -> str:
    """Why the PDF is not written at ``destination``: the output rule's ``reason`` (a source folder)."""
    return f"{destination} {reason}. Choose a folder outside the studies' folders."


def another_destination(window, workspace, tried: Path, message: str, films) -> Path | None:
    """After the PDF was refused or could not be written at ``tried``: a warning with ``message`` (it names
    the file and the reason) and "Choose another file…"; the file then picked, asked again while the
    output rule refuses it (``StudyWorkspace.output_problem`` with ``films``), or None when the reader cancels."""
    while True:
        box = QMessageBox(QMessageBox.Icon.Warning, "Export PDF", message,
                          QMessageBox.StandardButton.Save | QMessageBox.StandardButton.Cancel, window)
        box.button(QMessageBox.StandardButton.Save).setText("Choose another file…")
        box.setDefaultButton(QMessageBox.StandardButton.Save)
        if box.exec() != QMessageBox.StandardButton.Save:
            return None
        destination = ask_pdf_file(window, tried)
        if destination is None:
            return None
        reason = workspace.output_problem(destination, films)
        if not reason:
            return destination
        tried, message = destination, refusal_text(destination, reason)


def run_export_dialog(window, scope: str) -> None:
    """Ask for options and a destination, then start the export on ``window`` (a refused or unwritable file
    is named with its reason, and another one asked for: ``another_destination``). The comment last written
    for the current film is offered again; what the reader leaves in the box is kept with that film, even when
    the export goes no further, and the reader's name once the dialog is confirmed."""
    current = window.viewer.path
    if current is None:
        QMessageBox.information(window, "Export PDF", "Open an image first.")
        return
    paths = [current] if scope == "image" else window.browser.study_paths(current)
    keeper = window.autosave
    dialog = ExportDialog(scope_text(len(paths), scope), window.settings.reader_name, window,
                          comment=keeper.comment_for(current))
    confirmed = dialog.exec()
    keeper.keep_comment(current, dialog.comment.toPlainText())  # typed is kept, even when not exported
    if not confirmed:
        return
    window.settings.reader_name = dialog.reader.text().strip()
    destination = ask_pdf_file(window, Path(window.settings.last_export_folder or Path.home()) / default_file_name())
    if destination is None:
        return
    reason = window.workspace.output_problem(destination, paths)
    if reason:
        destination = another_destination(window, window.workspace, destination, refusal_text(destination, reason),
                                          paths)
        if destination is None:
            return
    window.settings.last_export_folder = str(destination.parent)
    window.start_export(ExportRequest(tuple(paths), destination, dialog.deidentify.isChecked(),
                                      dialog.comment.toPlainText().strip(), dialog.reader.text().strip(),
                                      offer_another_file=True))
