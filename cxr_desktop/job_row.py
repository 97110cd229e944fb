"""One row for a long job: its status text, a progress bar, Cancel and the job's own buttons.

Used by the send dialog, the Query/Retrieve panel and the status bar's ``JobProgress``; each owner
starts its workers and connects Cancel and its buttons, the row only shows where the job is."""
from __future__ import annotations

from collections.abc import Sequence

from PySide6.QtCore import Signal
from PySide6.QtWidgets import QHBoxLayout, QLabel, QProgressBar, QPushButton, QVBoxLayout, QWidget

#: The progress bar's widest, beside a status text that takes the rest of the row.
BAR_MAX_WIDTH = 220


class JobRow(QWidget):
    """``status`` (a label), ``progress`` (a bar, hidden while no job runs), ``cancel_button``, then ``actions``.

    ``status_above`` puts the status text on a line of its own above the row (for long messages,
    such as the list of written files) and lets the bar fill the row; ``compact`` is the status
    bar's strip: one unwrapped line, a short bar and button. ``statusChanged(text)`` follows
    ``set_status``.
    """

    statusChanged = Signal(str)

    def __init__(self, actions: Sequence[QPushButton] = (), *, status_above: bool = False, compact: bool = False,
                 parent: QWidget | None = None):
        super().__init__(parent)
        self.status = QLabel()
        self.status.setWordWrap(not compact)
        self.progress = QProgressBar()
        self.progress.hide()
        self.cancel_button = QPushButton("Cancel")
        if compact:
            self.progress.setMaximumWidth(180)
            self.progress.setMaximumHeight(16)
            self.cancel_button.setMaximumHeight(20)
        elif not status_above:
            self.progress.setMaximumWidth(BAR_MAX_WIDTH)
        row = QHBoxLayout()
        row.setContentsMargins(0, 0, 0, 0)
        if not status_above:
            row.addWidget(self.status, 0 if compact else 1)
        row.addWidget(self.progress, 1 if status_above else 0)
        row.addWidget(self.cancel_button)
        for button in actions:
            row.addWidget(button)
        column = QVBoxLayout(self)
        column.setContentsMargins(0, 0, 0, 0)
        if status_above:
            column.addWidget(self.status)
        column.addLayout(row)

    def set_status(self, text: str) -> None:
        self.status.setText(text)
        self.statusChanged.emit(text)

    def show_busy(self) -> None:
        """Show the bar moving, without a count, until ``set_progress`` gives one."""
        self.progress.setRange(0, 0)
        self.progress.show()

    def set_progress(self, done: int, total: int | None) -> None:
        """``done`` of ``total`` steps; a ``total`` of 0 or None keeps the bar as it is."""
        if total:
            self.progress.setRange(0, total)
            self.progress.setValue(done)

    def hide_progress(self) -> None:
        self.progress.hide()
