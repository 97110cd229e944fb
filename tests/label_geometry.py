"""Whether a word-wrapped ``QLabel`` shows its whole text: shared by the layout tests."""
from __future__ import annotations

from PySide6.QtCore import QRect, Qt
from PySide6.QtWidgets import QLabel, QWidget


def shown_text(label: QLabel) -> str:
    """The text Qt lays out: a ``WrappedLabel``'s with its break opportunities in long tokens."""
    return QLabel.text(label)


def label_problems(label: QLabel, window: QWidget, *, visible: bool = True) -> list[str]:
    """Why ``label`` does not show its whole text (``[]``: it does): the text's bounding rectangle, wrapped
    at the label's width, must lie inside the label's contents rectangle and the label's height for its
    width must fit its height; with ``visible``, no parent (a scroll area, a dock) may cut the label off
    and it must lie inside ``window``."""
    problems = []
    inside = label.contentsRect()
    # Laid out from the top of a tall rectangle: its height is the text's, however the label aligns it.
    horizontal = label.alignment() & Qt.AlignmentFlag.AlignHorizontal_Mask
    flags = int(horizontal | Qt.AlignmentFlag.AlignTop) | (int(Qt.TextFlag.TextWordWrap) if label.wordWrap() else 0)
    text = label.fontMetrics().boundingRect(QRect(inside.left(), inside.top(), inside.width(), 100_000), flags,
                                            shown_text(label))
    name = label.text()[:30]
    if not inside.contains(text):
        problems.append(f"{name!r}: text {text} outside the label's {inside}")
    if label.wordWrap() and label.heightForWidth(label.width()) > label.height():
        problems.append(f"{name!r}: needs {label.heightForWidth(label.width())} px, has {label.height()}")
    if visible:
        if label.visibleRegion().boundingRect() != label.rect():
            problems.append(f"{name!r}: cut by a parent to {label.visibleRegion().boundingRect()}")
        corner = label.mapTo(window, label.rect().topLeft())
        if not window.rect().contains(QRect(corner, label.size())):
            problems.append(f"{name!r}: outside the window")
    return problems


def clipped_labels(container: QWidget, window: QWidget) -> list[str]:
    """:func:`label_problems` of every visible word-wrapped label under ``container``."""
    return [problem for label in container.findChildren(QLabel) if label.isVisible() and label.wordWrap()
            for problem in label_problems(label, window)]
