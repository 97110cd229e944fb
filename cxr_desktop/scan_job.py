"""Worker function that scans what the reader opened (folders, DICOMDIRs, DICOM, PNG and JPEG files). No Qt."""
from __future__ import annotations

import time
from pathlib import Path
from typing import Callable

from cxr_engine.reading.scanning import ScanResult, scan

#: Progress is reported at most this often, so thousands of files do not flood the GUI.
PROGRESS_INTERVAL_S = 0.1


def scan_paths(paths: list[Path], progress: Callable[[object], None], should_cancel: Callable[[], bool]) -> list[ScanResult]:
    """Scan each path in turn; ``progress`` receives ``(files done, total or None, current name)``."""
    results = []
    last = 0.0

    def report(done: int, total: int | None, path: Path) -> None:
        nonlocal last
        now = time.monotonic()
        if now - last >= PROGRESS_INTERVAL_S or (total is not None and done >= total):
            last = now
            progress((done, total, Path(path).name))

    for path in paths:
        if should_cancel():
            break
        # PNG/JPEG too: the app opens what cxr-classify reads (the same scan finds its files).
        results.append(scan(path, progress=report, should_cancel=should_cancel, include_raster=True))
    return results
