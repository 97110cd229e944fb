"""The dialogs that ask for a text annotation's words, for the main viewer and the comparison viewports.

A note is at most ``presentation_state.TEXT_VALUE_MAX`` (1024) characters, what a DICOM presentation state's text
object holds (Unformatted Text Value (0070,0006), ST: PS3.5 Table 6.2-1): the dialog says so and takes no more, so
that *Send AI result* writes every note whole (a longer one is refused there, never cut)."""
from __future__ import annotations

from PySide6.QtWidgets import QDialog, QInputDialog, QLineEdit

from .annotation_model import TEXT, Annotation


def ask_text(parent, scene, x: float, y: float) -> None:
    """Ask for a text and add it to ``scene`` at image point (``x``, ``y``); nothing when cancelled or blank."""
    text = _ask(parent, "Text annotation")
    if text:
        scene.commit(Annotation(TEXT, ((x, y),), text))


def edit_text(parent, item) -> None:
    """Ask for a new text for the text annotation ``item`` (an ``AnnotationItem``)."""
    text = _ask(parent, "Edit text annotation", item.annotation.text)
    if text:
        item.set_text(text)


def _ask(parent, title: str, text: str = "") -> str:
    """The words typed into :func:`text_dialog`, stripped; ``""`` when cancelled."""
    dialog = text_dialog(parent, title, text)
    try:
        return dialog.textValue().strip() if dialog.exec() == QDialog.DialogCode.Accepted else ""
    finally:
        dialog.deleteLater()


def text_dialog(parent, title: str, text: str = "") -> QInputDialog:
    """The dialog (not yet shown) asking for a note of at most ``TEXT_VALUE_MAX`` characters, holding ``text``. A
    note already longer (written before the limit) is shown whole, never cut, with the label saying it must be
    shortened for a presentation state."""
    from cxr_engine.outputs.dicom_outputs.presentation_state import TEXT_VALUE_MAX

    dialog = QInputDialog(parent)
    dialog.setWindowTitle(title)
    dialog.setInputMode(QInputDialog.InputMode.TextInput)
    if len(text) > TEXT_VALUE_MAX:
        dialog.setLabelText(f"Text ({len(text)} characters; a DICOM presentation state holds at most "
                            f"{TEXT_VALUE_MAX}: shorten it to send the annotations):")
    else:
        dialog.setLabelText(f"Text (at most {TEXT_VALUE_MAX} characters, as a DICOM presentation state holds):")
    line = dialog.findChild(QLineEdit)
    line.setMaxLength(max(TEXT_VALUE_MAX, len(text)))
    dialog.setTextValue(text)
    return dialog
