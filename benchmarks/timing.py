"""The one way the benchmarks time a call: the median over repeated calls, after warm-up calls that
pay for imports, caches and lazy loading."""
from __future__ import annotations

import statistics
import time
from typing import Callable


def median_ms(fn: Callable[[], object], repeats: int, *, warmups: int = 1,
              clock: Callable[[], float] = time.perf_counter) -> float:
    """Median time of ``fn()`` in milliseconds by ``clock`` (wall time by default; ``time.process_time``
    for this process's CPU time) over ``repeats`` calls, after ``warmups`` untimed calls."""
    for _ in range(warmups):
        fn()
    samples = []
    for _ in range(repeats):
        start = clock()
        fn()
        samples.append((clock() - start) * 1000)
    return statistics.median(samples)
