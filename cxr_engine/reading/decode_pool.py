"""Decode many files at once: a pool of isolated decoding workers, and an ordered read-ahead.

``DecodePool`` holds one ``IsolatedReader`` (a worker process with a time and a memory limit,
``cxr_engine.reading.isolation``) per core; any thread may call it, and each call takes a free worker.
When callers wait for one, the most urgent goes first (``decode_priority``: the film on screen, then
thumbnails, then batch work such as classify-all), each level in arrival order.
``decode_in_order`` keeps a bounded number of files decoding ahead of the consumer and hands the
results back in input order, so a batch writes its rows in the order it was given and holds at
most ``max_pending`` decoded images in memory.
"""
from __future__ import annotations

import contextlib
import heapq
import itertools
import logging
import os
import threading
from collections import deque
from contextvars import ContextVar
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Callable, Iterable, Iterator

from ..pixels.image import CxrImage
from .isolation import DEFAULT_MEMORY_LIMIT_BYTES, DEFAULT_TIMEOUT_S, IsolatedReader, ReadTask
from .reduced_decode import FULL, DecodeRequest

logger = logging.getLogger(__name__)

#: Decode priorities, most urgent first: the film the reader looks at, the thumbnails, batch work.
VIEW, THUMBNAIL, BATCH = 0, 1, 2
_priority: ContextVar[int] = ContextVar("decode_priority", default=BATCH)


@contextlib.contextmanager
def decode_priority(level: int):
    """Within the block, this thread's decodes wait for a worker at ``level`` (``VIEW``, ``THUMBNAIL``
    or ``BATCH``, the default) instead of in plain arrival order."""
    token = _priority.set(level)
    try:
        yield
    finally:
        _priority.reset(token)


def available_cores() -> int:
    """The cores this process may run on (its CPU affinity where the OS tells it), at least 1."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


class DecodePool:
    """``workers`` isolated decoding workers (default: one per core) serving any thread.

    ``pool(path)`` / ``pool.read(path, request)`` decodes one file in a free worker (waiting for
    one when all are busy, the caller's ``decode_priority`` first) and raises ``ImageReadError`` naming the file and the reason, as
    ``IsolatedReader`` does. ``request`` defaults to the pool's own. Workers start on first use.
    Use as a context manager or call :meth:`close`.
    """

    def __init__(self, workers: int | None = None, request: DecodeRequest = FULL,
                 timeout_s: float = DEFAULT_TIMEOUT_S, memory_limit_bytes: int | None = DEFAULT_MEMORY_LIMIT_BYTES):
        self.workers = max(1, int(workers or available_cores()))
        self.request = request
        self._readers = [IsolatedReader(timeout_s, memory_limit_bytes, task=ReadTask(request.min_side))
                         for _ in range(self.workers)]
        self._free = list(self._readers)
        self._waiting: list[tuple[int, int]] = []  # (priority, arrival) of the callers waiting for a worker
        self._arrivals = itertools.count()
        self._changed = threading.Condition()

    def __call__(self, path: str | Path) -> CxrImage:
        return self.read(path)

    def __enter__(self) -> "DecodePool":
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    def read(self, path: str | Path, request: DecodeRequest | None = None) -> CxrImage:
        """``path`` decoded as ``request`` asks (default: the pool's request) in a free worker."""
        task = None if request is None or request == self.request else ReadTask(request.min_side)
        reader = self._take_worker()
        try:
            return reader.read(path, task)
        finally:
            with self._changed:
                self._free.append(reader)
                self._changed.notify_all()

    def _take_worker(self) -> IsolatedReader:
        """A free worker, once no more urgent (or earlier, equally urgent) caller is waiting for one."""
        ticket = (_priority.get(), next(self._arrivals))
        with self._changed:
            heapq.heappush(self._waiting, ticket)
            while not (self._free and self._waiting[0] == ticket):
                self._changed.wait()
            heapq.heappop(self._waiting)
            self._changed.notify_all()  # the next waiter may take another free worker
            return self._free.pop()

    def start(self) -> "DecodePool":
        """Start every worker now (each loads its decoders in parallel with the caller's work)."""
        for reader in self._readers:
            reader.start()
        return self

    @property
    def workers_started(self) -> int:
        """Worker processes started so far (a crashed or timed-out worker is replaced by a new one)."""
        return sum(reader.workers_started for reader in self._readers)

    def close(self) -> None:
        """Stop every worker (a later call starts them again)."""
        for reader in self._readers:
            reader.close()


def decode_in_order(paths: Iterable[Path], read: Callable[[Path], object], threads: int,
                    max_pending: int | None = None) -> Iterator[tuple[Path, object]]:
    """``(path, read(path))`` for each path in order, ``read`` running in ``threads`` threads at once.

    The second item is the exception instead when ``read`` raised one (any ``Exception``), so
    one bad file never stops the others. At most ``max_pending`` (default 2 × ``threads``) files
    are read ahead of the consumer. With ``threads`` ≤ 1 everything runs in the caller's thread.
    """
    if threads <= 1:
        for path in paths:
            yield path, _outcome(read, path)
        return
    limit = max(threads, max_pending or 2 * threads)
    executor = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="cxr-decode")
    pending: deque = deque()
    try:
        for path in paths:
            pending.append((path, executor.submit(_outcome, read, path)))
            if len(pending) >= limit:
                done_path, future = pending.popleft()
                yield done_path, future.result()
        while pending:
            done_path, future = pending.popleft()
            yield done_path, future.result()
    finally:
        executor.shutdown(wait=True, cancel_futures=True)


def _outcome(read: Callable[[Path], object], path: Path) -> object:
    try:
        return read(path)
    except Exception as exc:  # handed to the consumer, which reports it against the file
        return exc
