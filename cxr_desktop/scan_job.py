"""Worker function that scans what the reader opened (folders, DICOMDIRs, DICOM, PNG and JPEG files). No Qt."""
from __future__ import annotations

import time
from pathlib import Path
from typing import Callable

from cxr_engine import ScanResult, find_images

#: Progress is reported at most this often, so thousands of files do not flood the GUI.
PROGRESS_INTERVAL_S = 0.1


def scan_paths(paths: list[Path], progress: Callable[[object], None], should_cancel: Callable[[], bool]) -> list[ScanResult]:
    """Scan each path in turn (``cxr_engine.find_images``): one ``ScanResult`` per path; ``progress``
    receives ``(files done, total or None, current name)``."""
    last = 0.0

    def report(done: int, total: int | None, path: Path) -> None:
        nonlocal last
        now = time.monotonic()
        if now - last >= PROGRESS_INTERVAL_S or (total is not None and done >= total):
            last = now
            progress((done, total, Path(path).name))

    missing = [path for path in paths if not Path(path).exists()]
    if missing:
        raise FileNotFoundError(f"{missing[0]}: no such file or folder")
    # The engine's one discovery (PNG/JPEG included): the app opens what cxr-classify reads.
    return find_images(paths, progress=report, should_cancel=should_cancel).scans
