"""A list of files left out (unreadable, not classified, copies of an image listed once), each with its reason in words."""
from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Signal
from PySide6.QtWidgets import QAbstractItemView, QHeaderView, QTableWidget, QTableWidgetItem


#: The file column is sized to its contents while the list is shorter than this.
RESIZE_ROWS = 200


class ProblemsPanel(QTableWidget):
    """One row per file and reason; ``countChanged`` tells the status bar."""

    countChanged = Signal(int)

    def __init__(self, parent=None):
        super().__init__(0, 2, parent)
        self.setHorizontalHeaderLabels(["File", "Problem"])
        self.horizontalHeader().setSectionResizeMode(0, QHeaderView.ResizeMode.Interactive)
        self.horizontalHeader().setStretchLastSection(True)
        self.verticalHeader().setVisible(False)
        self.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.setWordWrap(False)
        self._seen: set[tuple[str, str]] = set()

    def add(self, path: Path | str, reason: str) -> None:
        """Record one problem (the same file and reason only once)."""
        self.add_many([(path, reason)])

    def add_many(self, problems) -> None:
        """Record several ``(path, reason)`` problems with one resize and one ``countChanged``.

        A scan of a large folder can report hundreds of files; sizing the column per row made
        that quadratic (1.3 s of frozen GUI for 677 problems).
        """
        new = []
        for path, reason in problems:
            key = (str(path), reason)
            if key not in self._seen:
                self._seen.add(key)
                new.append((path, reason))
        if not new:
            return
        first = self.rowCount()
        self.setRowCount(first + len(new))
        for row, (path, reason) in enumerate(new, start=first):
            name = QTableWidgetItem(Path(path).name or str(path))
            name.setToolTip(str(path))
            self.setItem(row, 0, name)
            detail = QTableWidgetItem(reason)
            detail.setToolTip(reason)
            self.setItem(row, 1, detail)
        if first < RESIZE_ROWS:  # the width settles after the first rows; measuring thousands costs seconds
            self.resizeColumnToContents(0)
        self.countChanged.emit(self.rowCount())

    def problems(self) -> list[tuple[str, str]]:
        """(path, reason) pairs in the order they were reported."""
        return [(self.item(r, 0).toolTip(), self.item(r, 1).text()) for r in range(self.rowCount())]

    def clear_problems(self) -> None:
        self.setRowCount(0)
        self._seen.clear()
        self.countChanged.emit(0)
