"""Test helper: run one function in several threads at once and collect what happened."""
from __future__ import annotations

import threading
from typing import Callable


def run_in_threads(work: Callable[[], object], count: int = 4) -> tuple[list, list[Exception]]:
    """``work()`` in ``count`` threads started together: (its results, the exceptions it raised)."""
    results, errors = [], []

    def run():
        try:
            results.append(work())
        except Exception as exc:  # collected for the caller to assert on
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results, errors
