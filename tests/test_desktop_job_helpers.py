"""The desktop's shared job helpers: ``WantedImageLoader`` (the latest wanted film, decoded off the GUI
thread; stale results dropped) and ``JobRow`` (status, progress bar, Cancel and the job's buttons).
Real films through a real ``StudyWorkspace``; offscreen Qt."""
from __future__ import annotations

import threading
from pathlib import Path

import pytest

pytest.importorskip("PySide6")

from PySide6.QtWidgets import QPushButton  # noqa: E402

from cxr_desktop.controllers.workspace import StudyWorkspace  # noqa: E402
from cxr_desktop.job_row import JobRow  # noqa: E402
from cxr_desktop.wanted_image import WantedImageLoader  # noqa: E402
from cxr_engine import read_image  # noqa: E402
from cxr_engine.reading.decode_cache import CachedDecoder  # noqa: E402

from conftest import film_folder  # noqa: E402

FILMS = ["966_fixed.dcm", "RG1_J2KI.dcm"]
WAIT_MS = 60_000


class GatedPool:
    """Decodes in this thread; a decode of a file named in ``gates`` waits until its event is set."""

    workers = 1

    def __init__(self, *held: str):
        self.gates = {name: threading.Event() for name in held}
        self.ended: list[str] = []

    def read(self, path, request):
        gate = self.gates.get(Path(path).name)
        if gate is not None:
            assert gate.wait(WAIT_MS / 1000), "the test never released the decode"
        try:
            return read_image(path, request)
        finally:
            self.ended.append(Path(path).name)


@pytest.fixture()
def films(tmp_path, dicom_dir) -> Path:
    return film_folder(tmp_path, dicom_dir, FILMS)


def recorder(loader: WantedImageLoader) -> dict[str, list]:
    seen: dict[str, list] = {"loading": [], "loaded": [], "failed": [], "unreadable": []}
    loader.loading.connect(lambda path: seen["loading"].append(Path(path).name))
    loader.loaded.connect(lambda loaded: seen["loaded"].append(Path(loaded.image.path).name))
    loader.failed.connect(lambda path, reason: seen["failed"].append((Path(path).name, reason)))
    loader.unreadable.connect(lambda path, reason: seen["unreadable"].append((Path(path).name, reason)))
    return seen


class TestWantedImageLoader:
    def test_a_film_wanted_later_wins_over_a_slower_decode(self, qtbot, films):
        pool = GatedPool(FILMS[0])
        loader = WantedImageLoader(StudyWorkspace(CachedDecoder(pool)))
        seen = recorder(loader)
        loader.want(films / FILMS[0])  # held in its decode...
        with qtbot.waitSignal(loader.loaded, timeout=WAIT_MS):
            loader.want(films / FILMS[1])  # ...while the reader picks the next film
        pool.gates[FILMS[0]].set()
        qtbot.waitUntil(lambda: FILMS[0] in pool.ended, timeout=WAIT_MS)
        qtbot.wait(300)  # the late result's queued signals are delivered, then dropped
        assert seen["loading"] == FILMS and seen["loaded"] == [FILMS[1]]
        assert loader.wanted == films / FILMS[1]

    def test_a_kept_film_arrives_at_once_without_a_decode(self, qtbot, films):
        pool = GatedPool()
        loader = WantedImageLoader(StudyWorkspace(CachedDecoder(pool)))
        with qtbot.waitSignal(loader.loaded, timeout=WAIT_MS):
            loader.want(films / FILMS[0])
        seen = recorder(loader)
        loader.want(films / FILMS[0])
        assert seen["loaded"] == [FILMS[0]] and seen["loading"] == [] and pool.ended == [FILMS[0]]

    def test_a_failure_names_the_file_and_is_shown_only_while_wanted(self, qtbot, films):
        pool = GatedPool("damaged.dcm")
        loader = WantedImageLoader(StudyWorkspace(CachedDecoder(pool)))
        seen = recorder(loader)
        pool.gates["damaged.dcm"].set()
        with qtbot.waitSignal(loader.failed, timeout=WAIT_MS):
            loader.want(films / "damaged.dcm")
        assert [name for name, _ in seen["failed"]] == ["damaged.dcm"] and seen["failed"][0][1]
        assert seen["unreadable"] == seen["failed"]

        pool.gates["damaged.dcm"].clear()
        loader.workspace.decoder.clear()  # decode it again
        loader.want(films / "damaged.dcm")
        loader.forget()  # the reader opened another folder meanwhile
        with qtbot.waitSignal(loader.unreadable, timeout=WAIT_MS):
            pool.gates["damaged.dcm"].set()
        qtbot.wait(300)
        assert len(seen["unreadable"]) == 2 and len(seen["failed"]) == 1  # for the Problems list only

    def test_nothing_arrives_after_close(self, qtbot, films):
        pool = GatedPool(FILMS[0])
        loader = WantedImageLoader(StudyWorkspace(CachedDecoder(pool)))
        seen = recorder(loader)
        loader.want(films / FILMS[0])
        loader.close()
        pool.gates[FILMS[0]].set()
        qtbot.waitUntil(lambda: FILMS[0] in pool.ended, timeout=WAIT_MS)
        qtbot.wait(300)
        assert seen["loaded"] == []


class TestJobRow:
    def test_status_in_the_row_with_a_short_bar(self, qtbot):
        action = QPushButton("Retrieve")
        row = JobRow((action,))
        qtbot.addWidget(row)
        row.resize(700, 40)
        row.show()
        assert not row.progress.isVisible() and row.status.wordWrap()
        widgets = [row.status, row.progress, row.cancel_button, action]
        row.show_busy()
        qtbot.waitUntil(row.progress.isVisible)
        xs = [w.geometry().x() for w in widgets]
        assert xs == sorted(xs)  # left to right: status, bar, Cancel, the job's buttons
        assert row.progress.width() <= 220 and row.status.width() > row.progress.width()

    def test_status_above_a_bar_that_fills_the_row(self, qtbot):
        actions = (QPushButton("Save"), QPushButton("Send"))
        row = JobRow(actions, status_above=True)
        qtbot.addWidget(row)
        row.resize(600, 80)
        row.show()
        row.show_busy()
        qtbot.waitUntil(row.progress.isVisible)
        assert row.status.geometry().bottom() < row.cancel_button.geometry().top()
        assert row.progress.width() > row.cancel_button.width() + sum(a.width() for a in actions)

    def test_progress_counts_and_status_signal(self, qtbot):
        row = JobRow(compact=True)
        qtbot.addWidget(row)
        assert not row.status.wordWrap() and row.progress.maximumHeight() == 16
        row.show_busy()
        assert (row.progress.minimum(), row.progress.maximum()) == (0, 0)
        row.set_progress(3, None)  # no count yet: still busy
        assert row.progress.maximum() == 0
        row.set_progress(3, 8)
        assert (row.progress.value(), row.progress.maximum()) == (3, 8)
        with qtbot.waitSignal(row.statusChanged) as signal:
            row.set_status("Sending 3/8")
        assert signal.args == ["Sending 3/8"] and row.status.text() == "Sending 3/8"
        row.hide_progress()
        assert row.progress.isHidden()
