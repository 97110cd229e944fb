"""Run long work off the GUI thread, reporting through signals (after superqt's thread workers).

A worker runs a function, or a generator whose yields are progress and cancellation points, in
a ``QThreadPool``. Its signals say ``started``, ``yielded(value)``, ``returned(value)``,
``errored(exception)`` and ``finished``; they arrive queued on the GUI thread, so handlers may
touch widgets. An exception never dies in the thread: it becomes ``errored``.
"""
from __future__ import annotations

import functools
import inspect
import logging
from typing import Any, Callable

import shiboken6
from PySide6.QtCore import QObject, QRunnable, QThreadPool, Signal

logger = logging.getLogger(__name__)

# Workers are kept alive here until they finish: the pool does not own Python objects.
_ACTIVE: set["Worker"] = set()


class WorkerSignals(QObject):
    """The signals of one worker (a QRunnable cannot have its own)."""

    started = Signal()
    progress = Signal(object)
    yielded = Signal(object)
    returned = Signal(object)
    errored = Signal(object)
    aborted = Signal()
    finished = Signal()


class Worker(QRunnable):
    """Runs ``func(*args, **kwargs)``; a generator function's yields are emitted as ``yielded``.

    ``quit()`` asks a generator worker to stop at its next yield (it then emits ``aborted``
    instead of ``returned``); a plain function can poll ``abort_requested`` itself.
    """

    def __init__(self, func: Callable[..., Any], *args, **kwargs):
        super().__init__()
        self.setAutoDelete(False)
        self._func, self._args, self._kwargs = func, args, kwargs
        self.signals = WorkerSignals()
        self.abort_requested = False
        self.is_running = False
        self.done = False  # set on the GUI thread once ``finished`` was delivered there
        self._when_finished: list[Callable[[], None]] = []
        self.name = getattr(func, "__name__", "worker")

    # Signal shortcuts so callers write ``worker.returned.connect(...)``.
    @property
    def started(self):
        return self.signals.started

    @property
    def progress(self):
        return self.signals.progress

    @property
    def yielded(self):
        return self.signals.yielded

    @property
    def returned(self):
        return self.signals.returned

    @property
    def errored(self):
        return self.signals.errored

    @property
    def aborted(self):
        return self.signals.aborted

    @property
    def finished(self):
        return self.signals.finished

    def quit(self) -> None:
        """Ask the worker to stop at its next chance."""
        self.abort_requested = True

    def start(self, pool: QThreadPool | None = None) -> "Worker":
        """Queue the worker in ``pool`` (default: the global pool)."""
        _ACTIVE.add(self)
        self.signals.finished.connect(self._on_finished)
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

    def _on_finished(self) -> None:  # on the GUI thread
        _ACTIVE.discard(self)
        self.done = True
        callbacks, self._when_finished = self._when_finished, []
        for callback in callbacks:
            callback()

    def emit(self, name: str, *args) -> None:
        """Emit the signal ``name`` unless its object is gone: at exit, Qt may delete the signals
        of a worker still finishing (the window waited for it, but not forever), and its result
        has no receiver left. Emitting then would raise "Signal source has been deleted"."""
        try:
            getattr(self.signals, name).emit(*args)
        except RuntimeError:
            if shiboken6.isValid(self.signals):
                raise
            self.abort_requested = True  # nobody listens: stop at the next chance
            logger.debug("worker %s: %s not delivered, its signals are gone", self.name, name)

    def run(self) -> None:  # runs in the pool thread
        self.is_running = True
        self.emit("started")
        try:
            if inspect.isgeneratorfunction(self._func):
                self._run_generator()
            else:
                self.emit("returned", self._func(*self._args, **self._kwargs))
        except Exception as exc:
            logger.debug("worker %s failed", self.name, exc_info=True)
            self.emit("errored", exc)
        finally:
            self.is_running = False
            self.emit("finished")

    def _run_generator(self) -> None:
        gen = self._func(*self._args, **self._kwargs)
        while True:
            if self.abort_requested:
                gen.close()
                self.emit("aborted")
                return
            try:
                value = next(gen)
            except StopIteration as stop:
                self.emit("returned", stop.value)
                return
            self.emit("yielded", value)


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
    """A ``Worker`` for ``func``; started at once with ``_start=True`` (connect signals first otherwise).

    With ``_progress=True`` ``func`` also receives ``progress(value)``, which emits the worker's
    ``progress`` signal, and ``should_cancel()``, true once ``quit()`` was called: the shape of
    callback APIs such as ``cxr_engine.reading.scanning.scan``.
    """
    worker = Worker(func, *args, **kwargs)
    if _progress:
        worker._kwargs.update(progress=lambda value: worker.emit("progress", value),
                              should_cancel=lambda: worker.abort_requested)
    if _start:
        worker.start(_pool)
    return worker


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
