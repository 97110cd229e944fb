"""The lung outline of the image on screen arrives while "Classify all" is still running (tester
finding 11): the lung job is not queued behind the batch nor starved by it (pytest-qt, offscreen, the
bundled lung model on real films).

The tester's scripts waited with ``QTest.qWait``, which in PySide6 keeps the GIL for the whole wait,
so no worker thread could run: the outline seemed never to come. The app's event loop releases the
GIL; ``qtbot.waitUntil`` waits in an event loop as the app does.
"""
from __future__ import annotations

import time
from pathlib import Path

import pydicom
import pytest
from pydicom.uid import generate_uid

pytest.importorskip("PySide6")
pytest.importorskip("pytestqt")

from test_desktop import WAIT_MS, card, make_window, open_and_wait, private_settings, wait_classified  # noqa: E402,F401


#: Copies of each real film: with the shared decode cache, one pass over the 24 films takes about
#: as long as one lung job, too short a batch to show anything under load.
COPIES = 4


@pytest.fixture()
def many_films(tmp_path, dicom_dir, shared_data) -> Path:
    """Every film of dicom/ and dicom_rsna/, each stored ``COPIES`` times as its own SOP Instance (a new
    SOP Instance UID, so the copies are not folded into one): a batch that outlasts one lung job."""
    folder = tmp_path / "many"
    folder.mkdir()
    sources = sorted(dicom_dir.glob("*.dcm")) + sorted((shared_data / "dicom_rsna").rglob("*.dcm"))
    for copy in range(COPIES):
        for index, source in enumerate(sources):
            dataset = pydicom.dcmread(source, force=True)
            dataset.SOPInstanceUID = generate_uid()
            if "MediaStorageSOPInstanceUID" in dataset.file_meta:
                dataset.file_meta.MediaStorageSOPInstanceUID = dataset.SOPInstanceUID
            dataset.save_as(folder / f"{copy}_{index:02d}_{source.name}", enforce_file_format=False)
    return folder


def test_the_lung_outline_arrives_while_classify_all_runs(qtbot, make_window, many_films):
    window = make_window(show=True)
    open_and_wait(qtbot, window, many_films)
    wait_classified(qtbot, window)
    batch = window.classify_everything()
    assert batch is not None
    started = time.monotonic()
    window.acts.lung_outline.trigger()
    qtbot.waitUntil(lambda: window.lungs.outline_item is not None or window.lungs.status.startswith("no "),
                    timeout=WAIT_MS)
    took = time.monotonic() - started
    assert window.lungs.outline_item is not None, window.lungs.status
    assert not batch.done, f"the batch ended before the outline came ({took:.1f} s): nothing was shown under load"
    with qtbot.waitSignal(window.classifyAllFinished, timeout=10 * WAIT_MS):
        pass
