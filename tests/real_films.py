"""The real DICOM films of ``../shared/data/dicom_rsna`` that a test copies into a study folder of its own."""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest


def rsna_film(shared_data: Path, name: str, what: str = "") -> Path:
    """``dicom_rsna/name`` in the shared data; the test is skipped, naming the file (and ``what`` it is), without it."""
    source = shared_data / "dicom_rsna" / name
    if not source.exists():
        pytest.skip(f"{source}{f' ({what})' if what else ''} not found")
    return source


def rsna_study(shared_data: Path, name: str, folder: Path, what: str = "") -> Path:
    """``folder`` (made) holding a copy of :func:`rsna_film` under its own name: a study the test may change."""
    folder.mkdir(parents=True, exist_ok=True)
    shutil.copy(rsna_film(shared_data, name, what), folder / name)
    return folder
