"""Run long work off the GUI thread, reporting through signals: superqt's thread workers, started at
once in the global ``QThreadPool`` and kept alive until they finish. superqt is imported with the
first worker (importing it loads all its widgets, a few tenths of a second), after the window shows.

``create_worker(func, ...)`` gives superqt's ``GeneratorWorker`` for a generator function (its yields
are progress and cancellation points: ``quit()`` stops it at the next one, which emits ``aborted``
instead of ``returned``) and its ``FunctionWorker`` otherwise (``quit()`` only asks: a function given
``_progress=True`` polls ``should_cancel()`` and still returns what it has, e.g. a cancelled scan's
partial result). Signals: ``started``, ``progress(value)``, ``yielded(value)``, ``returned(value)``,
``errored(exception)``, ``aborted``, ``finished``; they arrive queued on the GUI thread, so handlers
may touch widgets. An exception never dies in the thread: it becomes ``errored``.
"""
from __future__ import annotations

import functools
import inspect
import logging
import os
from typing import Any, Callable

import shiboken6
from PySide6.QtCore import QObject, QThreadPool, QTimer, Signal

logger = logging.getLogger(__name__)

# Workers are kept alive here until they finish: the pool does not own Python objects.
_ACTIVE: set["Worker"] = set()
#: How long after a worker's last signal it is let go (run() returns within microseconds of it).
RELEASE_DELAY_MS = 100


class WorkerSignals(QObject):
    """The signals superqt's workers emit, and ``progress`` for callback-style functions."""

    started = Signal()
    finished = Signal()
    _finished = Signal(object)
    returned = Signal(object)
    errored = Signal(object)
    warned = Signal(tuple)
    yielded = Signal(object)
    paused = Signal()
    resumed = Signal()
    aborted = Signal()
    progress = Signal(object)


class Worker:
    """What the app adds to superqt's ``GeneratorWorker`` and ``FunctionWorker`` (every worker here is
    both one of those and a ``Worker``): a start in the pool now (not at the next event loop turn, so
    ``quit_all`` at exit finds every worker), ``when_finished``, the thread's errors in the log, and a
    ``run`` that leaves the process-wide warnings filters alone."""

    def _set_up(self, func: Callable[..., Any]) -> None:
        self.signals = WorkerSignals()
        self.name = getattr(func, "__name__", "worker")
        self.done = False  # set on the GUI thread once ``finished`` was delivered there
        self._when_finished: list[Callable[[], None]] = []
        self.signals.finished.connect(self._on_finished)
        self.signals._finished.connect(self._on_run_ended)
        # Python owns the runnable: the pool must not delete it (and its signals) behind the wrapper's back.
        self.setAutoDelete(False)
        self.signals.errored.connect(lambda exc: logger.debug("worker %s failed", self.name, exc_info=exc))

    def start(self, pool: QThreadPool | None = None) -> "Worker":
        """Queue the worker in ``pool`` (default: the global pool)."""
        _ACTIVE.add(self)
        (pool or QThreadPool.globalInstance()).start(self)
        return self

    def when_finished(self, callback: Callable[[], None]) -> None:
        """Call ``callback`` on the GUI thread once the worker has finished (now, if it has).

        Unlike connecting to ``finished`` after ``start()``, this cannot miss a worker that
        finished a moment ago: a queued signal reaches only the connections made before it fired.
        """
        if self.done:
            callback()
        else:
            self._when_finished.append(callback)

    def run(self) -> None:
        """superqt's ``WorkerBase.run`` without its ``warnings.catch_warnings()``: that context manager is
        not thread-safe (Python's ``warnings`` docs), and with two workers running at once it can leave
        ``warnings.showwarning`` pointing at a finished worker's signals, so a later warning on any thread
        emits on a deleted QObject and the process crashes. Warnings stay with the ``logging`` setup."""
        self.started.emit()
        self._running = True
        try:
            result = self.work()
            if isinstance(result, Exception):
                raise result
            if not self.abort_requested:
                self.returned.emit(result)
        except Exception as exc:  # noqa: BLE001 - every failure becomes ``errored``, never a dead thread
            self.errored.emit(exc)
        self._running = False
        self.finished.emit()
        self._finished.emit(self)

    def _on_run_ended(self, _worker) -> None:  # on the GUI thread, after run()'s last emit
        # Released a moment later, so that run() has returned and the last reference to the worker (and
        # its signals QObject, which belongs to the GUI thread) is dropped here, not in the pool's thread.
        QTimer.singleShot(RELEASE_DELAY_MS, lambda: _ACTIVE.discard(self))

    def _on_finished(self) -> None:  # on the GUI thread
        self.done = True
        callbacks, self._when_finished = self._when_finished, []
        for callback in callbacks:
            callback()


@functools.cache
def _worker_classes() -> tuple[type, type]:
    """The app's generator and function workers, built on superqt's on first use."""
    # superqt reaches Qt through qtpy, which would take PyQt5 first were it installed too.
    os.environ.setdefault("QT_API", "pyside6")
    from superqt.utils import FunctionWorker, GeneratorWorker

    class GeneratorJob(Worker, GeneratorWorker):
        def __init__(self, func: Callable[..., Any], *args, **kwargs):
            super().__init__(func, *args, **kwargs)
            self._set_up(func)

    class FunctionJob(Worker, FunctionWorker):
        """``quit()`` sets ``cancel_requested``."""

        def __init__(self, func: Callable[..., Any], *args, **kwargs):
            super().__init__(func, *args, **kwargs)
            self._set_up(func)
            self.cancel_requested = False

        def quit(self) -> None:
            # Not superqt's abort: that would drop the value a cancelled function still returns.
            self.cancel_requested = True

    return GeneratorJob, FunctionJob


def while_alive(method):
    """Decorate a QObject method that handles worker signals: it is skipped once the object is
    closing (``_closing`` set) or deleted, since queued results can arrive after a window closed."""

    @functools.wraps(method)
    def wrapper(self, *args, **kwargs):
        if getattr(self, "_closing", False) or not shiboken6.isValid(self):
            return None
        return method(self, *args, **kwargs)

    return wrapper


def create_worker(func: Callable[..., Any], *args, _start: bool = False, _pool: QThreadPool | None = None,
                  _progress: bool = False, **kwargs) -> Worker:
    """A worker for ``func``; started at once with ``_start=True`` (connect signals first otherwise).

    With ``_progress=True`` ``func`` also receives ``progress(value)``, which emits the worker's
    ``progress`` signal, and ``should_cancel()``, true once ``quit()`` was called: the shape of
    callback APIs such as ``cxr_engine.reading.scanning.scan``.
    """
    if _progress:
        box: list[Worker] = []
        kwargs.update(progress=lambda value: box[0].signals.progress.emit(value),
                      should_cancel=lambda: bool(box) and _cancelled(box[0]))
    generator_job, function_job = _worker_classes()
    worker = (generator_job if inspect.isgeneratorfunction(func) else function_job)(func, *args, **kwargs)
    if _progress:
        box.append(worker)
    if _start:
        worker.start(_pool)
    return worker


def _cancelled(worker: Worker) -> bool:
    return worker.abort_requested or getattr(worker, "cancel_requested", False)


def active_workers() -> list[Worker]:
    """Workers queued or running now."""
    return list(_ACTIVE)


def quit_all(timeout_ms: int = 10_000) -> bool:
    """Ask every worker to stop and wait for the global pool; True when all finished in time."""
    pool = QThreadPool.globalInstance()
    for worker in list(_ACTIVE):
        worker.quit()
        if pool.tryTake(worker):  # queued, never started: it will emit nothing
            _ACTIVE.discard(worker)
    return pool.waitForDone(timeout_ms)
