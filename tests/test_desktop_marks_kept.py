"""The reader's marks outlive the window (privacy and data-safety tester's finding 4: closing the window, or
a crash, lost every annotation without a word). Each change is kept on this PC within a moment, named by the
film's bytes, and comes back when the film is shown again, from its folder or a copy; on a film shown turned
back, they are kept on the film as stored and come back on the same anatomy. Real films, the app's windows.
"""
from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

pytest.importorskip("PySide6")
pytest.importorskip("pytestqt")

import cv2  # noqa: E402

from cxr_desktop.annotation_autosave import FORMAT, annotations_folder, film_digest  # noqa: E402
from cxr_desktop.annotation_model import ARROW, TEXT, Annotation  # noqa: E402
from cxr_engine.reading.read import read_image  # noqa: E402

from test_desktop import (WAIT_MS, card, make_window, open_and_wait, private_settings,  # noqa: E402,F401
                          select, study)

MARKS = (Annotation(ARROW, ((100.0, 120.0), (300.0, 340.0))), Annotation(TEXT, ((50.0, 60.0),), "left base?"))


def marks_of(window, path):
    return [(m.kind, m.points, m.text) for m in window.annotations.for_path(path)]


def test_marks_come_back_after_closing_and_on_a_copy(qtbot, make_window, study, private_settings, tmp_path):
    first = make_window(show=True)
    film = open_and_wait(qtbot, first, study)
    for mark in MARKS:
        first.scene.commit(mark)
    folder = annotations_folder(str(private_settings))
    saved = folder / f"{film_digest(film)}.json"
    qtbot.waitUntil(saved.is_file, timeout=WAIT_MS)  # written within a moment, not only at closing (a crash)
    record = json.loads(saved.read_text(encoding="utf-8"))
    assert record["format"] == FORMAT and [m["text"] for m in record["marks"]] == ["", "left base?"]
    assert film.stem not in saved.name  # named by the film's bytes, never by its (often the patient's) name

    second = make_window(show=True)
    assert open_and_wait(qtbot, second, study) == film
    assert marks_of(second, film) == [(m.kind, m.points, m.text) for m in MARKS]
    assert len(second.scene.annotation_items()) == 2  # drawn
    assert second.history.stack.count() == 0  # not undo steps: the reader did not just draw them
    others = [p for p in study.rglob("*.dcm") if p != film]
    select(qtbot, second, others[0])
    assert marks_of(second, others[0]) == []  # another film gets none

    copy = tmp_path / "copy"
    copy.mkdir()
    shutil.copy(film, copy / "renamed.dcm")
    with qtbot.waitSignal(second.imageShown, timeout=WAIT_MS):
        second.open_paths([copy])
    # the same film, elsewhere (the first folder's marks left memory with it: they are on disk)
    assert marks_of(second, copy / "renamed.dcm") == [(m.kind, m.points, m.text) for m in MARKS]
    assert marks_of(second, film) == []

    # Deleting the marks is kept too: the film comes back bare.
    for mark in second.annotations.for_path(copy / "renamed.dcm"):
        second.annotations.remove(copy / "renamed.dcm", mark.id)
    qtbot.waitUntil(lambda: not saved.exists(), timeout=WAIT_MS)


def shown_corrected(qtbot, window, tmp_path, dicom_dir):
    """``window`` on a real film stored upside down (a PNG), shown corrected: (its path, the film as stored)."""
    film = (read_image(dicom_dir / "RG1_J2KI.dcm").display() * 255).astype(np.uint8)
    folder = tmp_path / "upside_down"
    folder.mkdir()
    cv2.imwrite(str(folder / "upside_down.png"), np.rot90(film, 2))
    window.classification.start()
    shown = open_and_wait(qtbot, window, folder)
    qtbot.waitUntil(lambda: window.result.image_check is not None and window.result.prediction is not None,
                    timeout=WAIT_MS)
    assert window.result.image_check.reasons == "rotated-180"
    stored = window.viewer.image
    with qtbot.waitSignal(window.imageShown, timeout=WAIT_MS):
        window.result_panel.correct_button.click()
    return shown, stored


def test_marks_on_a_film_shown_turned_back_come_back_on_the_same_anatomy(qtbot, make_window, tmp_path, dicom_dir,
                                                                         private_settings):
    first = make_window(show=True)
    shown, stored = shown_corrected(qtbot, first, tmp_path, dicom_dir)
    folder = shown.parent
    first.scene.commit(Annotation(TEXT, ((10.5, 20.5),), "here"))  # drawn on the film turned back
    corrected = first.viewer.image
    saved = annotations_folder(str(private_settings)) / f"{film_digest(shown)}.json"
    qtbot.waitUntil(saved.is_file, timeout=WAIT_MS)

    second = make_window(show=True)  # shows the film as stored
    assert open_and_wait(qtbot, second, folder) == shown
    ((x, y),) = second.annotations.for_path(shown)[0].points
    rows, cols = stored.shape
    assert (x, y) == (cols - 10.5, rows - 20.5)
    assert stored.modality[int(y), int(x)] == corrected.modality[20, 10]


def test_reopening_a_folder_shows_marks_on_the_film_as_stored(qtbot, make_window, tmp_path, dicom_dir,
                                                              private_settings):
    """A tester's finding: reopening the folder forgot the film's correction but kept its marks in memory at
    the corrected view's coordinates (the opposite corner of the film as now shown), and wrote them so."""
    window = make_window(show=True)
    shown, stored = shown_corrected(qtbot, window, tmp_path, dicom_dir)
    folder = shown.parent
    window.scene.commit(Annotation(TEXT, ((10.5, 20.5),), "here"))
    assert open_and_wait(qtbot, window, folder) == shown  # the same folder again: shown as stored
    rows, cols = stored.shape
    assert window.annotations.for_path(shown)[0].points == ((cols - 10.5, rows - 20.5),)
    record = json.loads((annotations_folder(str(private_settings)) / f"{film_digest(shown)}.json").read_text())
    assert record["marks"][0]["points"] == [[cols - 10.5, rows - 20.5]]


def test_an_undo_never_reaches_a_film_of_a_folder_no_longer_open(qtbot, make_window, study, tmp_path, dicom_dir,
                                                                private_settings):
    """A tester's finding: after opening another folder, Undo removed the previous folder's film's mark (off
    screen) and deleted its kept file."""
    window = make_window(show=True)
    film = open_and_wait(qtbot, window, study)
    window.scene.commit(MARKS[0])
    saved = annotations_folder(str(private_settings)) / f"{film_digest(film)}.json"
    qtbot.waitUntil(saved.is_file, timeout=WAIT_MS)
    other = tmp_path / "other"
    other.mkdir()
    shutil.copy(dicom_dir / "RG1_J2KI.dcm", other / "rg1.dcm")
    open_and_wait(qtbot, window, other)
    assert window.history.stack.count() == 0
    window.history.stack.undo()
    window.autosave.save_now()
    assert saved.is_file()


def test_marks_that_cannot_be_kept_are_said_and_written_once_they_can(qtbot, make_window, study, private_settings):
    folder = annotations_folder(str(private_settings))
    folder.parent.mkdir(parents=True, exist_ok=True)
    folder.write_text("a file where the folder should be")  # even root cannot write under it
    window = make_window(show=True)
    film = open_and_wait(qtbot, window, study)
    window.scene.commit(MARKS[0])
    qtbot.waitUntil(lambda: "could not be kept on this PC" in window.statusBar().currentMessage(), timeout=WAIT_MS)
    assert film.name in window.statusBar().currentMessage()
    folder.unlink()
    window.autosave.save_now()  # as on closing: it was kept to be tried again
    saved = folder / f"{film_digest(film)}.json"
    assert saved.is_file() and oct(saved.stat().st_mode & 0o777) == "0o600"  # notes may hold patient data


@pytest.mark.parametrize("content", ["[1, 2]", '{"format": "%s", "marks": ["x"]}' % FORMAT,
                                     '{"format": "%s", "marks": [{"kind": "arrow", "points": [["nan", 1], [2, 3]]}]}'
                                     % FORMAT, "not json"])
def test_a_damaged_kept_file_leaves_the_film_without_marks(qtbot, make_window, study, private_settings, content):
    first = sorted(study.rglob("*.dcm"))
    folder = annotations_folder(str(private_settings))
    folder.mkdir(parents=True, exist_ok=True)
    for path in first:
        (folder / f"{film_digest(path)}.json").write_text(content)
    window = make_window(show=True)
    film = open_and_wait(qtbot, window, study)  # an exception in the slot fails the test (pytest-qt)
    assert window.annotations.for_path(film) == []
