"""The reader's kept readings follow the image, not only its bytes (``test_desktop_marks_kept``: a film's marks,
CTR lines and PDF comment are kept by a digest of its bytes). A film whose file changed between two sessions
(re-exported with another transfer syntax, its header corrected) is the same image: it gets them back by its
SOP Instance UID and size as stored, and the reader is told; the record then moves to the film's new name (one
record per image). Another UID, another size, a PNG, or a second copy open beside it never get them. Real RSNA
films copied into ``tmp_path``, rewritten with pydicom between sessions; the app's windows.
"""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("PySide6")
pytest.importorskip("pytestqt")

import cv2  # noqa: E402
import pydicom  # noqa: E402
from pydicom.uid import ExplicitVRLittleEndian, generate_uid  # noqa: E402

from cxr_desktop.annotation_autosave import (FOUND_BY_UID, AnnotationAutosave, annotations_folder,  # noqa: E402
                                             film_digest, film_identity)
from cxr_desktop.annotation_history import RecordedAnnotationStore  # noqa: E402
from cxr_desktop.annotation_model import ARROW, TEXT, Annotation  # noqa: E402
from conftest import SHARED_DATA  # noqa: E402

from test_desktop import WAIT_MS, card, open_and_wait, private_settings  # noqa: E402,F401
from test_desktop_readings_kept import app_session  # noqa: E402

RSNA = SHARED_DATA / "dicom_rsna"
MARKS = (Annotation(ARROW, ((100.0, 120.0), (300.0, 340.0))), Annotation(TEXT, ((50.0, 60.0),), "left base?"))
CTR = {"thoracic": ((120.0, 700.0), (900.0, 700.0)), "cardiac": ((380.0, 640.0), (690.0, 640.0))}
COMMENT = "RLL consolidation, new since 2023."


@pytest.fixture()
def rsna_film(tmp_path) -> Path:
    """One real RSNA film (JPEG baseline, 1024 × 1024), copied alone into ``tmp_path/films``."""
    films = sorted(RSNA.glob("*.dcm")) if RSNA.is_dir() else []
    if not films:
        pytest.skip(f"real data not found at {RSNA} (set CXR_DATA to the shared data folder)")
    folder = tmp_path / "films"
    folder.mkdir()
    return Path(shutil.copy(films[0], folder / "film.dcm"))


def marks_of(window, path):
    return [(m.kind, m.points, m.text) for m in window.annotations.for_path(path)]


KEPT = [(m.kind, m.points, m.text) for m in MARKS]


def keep_readings(qtbot, card, settings_file, film) -> Path:
    """A first session: marks, CTR lines and a comment on ``film``; its record (written within a moment)."""
    with app_session(qtbot, card, settings_file, with_model=False) as first:
        assert open_and_wait(qtbot, first, film.parent) == film
        for mark in MARKS:
            first.scene.commit(mark)
        first.autosave.keep_ctr(film, CTR)
        first.autosave.keep_comment(film, COMMENT)
        record = annotations_folder(str(settings_file)) / f"{film_digest(film)}.json"
        qtbot.waitUntil(lambda: "comment" in json.loads(record.read_text(encoding="utf-8")) if record.is_file()
                        else False, timeout=WAIT_MS)
    return record


def reopened(qtbot, card, settings_file, film, told: list):
    """A later session showing ``film`` (``told``: what the autosave said to the reader)."""
    session = app_session(qtbot, card, settings_file, with_model=False)
    window = session.__enter__()
    window.autosave.failed.connect(told.append)
    assert open_and_wait(qtbot, window, film.parent) == film
    return session, window


def rewrite(film: Path, change) -> None:
    """``film`` rewritten in place by pydicom after ``change(ds)``, as a PACS export or a fixing tool does."""
    ds = pydicom.dcmread(film)
    change(ds)
    ds.save_as(film, enforce_file_format=True)


def header_corrected(ds) -> None:
    ds.PatientName = "Corrected^Name"
    ds.InstitutionName = "Re-exported from PACS"


def decompressed(ds) -> None:  # JPEG baseline → Explicit VR Little Endian: every byte of the file differs
    ds.decompress(generate_instance_uid=False)  # a transcoding PACS keeps the UID
    assert ds.file_meta.TransferSyntaxUID == ExplicitVRLittleEndian


def another_uid(ds) -> None:
    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()


def another_size(ds) -> None:  # the same UID on a film of another size: not the image the marks were drawn on
    half = np.ascontiguousarray(ds.pixel_array[::2, ::2])
    ds.decompress(generate_instance_uid=False)  # a transcoding PACS keeps the UID
    ds.Rows, ds.Columns = half.shape
    ds.PixelData = half.tobytes()


@pytest.mark.parametrize("change", [header_corrected, decompressed], ids=["header corrected", "transfer syntax"])
def test_a_rewritten_film_gets_its_readings_back_by_its_uid(qtbot, card, private_settings, rsna_film, change):
    film = rsna_film
    old = keep_readings(qtbot, card, private_settings, film)
    record = json.loads(old.read_text(encoding="utf-8"))
    uid, rows, columns = film_identity(film)
    assert (record["sop_instance_uid"], record["rows"], record["columns"]) == (uid, rows, columns) == (
        str(pydicom.dcmread(film).SOPInstanceUID), 1024, 1024)

    rewrite(film, change)
    new = old.parent / f"{film_digest(film)}.json"
    assert new != old and not new.exists() and film_identity(film) == (uid, rows, columns)

    told: list = []
    session, second = reopened(qtbot, card, private_settings, film, told)
    try:
        assert marks_of(second, film) == KEPT
        assert len(second.scene.annotation_items()) == 2  # drawn
        assert second.autosave.ctr_for(film) == CTR
        assert second.autosave.comment_for(film) == COMMENT
        assert told == [f"film.dcm: {FOUND_BY_UID}"]
        assert "(same SOP Instance UID) were put back; the file has changed since" in told[0]
        assert FOUND_BY_UID in second.statusBar().currentMessage()
        # Moved within a moment, unasked: one record per image, under the film's new name.
        qtbot.waitUntil(lambda: new.is_file() and not old.exists(), timeout=WAIT_MS)
        moved = json.loads(new.read_text(encoding="utf-8"))
        assert (moved["sop_instance_uid"], moved["rows"], moved["columns"]) == (uid, rows, columns)
        assert [m["text"] for m in moved["marks"]] == ["", "left base?"] and moved["comment"] == COMMENT
        assert moved["ctr"] == {name: [list(p) for p in line] for name, line in CTR.items()}
        second.scene.commit(Annotation(TEXT, ((400.0, 400.0),), "after"))  # later saves go to the new name
        qtbot.waitUntil(lambda: len(json.loads(new.read_text(encoding="utf-8"))["marks"]) == 3, timeout=WAIT_MS)
        assert not old.exists() and sorted(p.name for p in old.parent.glob("*.json")) == [new.name]
    finally:
        session.__exit__(None, None, None)

    told = []
    session, third = reopened(qtbot, card, private_settings, film, told)
    try:  # its own record now: nothing to tell
        assert [m[2] for m in marks_of(third, film)] == ["", "left base?", "after"] and told == []
    finally:
        session.__exit__(None, None, None)


@pytest.mark.parametrize("change", [another_uid, another_size], ids=["another UID", "another size"])
def test_another_uid_or_size_never_gets_them(qtbot, card, private_settings, rsna_film, change):
    film = rsna_film
    old = keep_readings(qtbot, card, private_settings, film)
    kept = old.read_bytes()
    uid, rows, columns = film_identity(film)
    rewrite(film, change)
    assert (old.parent / f"{film_digest(film)}.json") != old
    changed_uid = film_identity(film)[0]
    assert film_identity(film) == ((uid, 512, 512) if change is another_size else (changed_uid, rows, columns))
    assert (film_identity(film)[0] == uid) == (change is another_size)

    told: list = []
    session, second = reopened(qtbot, card, private_settings, film, told)
    try:
        assert marks_of(second, film) == [] and second.autosave.ctr_for(film) is None
        assert second.autosave.comment_for(film) == "" and told == []
        second.autosave.save_now()
    finally:
        session.__exit__(None, None, None)
    assert old.read_bytes() == kept  # the other image's readings are left as they were
    assert [p.name for p in old.parent.glob("*.json")] == [old.name]


def test_a_png_is_never_matched_so(qtbot, card, private_settings, rsna_film, tmp_path):
    """A PNG has no SOP Instance UID: its record holds none, and a rewritten PNG is a new film."""
    folder = tmp_path / "png"
    folder.mkdir()
    png = folder / "film.png"
    cv2.imwrite(str(png), pydicom.dcmread(rsna_film).pixel_array)
    assert film_identity(png) is None
    old = keep_readings(qtbot, card, private_settings, png)
    record = json.loads(old.read_text(encoding="utf-8"))
    assert not {"sop_instance_uid", "rows", "columns"} & set(record)

    cv2.imwrite(str(png), cv2.imread(str(png), cv2.IMREAD_UNCHANGED), [cv2.IMWRITE_PNG_COMPRESSION, 9])
    assert old.parent / f"{film_digest(png)}.json" != old
    told: list = []
    session, second = reopened(qtbot, card, private_settings, png, told)
    try:
        assert marks_of(second, png) == [] and second.autosave.comment_for(png) == "" and told == []
    finally:
        session.__exit__(None, None, None)
    assert old.is_file()


# ---------------------------------------------------------------------------------------- the autosave alone

def autosave(folder: Path) -> AnnotationAutosave:
    store = RecordedAnnotationStore()
    return AnnotationAutosave(store, folder, lambda _path, points: tuple(points), lambda _path, points: tuple(points))


def test_a_record_kept_before_uids_is_read_and_gets_its_uid(qapp, rsna_film, tmp_path):
    folder = tmp_path / "kept"
    first = autosave(folder)
    first.keep_comment(rsna_film, COMMENT)
    first.save_now()
    own = folder / f"{film_digest(rsna_film)}.json"
    record = json.loads(own.read_text(encoding="utf-8"))
    own.write_text(json.dumps({k: v for k, v in record.items() if k not in ("sop_instance_uid", "rows", "columns")}),
                   encoding="utf-8")  # as an earlier version wrote it

    assert autosave(folder).comment_for(rsna_film) == COMMENT  # read as ever, and now holds the UID
    assert json.loads(own.read_text(encoding="utf-8"))["sop_instance_uid"] == film_identity(rsna_film)[0]
    rewrite(rsna_film, header_corrected)
    later = autosave(folder)
    told: list = []
    later.failed.connect(told.append)
    assert later.comment_for(rsna_film) == COMMENT and told == [f"film.dcm: {FOUND_BY_UID}"]


def test_a_copy_open_beside_it_or_two_records_of_one_uid_are_left_apart(qapp, rsna_film, tmp_path):
    """Both files open in one session: each keeps its own record (the copy is not given the other's). Two
    records with one UID (kept apart by the reader): neither is put back on a third file."""
    folder = tmp_path / "kept"
    original = autosave(folder)
    original.keep_comment(rsna_film, COMMENT)
    original.save_now()
    copy = rsna_film.parent / "copy.dcm"
    shutil.copy(rsna_film, copy)
    rewrite(copy, header_corrected)

    session = autosave(folder)
    assert session.comment_for(rsna_film) == COMMENT
    assert session.comment_for(copy) == ""  # the original is open: its record stays its own
    session.keep_comment(copy, "the copy's own")
    session.save_now()
    assert len(list(folder.glob("*.json"))) == 2

    third = rsna_film.parent / "third.dcm"
    shutil.copy(rsna_film, third)
    rewrite(third, decompressed)
    later = autosave(folder)
    told: list = []
    later.failed.connect(told.append)
    assert later.comment_for(third) == "" and told == []
    later.save_now()
    assert len(list(folder.glob("*.json"))) == 2


def test_the_folder_is_read_for_uids_once_a_session(qapp, rsna_film, tmp_path, monkeypatch):
    """The folder may hold thousands of records: their UIDs are read when first needed, once, then kept up to date."""
    folder = tmp_path / "kept"
    first = autosave(folder)
    first.keep_comment(rsna_film, COMMENT)
    first.save_now()
    films = sorted(RSNA.glob("*.dcm"))[1:4]
    for number, source in enumerate(films):
        shutil.copy(source, rsna_film.parent / f"other{number}.dcm")
    rewrite(rsna_film, header_corrected)

    reads = []
    read_uids = AnnotationAutosave._read_uids
    monkeypatch.setattr(AnnotationAutosave, "_read_uids", lambda self: reads.append(1) or read_uids(self))
    later = autosave(folder)
    assert later.comment_for(rsna_film.parent / "other0.dcm") == "" and reads == [1]
    for number in range(1, len(films)):
        later.comment_for(rsna_film.parent / f"other{number}.dcm")
    assert later.comment_for(rsna_film) == COMMENT
    later.save_now()
    later.forget_films()  # another folder: still not read again
    assert later.comment_for(rsna_film) == COMMENT and reads == [1]
