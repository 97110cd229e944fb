"""The panel shown before anything is open: open buttons, the sample study, recent folders."""
from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QBoxLayout, QHBoxLayout, QLabel, QListWidget, QPushButton, QSizePolicy, QVBoxLayout, QWidget,
)

from cxr_engine.models.model_card import INTENDED_USE


class WelcomePanel(QWidget):
    """Buttons that emit what the reader wants to open."""

    openFolder = Signal()
    openFiles = Signal()
    openSample = Signal()
    openRecent = Signal(str)

    def __init__(self, parent=None):
        super().__init__(parent)
        layout = QVBoxLayout(self)
        layout.addStretch(1)
        title = QLabel("CXR Reader")
        title.setStyleSheet("font-size:22pt; font-weight:bold;")
        layout.addWidget(title, alignment=Qt.AlignmentFlag.AlignHCenter)
        intro = QLabel("Open a folder of chest X-ray DICOM studies (from a CD, a USB stick or a network export), "
                       "a DICOMDIR, or single DICOM, PNG or JPEG files, or drop them on this window.")
        intro.setAlignment(Qt.AlignmentFlag.AlignHCenter)
        intro.setWordWrap(True)  # a narrow window (small screen, 150–200 % scaling) wraps it
        intro.setMaximumWidth(640)
        layout.addWidget(intro, alignment=Qt.AlignmentFlag.AlignHCenter)
        buttons = QHBoxLayout()
        buttons.addStretch(1)
        self.folder_button = self._button("Open folder…", self.openFolder, buttons)
        self.files_button = self._button("Open files…", self.openFiles, buttons)
        self.sample_button = self._button("Open sample study", self.openSample, buttons)
        buttons.addStretch(1)
        layout.addLayout(buttons)
        self._buttons = buttons
        # The viewer page, not this one, sets how narrow the centre may be (a small screen gives the
        # width to the study tree and the result panel); a narrow panel puts its buttons in a column.
        self.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        self.recent_label = QLabel("Recent folders")
        self.recent = QListWidget()
        self.recent.setMaximumWidth(640)
        self.recent.setMaximumHeight(160)
        self.recent.itemActivated.connect(lambda item: self.openRecent.emit(item.text()))
        layout.addWidget(self.recent_label, alignment=Qt.AlignmentFlag.AlignHCenter)
        layout.addWidget(self.recent, alignment=Qt.AlignmentFlag.AlignHCenter)
        notice = QLabel(INTENDED_USE)
        notice.setStyleSheet("color:#e0b040;")
        notice.setWordWrap(True)
        notice.setAlignment(Qt.AlignmentFlag.AlignHCenter)
        notice.setMaximumWidth(640)
        layout.addWidget(notice, alignment=Qt.AlignmentFlag.AlignHCenter)
        layout.addStretch(2)

    def resizeEvent(self, event) -> None:
        buttons = (self.folder_button, self.files_button, self.sample_button)
        margins = self.layout().contentsMargins()
        row = (sum(b.sizeHint().width() for b in buttons) + 2 * max(self._buttons.spacing(), 0)
               + margins.left() + margins.right())
        direction = QBoxLayout.Direction.LeftToRight if event.size().width() >= row else QBoxLayout.Direction.TopToBottom
        if self._buttons.direction() != direction:
            self._buttons.setDirection(direction)
        super().resizeEvent(event)

    def _button(self, text: str, signal, layout: QHBoxLayout) -> QPushButton:
        button = QPushButton(text)
        button.setMinimumHeight(36)
        button.clicked.connect(signal.emit)
        layout.addWidget(button)
        return button

    def set_recent(self, folders: list[str]) -> None:
        self.recent.clear()
        self.recent.addItems(folders)
        self.recent_label.setVisible(bool(folders))
        self.recent.setVisible(bool(folders))
