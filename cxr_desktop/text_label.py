"""The word-wrapped text label the side panels show their results and notes in."""
from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QLabel


class WrappedLabel(QLabel):
    """A word-wrapped ``QLabel`` whose minimum height follows its text at its current width, so a layout
    that sized it by the height for another width (a group box in a scroll area does, by a line or two)
    cannot cut off its first and last lines."""

    def setText(self, text: str) -> None:
        super().setText(text)
        self._fit_height()

    def resizeEvent(self, event) -> None:
        super().resizeEvent(event)
        self._fit_height()

    def _fit_height(self) -> None:
        needed = self.heightForWidth(self.width()) if self.wordWrap() and self.text() else 0
        if needed != self.minimumHeight():
            self.setMinimumHeight(max(needed, 0))


def text_label(text: str = "", *, style: str = "", selectable: bool = False) -> QLabel:
    """A ``QLabel`` that wraps long text at word boundaries (and is never given less height than its
    text needs at its width: ``WrappedLabel``), with the style sheet ``style`` and, when ``selectable``,
    text the reader can select with the mouse (to copy a model name or a figure)."""
    label = WrappedLabel(text)
    label.setWordWrap(True)
    if style:
        label.setStyleSheet(style)
    if selectable:
        label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
    return label
