"""Opening a folder shows its first readable film (reviewer's findings on ``study_opening.first_failed``):

1. When the decoding process cannot start (``DecoderStartError``, "not blamed on any file", README), every film
   was skipped to the next, each put in Problems ("6 of 6"), and with real folders up to 100 worker starts were
   tried: now nothing is skipped, no film is blamed and the viewer says why once.
2. ``--screenshot``/``--result-json`` (``automation``) had a rule of its own for skipping unreadable films (no
   cap), working only because opening reset its own; now both follow ``StudyOpening.first_failed``.

Real films from ``../shared/data/dicom_rsna``, copied (some cut short: the header reads, the pixels do not)."""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest

pytest.importorskip("PySide6")
pytest.importorskip("pytestqt")

from cxr_desktop.controllers.workspace import StudyWorkspace  # noqa: E402
from cxr_engine.errors import DecoderStartError  # noqa: E402

from test_desktop import WAIT_MS, card, make_window, private_settings  # noqa: E402,F401  (fixtures)


def _films(shared_data: Path, folder: Path, count: int, cut: int = 0) -> list[Path]:
    """``count`` real RSNA films copied into ``folder`` as f00.dcm…, the first ``cut`` of them cut short."""
    sources = sorted((shared_data / "dicom_rsna").glob("*.dcm"))
    if len(sources) < count:
        pytest.skip(f"fewer than {count} films in {shared_data / 'dicom_rsna'}")
    folder.mkdir(parents=True, exist_ok=True)
    films = []
    for index, source in enumerate(sources[:count]):
        film = folder / f"f{index:02d}.dcm"
        shutil.copy(source, film)
        if index < cut:
            film.write_bytes(film.read_bytes()[: film.stat().st_size // 3])
        films.append(film)
    return films


def blamed(window) -> int:
    """The files the Problems list names, whether in the tree (unreadable, not classified) or left out."""
    return window.problems.problem_count() + window.problems.unclassified_count()


def test_a_decoder_that_cannot_start_blames_no_film_and_skips_none(qtbot, make_window, tmp_path, shared_data,
                                                                    monkeypatch):
    films = _films(shared_data, tmp_path / "six", 6)
    tried: list[Path] = []

    def cannot_start(self, path):
        tried.append(Path(path))
        raise DecoderStartError("permission denied: /usr/bin/python3")

    monkeypatch.setattr(StudyWorkspace, "load", cannot_start)
    window = make_window(show=True)
    given_up: list[str] = []
    window.opening.noFilmShown.connect(given_up.append)
    with qtbot.waitSignal(window.imageFailed, timeout=WAIT_MS) as failed:
        window.open_paths([tmp_path / "six"])
    assert failed.args[0] == films[0] and failed.args[2] is False  # not the file's fault
    qtbot.wait(300)  # a skip would select (and try) the next film now
    assert tried == [films[0]]  # one try: the next film would fail the same way
    assert window.browser.current_path() == films[0]
    assert blamed(window) == 0  # "not blamed on any file"
    assert all(window.browser.result_text(film)[0] != "⚠ error" for film in films)
    assert given_up == ["the decoding process could not start: permission denied: /usr/bin/python3"]
    message = window.view.message
    assert message.startswith("No film can be displayed") and "could not start" in message
    assert "This file" not in message
    assert "could not start" in window.statusBar().currentMessage()


def test_unreadable_films_are_still_skipped_and_listed(qtbot, make_window, tmp_path, shared_data):
    films = _films(shared_data, tmp_path / "cut", 3, cut=2)
    window = make_window(show=True)
    with qtbot.waitSignal(window.imageShown, timeout=WAIT_MS) as shown:
        window.open_paths([tmp_path / "cut"])
    assert Path(shown.args[0]) == films[2]
    qtbot.waitUntil(lambda: blamed(window) == 2, timeout=WAIT_MS)


def _run_automation(qtbot, window, folder: Path, tmp_path: Path, monkeypatch):
    """``--result-json`` in this process; its ending exit() is not passed to the application (an exit() with no
    running loop would end every later event loop of the test session at once)."""
    from types import SimpleNamespace

    import cxr_desktop.automation as automation_module
    from cxr_desktop.automation import Automation, AutomationTask

    app = SimpleNamespace(exit=lambda code: None, processEvents=automation_module.QApplication.processEvents)
    monkeypatch.setattr(automation_module, "QApplication", SimpleNamespace(instance=lambda: app))
    automation = Automation(window, AutomationTask(result_json=tmp_path / "result.json", timeout_s=120))
    window.open_paths([folder])
    qtbot.waitUntil(lambda: automation.exit_code is not None, timeout=30_000)
    return automation


def test_automation_follows_the_opening_rule_and_its_cap(qtbot, make_window, tmp_path, shared_data, monkeypatch,
                                                         caplog):
    """With at most 1 film skipped on opening, 3 cut films before a good one: the run stops at the cap (the
    app's rule), where its own rule went on to the fourth film."""
    import cxr_desktop.study_opening as study_opening

    films = _films(shared_data, tmp_path / "cap", 4, cut=3)
    monkeypatch.setattr(study_opening, "SKIP_AT_MOST", 1)
    window = make_window(show=True, with_model=False)
    with caplog.at_level("WARNING"):
        automation = _run_automation(qtbot, window, tmp_path / "cap", tmp_path, monkeypatch)
    assert automation.exit_code == 1
    assert window.viewer.path is None and window.browser.current_path() == films[1]
    failure = [r.getMessage() for r in caplog.records if r.getMessage().startswith("automation failed")]
    assert failure and f"no image can be read (2 tried, looking no further than 1 skipped); the last, {films[1]}" \
        in failure[0], failure
    assert f"skipped {films[0]}: it cannot be read" in caplog.text
    assert not (tmp_path / "result.json").exists()


def test_automation_stops_at_once_when_the_decoder_cannot_start(qtbot, make_window, tmp_path, shared_data,
                                                                monkeypatch, caplog):
    _films(shared_data, tmp_path / "three", 3)
    tried: list[Path] = []

    def cannot_start(self, path):
        tried.append(Path(path))
        raise DecoderStartError("no interpreter")

    monkeypatch.setattr(StudyWorkspace, "load", cannot_start)
    window = make_window(show=True, with_model=False)
    with caplog.at_level("WARNING"):
        automation = _run_automation(qtbot, window, tmp_path / "three", tmp_path, monkeypatch)
    assert automation.exit_code == 1 and len(tried) == 1
    assert "automation failed: the decoding process could not start: no interpreter" in caplog.text
    assert blamed(window) == 0


def test_thumbnails_stop_at_a_decoder_that_cannot_start_and_blame_no_film(qtbot, make_window, tmp_path, shared_data,
                                                                          monkeypatch):
    """The thumbnails' worker met the same error once per film and put every film in Problems: now it says so
    once (file_fault False) and stops."""
    import cxr_desktop.image_jobs as image_jobs

    films = _films(shared_data, tmp_path / "thumbs", 4)
    tried: list[Path] = []

    def cannot_start(paths, *args, **kwargs):
        for path in paths:
            tried.append(Path(path))
            yield path, DecoderStartError("no interpreter")

    monkeypatch.setattr(image_jobs, "read_in_order", cannot_start)
    assert list(image_jobs.thumbnails(films, decoder=None)) == [
        (films[0], None, "the decoding process could not start: no interpreter", False)]
    assert tried == [films[0]]

    window = make_window(show=True)
    with qtbot.waitSignal(window.imageShown, timeout=WAIT_MS):  # the viewer's own decode is not patched
        window.open_paths([tmp_path / "thumbs"])
    qtbot.waitUntil(lambda: "No thumbnails" in window.statusBar().currentMessage(), timeout=WAIT_MS)
    assert blamed(window) == 0
    assert all(window.browser.result_text(film)[0] != "⚠ error" for film in films)
