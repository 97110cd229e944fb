"""A status-bar strip showing one long job (scan, classify all, export) with a Cancel button."""
from __future__ import annotations

from PySide6.QtWidgets import QHBoxLayout, QLabel, QProgressBar, QPushButton, QWidget

from .workers import Worker, while_alive


class JobProgress(QWidget):
    """Mirrors the most recent job given to ``track``; hidden when nothing runs."""

    def __init__(self, parent=None):
        super().__init__(parent)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        self.label = QLabel()
        self.bar = QProgressBar()
        self.bar.setMaximumWidth(180)
        self.bar.setMaximumHeight(16)
        self.cancel = QPushButton("Cancel")
        self.cancel.setMaximumHeight(20)
        self.cancel.clicked.connect(self._cancel)
        for widget in (self.label, self.bar, self.cancel):
            layout.addWidget(widget)
        self._worker: Worker | None = None
        self.hide()

    def track(self, title: str, worker: Worker) -> None:
        """Show ``title`` until ``worker`` finishes; Cancel asks it to quit."""
        self._worker = worker
        self._title = title
        self.label.setText(title)
        self.bar.setRange(0, 0)  # busy until the first count arrives
        self.cancel.setEnabled(True)
        self.show()
        worker.when_finished(lambda: self._finished(worker))

    @while_alive
    def set_progress(self, done: int, total: int | None, detail: str = "") -> None:
        if total:
            self.bar.setRange(0, total)
            self.bar.setValue(done)
        self.label.setText(f"{self._title} {done}/{total}" if total else f"{self._title} {done}")
        self.label.setToolTip(detail)

    def _cancel(self) -> None:
        if self._worker is not None:
            self._worker.quit()
            self.cancel.setEnabled(False)
            self.label.setText(f"{self._title}: cancelling…")

    @while_alive
    def _finished(self, worker: Worker) -> None:
        if worker is self._worker:
            self._worker = None
            self.hide()

    @property
    def busy(self) -> bool:
        return self._worker is not None
