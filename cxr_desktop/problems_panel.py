"""A list of files left out (unreadable, copies of an image listed once) and of the tree's images that could not
be read or classified, each with its reason in words.

Identical copies of an image are one row per group (the tooltip names the files): they are not errors, and
a folder of 200 copies made 199 rows. Different images that claim one SOP Instance UID are one row per UID:
both are kept, but a report or a PACS may take one for the other."""
from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import QAbstractItemView, QApplication, QHeaderView, QTableWidget, QTableWidgetItem

from cxr_engine.outputs.undecodable import escape_undecodable
from cxr_engine.reading.copies import copy_reason
from cxr_engine.reading.uid_clashes import clash_note


#: The file column is sized to its contents while the list is shorter than this.
RESIZE_ROWS = 200
#: Paths named in a copy group's tooltip; the rest are counted (a tooltip taller than the screen is cut).
TOOLTIP_PATHS = 30
PATH_ROLE = Qt.ItemDataRole.UserRole
#: Every file a row is about (a copy group's copies, the images that share a UID), for "Copy file paths".
PATHS_ROLE = Qt.ItemDataRole.UserRole + 1


class ProblemsPanel(QTableWidget):
    """One row per file and reason, one per group of identical copies and one per SOP Instance UID that
    different images claim; ``countChanged`` (files with a problem, in the tree or not), ``copiesChanged``
    (identical copies left out) and ``clashesChanged`` (UIDs claimed by different images) tell the status bar.

    ``in_tree(path) -> bool`` says whether a file is one of the study tree's images: its problem (pixels that
    cannot be decoded, a film not classified) is then counted by ``unclassified_count``, never as a file left
    out (``problem_count``), so the tree's images and the files left out add up to the files found. Without
    it, every file with a problem is counted as left out."""

    countChanged = Signal(int)
    copiesChanged = Signal(int)
    clashesChanged = Signal(int)

    def __init__(self, parent=None, in_tree: Callable[[Path], bool] | None = None):
        super().__init__(0, 2, parent)
        self._in_tree = in_tree or (lambda _path: False)
        self.setHorizontalHeaderLabels(["File", "Problem"])
        self.horizontalHeader().setSectionResizeMode(0, QHeaderView.ResizeMode.Interactive)
        self.horizontalHeader().setStretchLastSection(True)
        self.verticalHeader().setVisible(False)
        self.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.setWordWrap(False)
        copy = QAction("Copy file paths", self)
        copy.setShortcut(QKeySequence.StandardKey.Copy)
        copy.setShortcutContext(Qt.ShortcutContext.WidgetShortcut)
        copy.triggered.connect(self.copy_paths)
        self.addAction(copy)
        self.setContextMenuPolicy(Qt.ContextMenuPolicy.ActionsContextMenu)
        self._seen: set[tuple[str, str]] = set()
        self._problem_files: set[str] = set()  # one file may have several reasons (the scan's, the PDF's)
        self._copies = 0
        self._clashes = 0

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
        self._add_rows([(path, escape_undecodable(Path(path).name or str(path)), reason, escape_undecodable(path),
                         (path,)) for path, reason in new])
        self._problem_files.update(str(path) for path, _ in new)
        self.countChanged.emit(len(self._problem_files))

    def add_copies(self, groups) -> None:
        """Record ``(kept, copies)`` groups, an image listed once as ``kept`` and its identical ``copies``
        left out (``cxr_engine.reading.copies``): one row each, its tooltip naming the copies."""
        rows = []
        for kept, copies in groups:
            key = (str(kept), "copies")
            if copies and key not in self._seen:
                self._seen.add(key)
                what = "1 identical copy" if len(copies) == 1 else f"{len(copies)} identical copies"
                rows.append((kept, f"{what} of {escape_undecodable(Path(kept).name)}", copy_reason(Path(kept), len(copies)),
                             _path_list(copies), copies))
                self._copies += len(copies)
        if rows:
            self._add_rows(rows)
            self.copiesChanged.emit(self._copies)

    def add_uid_clashes(self, clashes: dict) -> None:
        """Record ``{uid: paths}``, different images that claim one SOP Instance UID
        (``cxr_engine.reading.uid_clashes``): one row per UID, every image kept."""
        rows = []
        for uid, paths in clashes.items():
            key = (uid, "uid")
            if key not in self._seen:
                self._seen.add(key)
                rows.append((paths[0], ", ".join(Path(path).name for path in paths), clash_note(uid, paths),
                             _path_list(paths), paths))
                self._clashes += 1
        if rows:
            self._add_rows(rows)
            self.clashesChanged.emit(self._clashes)

    def _add_rows(self, rows) -> None:
        """``(path, file text, reason, file tooltip, paths)`` rows at the end, one resize for all."""
        first = self.rowCount()
        self.setRowCount(first + len(rows))
        for row, (path, text, reason, tip, paths) in enumerate(rows, start=first):
            name = QTableWidgetItem(text)
            # Path objects, kept by Qt as they are: a str would become a QString, which drops the bytes of a
            # file name that are not UTF-8 (the path read back named a file that does not exist).
            name.setData(PATH_ROLE, Path(path))
            name.setData(PATHS_ROLE, [Path(each) for each in paths])
            name.setToolTip(tip)
            self.setItem(row, 0, name)
            detail = QTableWidgetItem(reason)
            detail.setToolTip(reason if tip == escape_undecodable(path) else f"{reason}\n\n{tip}")
            self.setItem(row, 1, detail)
        if first < RESIZE_ROWS:  # the width settles after the first rows; measuring thousands costs seconds
            self.resizeColumnToContents(0)

    def selected_paths(self) -> list[str]:
        """Every file the selected rows are about, in row order (a copy group: all its copies)."""
        rows = sorted({index.row() for index in self.selectedIndexes()})
        return [str(path) for row in rows for path in self.item(row, 0).data(PATHS_ROLE)]

    def copy_paths(self) -> None:
        """Put the selected rows' file paths on the clipboard, one a line (the tooltip names only the first)."""
        paths = self.selected_paths()
        if paths:  # the clipboard holds text: a file name's bytes that are not UTF-8 as \xNN
            QApplication.clipboard().setText("\n".join(map(escape_undecodable, paths)))

    def problems(self) -> list[tuple[str, str]]:
        """(path, reason) pairs in the order they were reported (for a copy group, the file listed)."""
        return [(str(self.item(r, 0).data(PATH_ROLE)), self.item(r, 1).text()) for r in range(self.rowCount())]

    def problem_count(self) -> int:
        """Files left out for a problem, each once whatever the number of its reasons (not counting identical
        copies, nor the tree's images that could not be read or classified: ``unclassified_count``)."""
        return len(self._problem_files) - self.unclassified_count()

    def unclassified_count(self) -> int:
        """The study tree's images with a problem (pixels that cannot be decoded, not classified, left out of
        a PDF), each once: they are in the tree, not left out."""
        return sum(1 for path in self._problem_files if self._in_tree(Path(path)))

    def copy_count(self) -> int:
        """Identical copies left out, in all groups."""
        return self._copies

    def clash_count(self) -> int:
        """SOP Instance UIDs that different images claim."""
        return self._clashes

    def clear_problems(self) -> None:
        self.setRowCount(0)
        self._seen.clear()
        self._copies = self._clashes = 0
        self._problem_files.clear()
        self.countChanged.emit(0)
        self.copiesChanged.emit(0)
        self.clashesChanged.emit(0)


def _path_list(paths) -> str:
    named = [str(path) for path in paths[:TOOLTIP_PATHS]]
    if len(paths) > TOOLTIP_PATHS:
        named.append(f"… and {len(paths) - TOOLTIP_PATHS} more (right-click: Copy file paths)")
    return "\n".join(named)
