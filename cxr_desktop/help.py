"""Help: the About box with the version, and the short user guide (``docs/user_guide.md``)."""
from __future__ import annotations

import sys
from pathlib import Path

from PySide6.QtWidgets import QDialog, QDialogButtonBox, QMessageBox, QTextBrowser, QVBoxLayout

from cxr_engine.models.model_card import INTENDED_USE

GUIDE_NAME = "user_guide.md"


def version() -> str:
    """The program's version (``cxr_engine.__version__``, the one its PDFs and DICOM outputs state; a test
    keeps pyproject.toml's equal to it). Not the installed distribution's metadata: an editable install made
    before a version change, or a PyInstaller bundle, does not hold the current one."""
    from cxr_engine import __version__

    return __version__


def user_guide_path() -> Path:
    """``docs/user_guide.md`` of a PyInstaller bundle, else of the checkout."""
    bundle = getattr(sys, "_MEIPASS", None)
    root = Path(bundle) if bundle else Path(__file__).resolve().parents[1]
    return root / "docs" / GUIDE_NAME


def about_text() -> str:
    return (f"<b>CXR Reader {version()}</b><br>An offline reader for chest X-ray DICOM studies with a Normal / "
            "Pneumonia / COVID-19 classifier and Grad-CAM heat-maps.<br><br>"
            f"Help → User guide (F1 for the keyboard shortcuts).<br><br><b>{INTENDED_USE}</b>")


def show_about(parent) -> None:
    QMessageBox.about(parent, "About CXR Reader", about_text())


class UserGuide(QDialog):
    """The user guide, rendered from its Markdown file."""

    def __init__(self, parent=None, path: Path | None = None):
        super().__init__(parent)
        self.setWindowTitle("CXR Reader — user guide")
        self.resize(720, 640)
        layout = QVBoxLayout(self)
        self.browser = QTextBrowser()
        self.browser.setOpenExternalLinks(False)
        path = path or user_guide_path()
        try:
            self.browser.setMarkdown(path.read_text(encoding="utf-8"))
        except OSError as exc:
            self.browser.setPlainText(f"The user guide could not be read from {path}: {exc.strerror or exc}")
        layout.addWidget(self.browser)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.rejected.connect(self.reject)
        layout.addWidget(buttons)
