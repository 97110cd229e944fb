"""Worker tasks for the isolation tests: each misbehaves the way a broken native decoder might.

They live in an importable module because the spawned worker imports its task by name.
"""
from __future__ import annotations

import os
import signal
import time

import numpy as np


def segfault(path: str) -> None:
    os.kill(os.getpid(), signal.SIGSEGV)


def hang(path: str) -> None:
    time.sleep(3600)


def allocate_too_much(path: str) -> None:
    np.ones(64 * 2**30, dtype=np.uint8)


def raise_unexpected(path: str) -> None:
    raise RuntimeError("internal decoder state corrupt")


def worker_pid(path: str) -> None:
    """Fails on purpose with the worker's pid, so a test can see which process served it."""
    from cxr_engine.errors import ImageReadError

    raise ImageReadError(path, str(os.getpid()))
