"""A status-bar strip showing one long job (scan, classify all, export) with a Cancel button."""
from __future__ import annotations

from .job_row import JobRow
from .workers import Worker, while_alive


class JobProgress(JobRow):
    """Mirrors the most recent job given to ``track``; hidden when nothing runs."""

    def __init__(self, parent=None):
        super().__init__(compact=True, parent=parent)
        self.cancel_button.clicked.connect(self._cancel)
        self._worker: Worker | None = None
        self.hide()

    def track(self, title: str, worker: Worker) -> None:
        """Show ``title`` until ``worker`` finishes; Cancel asks it to quit."""
        self._worker = worker
        self._title = title
        self.set_status(title)
        self.show_busy()  # until the first count arrives
        self.cancel_button.setEnabled(True)
        self.show()
        worker.when_finished(lambda: self._finished(worker))

    @while_alive
    def set_progress(self, done: int, total: int | None, detail: str = "") -> None:
        super().set_progress(done, total)
        self.set_status(f"{self._title} {done}/{total}" if total else f"{self._title} {done}")
        self.status.setToolTip(detail)

    def _cancel(self) -> None:
        if self._worker is not None:
            self._worker.quit()
            self.cancel_button.setEnabled(False)
            self.set_status(f"{self._title}: cancelling…")

    @while_alive
    def _finished(self, worker: Worker) -> None:
        if worker is self._worker:
            self._worker = None
            self.hide()

    @property
    def busy(self) -> bool:
        return self._worker is not None
