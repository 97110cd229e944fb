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
#: Where a token may break: after these.
SEPARATORS = frozenset("./\\_-")
#: A run without a separator gets a break opportunity after this many characters (a digest).
RUN = 24
#: An HTML entity of rich text ("&amp;", "&#39;", "&#x2F;"): one character on screen, never broken.
ENTITY = re.compile(r"&(?:#[0-9]+|#[xX][0-9a-fA-F]+|[A-Za-z][A-Za-z0-9]*);")


def _break_units(units: list[str]) -> str:
    """The token of ``units`` (characters, or a rich text's entities, each one unit) with a zero-width space after
    each separator but the last unit, and after every ``RUN`` units without one."""
    out, run = [], 0
    for i, unit in enumerate(units):
        out.append(unit)
        run += 1
        if i == len(units) - 1:
            break
        if unit in SEPARATORS or run == RUN:
            out.append(ZWSP)
            run = 0
    return "".join(out)


def _break_token(match: re.Match) -> str:
    return _break_units(list(match.group()))


def _break_rich_token(match: re.Match) -> str:
    token = match.group()
    units, at = [], 0
    for entity in ENTITY.finditer(token):  # each entity one unit: "&a\u200bmp;" would show as text
        units += list(token[at:entity.start()]) + [entity.group()]
        at = entity.end()
    return _break_units(units + list(token[at:]))


def breakable(text: str, rich: bool = False) -> str:
    """``text`` with zero-width spaces in its long unbroken tokens, after '.', '/', '\\', '_' and '-' (and
    every 24 characters where there are none), so that word wrap can break a UID or a path instead of
    cutting it off at the label's edge; in ``rich`` text, not inside its tags nor its entities ("&amp;")."""
    if not rich:
        return LONG_TOKEN.sub(_break_token, text)
    parts = re.split(r"(<[^>]*>)", text)
    return "".join(part if part.startswith("<") else LONG_TOKEN.sub(_break_rich_token, part) for part in parts)


def _lines_alike(text: str) -> str:
    """``text`` with its line ends (CR LF, CR, U+2029, U+2028) as LF."""
    return re.sub("\r\n|[\r\u2028\u2029]", "\n", text)


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
        """Our selection as Qt copied it, with the zero-width spaces, is put back without them. Qt's
        ``selectedText()`` ends lines with U+2029 (U+2028 for a ``<br>``) where the clipboard has LF (a
        multi-line selection kept its zero-width spaces): the two are compared with their line ends alike."""
        copied = super().selectedText()
        if ZWSP not in copied:
            return
        clipboard = QGuiApplication.clipboard()
        for mode in (QClipboard.Mode.Clipboard, QClipboard.Mode.Selection):
            text = clipboard.text(mode)
            if ZWSP in text and _lines_alike(text) == _lines_alike(copied):
                clipboard.setText(text.replace(ZWSP, ""), mode)

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
