"""The dialogs that ask for a text annotation's words, for the main viewer and the comparison viewports."""
from __future__ import annotations

from PySide6.QtWidgets import QInputDialog

from .annotation_model import TEXT, Annotation


def ask_text(parent, scene, x: float, y: float) -> None:
    """Ask for a text and add it to ``scene`` at image point (``x``, ``y``); nothing when cancelled or blank."""
    text, ok = QInputDialog.getText(parent, "Text annotation", "Text:")
    if ok and text.strip():
        scene.commit(Annotation(TEXT, ((x, y),), text.strip()))


def edit_text(parent, item) -> None:
    """Ask for a new text for the text annotation ``item`` (an ``AnnotationItem``)."""
    text, ok = QInputDialog.getText(parent, "Edit text annotation", "Text:", text=item.annotation.text)
    if ok and text.strip():
        item.set_text(text.strip())
