"""The word-wrapped text label the side panels show their results and notes in."""
from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QLabel


def text_label(text: str = "", *, style: str = "", selectable: bool = False) -> QLabel:
    """A ``QLabel`` that wraps long text at word boundaries, with the style sheet ``style`` and, when
    ``selectable``, text the reader can select with the mouse (to copy a model name or a figure)."""
    label = QLabel(text)
    label.setWordWrap(True)
    if style:
        label.setStyleSheet(style)
    if selectable:
        label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
    return label
