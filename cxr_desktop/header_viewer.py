"""The DICOM header viewer: the current image's full tag tree with search, in its own window.

It mirrors ``cxr_engine.reading.dicom_header`` rows (read in a worker, never in the GUI thread) and
follows the image on screen. It is a window of its own, never part of the scene, so nothing of
it reaches a rendering or an exported (de-identified or not) report.
"""
from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QBrush, QColor, QFont, QKeySequence, QShortcut
from PySide6.QtWidgets import (
    QAbstractItemView,
    QDialog,
    QHeaderView,
    QLabel,
    QLineEdit,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
)

from cxr_engine.reading.dicom_header import HeaderElement, filter_elements, read_header
from cxr_engine.outputs.undecodable import escape_undecodable

from .formatting import failure_reason
from .workers import Worker, create_worker, while_alive

COLUMNS = ("Tag", "Name", "VR", "Value")
TAG, NAME, VR, VALUE = range(len(COLUMNS))
PRIVATE_COLOUR = QColor(255, 170, 80)
PRIVATE_TIP = "Private data element (odd group, PS3.5 7.8): its meaning is defined by the manufacturer"


class HeaderViewer(QDialog):
    """A non-modal window listing every data element of one file; ``shown(path)`` once filled."""

    shown = Signal(object)  # Path whose header is listed
    failed = Signal(object, str)

    def __init__(self, parent=None):
        super().__init__(parent)
        self.setWindowTitle("DICOM header")
        self.setModal(False)
        self.resize(760, 640)
        self.path: Path | None = None
        self.elements: tuple[HeaderElement, ...] = ()
        self._worker: Worker | None = None
        layout = QVBoxLayout(self)
        self.search = QLineEdit()
        self.search.setPlaceholderText("Search tag, keyword, name or value (e.g. 0018,1164 or PixelSpacing)")
        self.search.setClearButtonEnabled(True)
        self.search.textChanged.connect(self._fill)
        layout.addWidget(self.search)
        self.status = QLabel()
        self.status.setWordWrap(True)
        layout.addWidget(self.status)
        self.tree = QTreeWidget()
        self.tree.setColumnCount(len(COLUMNS))
        self.tree.setHeaderLabels(COLUMNS)
        self.tree.setUniformRowHeights(True)
        self.tree.setAlternatingRowColors(True)
        self.tree.setTextElideMode(Qt.TextElideMode.ElideRight)
        self.tree.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        header = self.tree.header()
        header.setStretchLastSection(True)
        for column in (TAG, VR):
            header.setSectionResizeMode(column, QHeaderView.ResizeMode.ResizeToContents)
        header.resizeSection(NAME, 230)
        fixed = QFont("monospace")
        fixed.setStyleHint(QFont.StyleHint.TypeWriter)
        self._tag_font = fixed
        layout.addWidget(self.tree, 1)
        QShortcut(QKeySequence.StandardKey.Find, self, self.search.setFocus)

    # ------------------------------------------------------------------ loading
    def show_file(self, path: Path | None) -> None:
        """List the header of ``path`` (read in a worker); ``None`` clears the list."""
        self.path = Path(path) if path is not None else None
        self.elements = ()
        self.tree.clear()
        if self.path is None:
            self.status.setText("No image is shown.")
            return
        self.setWindowTitle(f"DICOM header — {escape_undecodable(self.path.name)}")
        self.status.setText("Reading…")
        worker = create_worker(read_header, self.path)
        worker.returned.connect(lambda elements, p=self.path: self._on_read(p, elements))
        worker.errored.connect(lambda exc, p=self.path: self._on_failed(p, exc))
        self._worker = worker
        worker.start()

    @while_alive
    def _on_read(self, path: Path, elements: tuple[HeaderElement, ...]) -> None:
        if path != self.path:
            return  # the reader moved on to another image
        self.elements = elements
        self._fill()
        self.shown.emit(path)

    @while_alive
    def _on_failed(self, path: Path, exc: Exception) -> None:
        if path != self.path:
            return
        reason = failure_reason(exc)
        self.status.setText(f"{escape_undecodable(path.name)}: {reason}")
        self.failed.emit(path, reason)

    # ------------------------------------------------------------------ the tree
    def _fill(self) -> None:
        text = self.search.text().strip()
        shown = filter_elements(self.elements, text)
        self.tree.clear()
        self.tree.addTopLevelItems([self._item(element) for element in shown])
        if text:
            self.tree.expandAll()
        total = _count(self.elements)
        matches = sum(1 for element in _walk(shown) if element.matches(text)) if text else total
        private = sum(1 for element in _walk(self.elements) if element.private)
        summary = f"{total} data elements ({private} private)"
        self.status.setText(f"{matches} of {summary} match “{text}”" if text else summary)

    def _item(self, element: HeaderElement) -> QTreeWidgetItem:
        item = QTreeWidgetItem([element.tag, element.name, element.vr, element.value])
        item.setFont(TAG, self._tag_font)
        item.setToolTip(NAME, element.keyword or element.name)
        item.setToolTip(VALUE, element.value)
        if element.private:
            item.setText(NAME, f"{element.name} (private)")
            for column in range(len(COLUMNS)):
                item.setForeground(column, QBrush(PRIVATE_COLOUR))
                item.setToolTip(column, PRIVATE_TIP)
        for sequence_item in element.items:
            child = QTreeWidgetItem([f"Item {sequence_item.number}", "", "", f"{len(sequence_item.elements)} elements"])
            child.addChildren([self._item(inner) for inner in sequence_item.elements])
            item.addChild(child)
        return item

    def visible_tags(self) -> list[str]:
        """Tags of the rows now listed, depth first (for tests and the status line)."""
        found = []
        stack = [self.tree.topLevelItem(i) for i in reversed(range(self.tree.topLevelItemCount()))]
        while stack:
            item = stack.pop()
            if item.text(TAG).startswith("("):
                found.append(item.text(TAG))
            stack.extend(item.child(i) for i in reversed(range(item.childCount())))
        return found


def _walk(elements: tuple[HeaderElement, ...]):
    for element in elements:
        yield element
        for item in element.items:
            yield from _walk(item.elements)


def _count(elements: tuple[HeaderElement, ...]) -> int:
    return sum(1 for _ in _walk(elements))
