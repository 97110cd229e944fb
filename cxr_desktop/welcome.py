"""The panel shown before anything is open: open buttons, the sample study, recent folders."""
from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QBoxLayout, QHBoxLayout, QLabel, QListWidget, QPushButton, QSizePolicy, QVBoxLayout, QWidget,
)

from cxr_engine.models.model_card import INTENDED_USE


#: The widest the panel's text and buttons stand (px); a wider window centres them.
COLUMN_WIDTH = 640


class WelcomePanel(QWidget):
    """Buttons that emit what the reader wants to open."""

    openFolder = Signal()
    openFiles = Signal()
    openSample = Signal()
    openRecent = Signal(str)

    def __init__(self, parent=None):
        super().__init__(parent)
        # The text and buttons stand in a centred column no wider than COLUMN_WIDTH. The column fills its
        # width, and the word-wrapped labels fill the column: a label added to a layout with an alignment
        # gets its size hint's width but the height for the layout's whole width, and loses its last lines.
        outer = QHBoxLayout(self)
        outer.addStretch(0)
        self.column = QWidget()
        self.column.setMaximumWidth(COLUMN_WIDTH)
        outer.addWidget(self.column, stretch=1)  # all the width up to its maximum; the stretches share the rest
        outer.addStretch(0)
        layout = QVBoxLayout(self.column)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addStretch(1)
        title = QLabel("CXR Reader")
        title.setStyleSheet("font-size:22pt; font-weight:bold;")
        title.setAlignment(Qt.AlignmentFlag.AlignHCenter)
        layout.addWidget(title)
        self.intro = _wrapped("Open a folder of chest X-ray DICOM studies (from a CD, a USB stick or a network "
                              "export), a DICOMDIR, or single DICOM, PNG or JPEG files, or drop them on this window.")
        layout.addWidget(self.intro)
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
        self.recent_label.setAlignment(Qt.AlignmentFlag.AlignHCenter)
        self.recent = QListWidget()
        self.recent.setMaximumHeight(160)
        self.recent.itemActivated.connect(lambda item: self.openRecent.emit(item.text()))
        layout.addWidget(self.recent_label)
        layout.addWidget(self.recent)
        self.notice = _wrapped(INTENDED_USE)
        self.notice.setStyleSheet("color:#e0b040;")
        layout.addWidget(self.notice)
        layout.addStretch(2)

    def resizeEvent(self, event) -> None:
        buttons = (self.folder_button, self.files_button, self.sample_button)
        margins = self.layout().contentsMargins()
        column = min(event.size().width() - margins.left() - margins.right(), COLUMN_WIDTH)
        row = sum(b.sizeHint().width() for b in buttons) + 2 * max(self._buttons.spacing(), 0)
        direction = QBoxLayout.Direction.LeftToRight if column >= row else QBoxLayout.Direction.TopToBottom
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


def _wrapped(text: str) -> QLabel:
    """A centred label wrapping ``text`` at word boundaries, as wide as its column."""
    label = QLabel(text)
    label.setWordWrap(True)  # a narrow window (small screen, 150–200 % scaling) wraps it
    label.setAlignment(Qt.AlignmentFlag.AlignHCenter)
    return label
