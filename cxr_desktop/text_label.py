"""The word-wrapped text label the side panels show their results and notes in."""
from __future__ import annotations

import re

from PySide6.QtCore import Qt
from PySide6.QtGui import QClipboard, QGuiApplication
from PySide6.QtGui import Qt as GuiQt  # Qt.mightBeRichText lives in QtGui
from PySide6.QtWidgets import QLabel

#: A zero-width space: a line-break opportunity Qt's word wrap honours and nobody sees.
ZWSP = "\u200b"
#: A run without spaces this long (a UID, a path, a digest) may not fit a side panel's width on one line.
LONG_TOKEN = re.compile(r"[^\s<>]{16,}")


def _break_token(match: re.Match) -> str:
    token = re.sub(r"(?<=[./\\_-])(?!$)", ZWSP, match.group())  # after each separator but the last character
    return re.sub(f"[^{ZWSP}]{{24}}(?=[^{ZWSP}])", lambda run: run.group() + ZWSP, token)  # a digest: every 24


def breakable(text: str, rich: bool = False) -> str:
    """``text`` with zero-width spaces in its long unbroken tokens, after '.', '/', '\\', '_' and '-' (and
    every 24 characters where there are none), so that word wrap can break a UID or a path instead of
    cutting it off at the label's edge; in ``rich`` text, not inside its tags."""
    parts = re.split(r"(<[^>]*>)", text) if rich else [text]
    return "".join(part if part.startswith("<") and rich else LONG_TOKEN.sub(_break_token, part) for part in parts)


class WrappedLabel(QLabel):
    """A word-wrapped ``QLabel`` whose minimum height follows its text at its current width, so a layout
    that sized it by the height for another width (a group box in a scroll area does, by a line or two)
    cannot cut off its first and last lines. Its long tokens (UIDs, paths) wrap too (``breakable``):
    ``text()`` and what the reader copies are the text as given, without the zero-width spaces."""

    def __init__(self, text: str = "", parent=None):
        super().__init__(parent)
        self._text = ""
        self.setText(text)

    def setText(self, text: str) -> None:
        self._text = text
        rich = self.textFormat() == Qt.TextFormat.RichText or (
            self.textFormat() == Qt.TextFormat.AutoText and GuiQt.mightBeRichText(text))
        shown = breakable(text, rich)
        super().setText(shown)
        self.setAccessibleName(text if shown != text else "")  # a screen reader reads the text as given
        self._fit_height()

    def setTextFormat(self, text_format: Qt.TextFormat) -> None:
        super().setTextFormat(text_format)
        self.setText(self._text)  # rich text keeps its tags whole, plain text is broken anywhere long

    def text(self) -> str:
        """The text as given (``shown_text``: with the break opportunities)."""
        return self._text

    def shown_text(self) -> str:
        return super().text()

    def selectedText(self) -> str:
        return super().selectedText().replace(ZWSP, "")

    # Copying a selection (Ctrl+C, the context menu's Copy, X11's selection) puts Qt's text on the clipboard.
    def keyPressEvent(self, event) -> None:
        super().keyPressEvent(event)
        self._clean_clipboard()

    def contextMenuEvent(self, event) -> None:
        super().contextMenuEvent(event)
        self._clean_clipboard()

    def mouseReleaseEvent(self, event) -> None:
        super().mouseReleaseEvent(event)
        self._clean_clipboard()

    def _clean_clipboard(self) -> None:
        """Our selection as Qt copied it, with the zero-width spaces, is put back without them."""
        copied = super().selectedText()
        if ZWSP not in copied:
            return
        clipboard = QGuiApplication.clipboard()
        for mode in (QClipboard.Mode.Clipboard, QClipboard.Mode.Selection):
            if clipboard.text(mode) == copied:
                clipboard.setText(copied.replace(ZWSP, ""), mode)

    def resizeEvent(self, event) -> None:
        super().resizeEvent(event)
        self._fit_height()

    def _fit_height(self) -> None:
        needed = self.heightForWidth(self.width()) if self.wordWrap() and self.shown_text() else 0
        if needed != self.minimumHeight():
            self.setMinimumHeight(max(needed, 0))


def text_label(text: str = "", *, style: str = "", selectable: bool = False) -> QLabel:
    """A ``QLabel`` that wraps long text at word boundaries and inside long tokens (and is never given less
    height than its text needs at its width: ``WrappedLabel``), with the style sheet ``style`` and, when
    ``selectable``, text the reader can select with the mouse (to copy a model name or a figure)."""
    label = WrappedLabel(text)
    label.setWordWrap(True)
    if style:
        label.setStyleSheet(style)
    if selectable:
        label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
    return label
