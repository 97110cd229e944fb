"""Issue 15 in the app (pytest-qt, offscreen): people kept apart in the study browser, and PNG/JPEG
opened as the CLI reads them (dropped, chosen or in a folder) with the same warnings.

Both failed on the code before the fix: the browser merged every patient without a Patient ID
into one node, and the app refused PNG/JPEG with "not a valid DICOM file: element lengths run
past the end of the file".
"""
from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("PySide6")
pytest.importorskip("pytestqt")

from PySide6.QtCore import QEvent, QMimeData, QPointF, QSettings, Qt, QUrl  # noqa: E402
from PySide6.QtGui import QDropEvent  # noqa: E402
from PySide6.QtWidgets import QApplication  # noqa: E402

from cxr_engine.reading.read import read_image  # noqa: E402
from cxr_engine.reading.scanning import NO_PATIENT_ID, scan  # noqa: E402
from cxr_engine.models.suitability import image_warnings  # noqa: E402
from cxr_desktop.main_window import MainWindow  # noqa: E402
from cxr_desktop.settings import AppSettings  # noqa: E402
from cxr_desktop.study_browser import StudyBrowser  # noqa: E402

from test_desktop import J2K16, MONO1, WAIT_MS, private_settings  # noqa: E402,F401  (autouse fixture)

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")


@pytest.fixture()
def window(qtbot, private_settings):
    """A main window without a model (the reading path is what is tested here)."""
    w = MainWindow(AppSettings(QSettings(str(private_settings), QSettings.Format.IniFormat)), model="",
                   device="cpu", models_dir=private_settings.parent / "no_models")
    w.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
    yield w
    w.close()
    QApplication.sendPostedEvents(None, QEvent.Type.DeferredDelete)


def _people(tmp_path: Path, dicom_dir: Path) -> Path:
    """The issue's pair, plus more people without a Patient ID, and one person in two studies."""
    import pydicom
    from pydicom.uid import generate_uid

    folder = tmp_path / "people"
    folder.mkdir()
    shutil.copy(dicom_dir / MONO1, folder / "mono1.dcm")
    shutil.copy(dicom_dir / J2K16, folder / "j2k16.dcm")
    for stem, attributes in (("anon_a", {}), ("anon_b", {}),
                             ("eve_1", {"PatientName": "DOE^EVE", "PatientBirthDate": "19610101"}),
                             ("eve_2", {"PatientName": "DOE^EVE", "PatientBirthDate": "19610101"}),
                             ("eve_other", {"PatientName": "DOE^EVE", "PatientBirthDate": "19990101"})):
        ds = pydicom.dcmread(dicom_dir / MONO1, force=True)
        ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.SOPInstanceUID = generate_uid(), generate_uid(), generate_uid()
        for keyword in ("PatientName", "PatientID", "PatientBirthDate"):
            if keyword in ds:
                delattr(ds, keyword)
        for keyword, value in attributes.items():
            setattr(ds, keyword, value)
        ds.save_as(folder / f"{stem}.dcm")
    return folder


def _tree(browser: StudyBrowser) -> list[tuple[str, list[str]]]:
    """(patient label, the file names under it) per top-level node."""
    out = []
    for i in range(browser.topLevelItemCount()):
        item = browser.topLevelItem(i)
        out.append((item.text(0), sorted(p.name for p in browser.paths_under(item))))
    return out


def test_study_browser_never_shows_two_people_as_one(qtbot, tmp_path, dicom_dir):
    folder = _people(tmp_path, dicom_dir)
    browser = StudyBrowser()
    qtbot.addWidget(browser)
    browser.add_result(scan(folder))
    groups = sorted(files for _, files in _tree(browser))
    assert groups == [["anon_a.dcm"], ["anon_b.dcm"], ["eve_1.dcm", "eve_2.dcm"], ["eve_other.dcm"],
                      ["j2k16.dcm"], ["mono1.dcm"]]
    labels = [label for label, _ in _tree(browser)]
    assert all(f"[{NO_PATIENT_ID}]" in label for label in labels), labels  # per person


def test_files_opened_one_by_one_join_only_their_own_person(qtbot, tmp_path, dicom_dir):
    folder = _people(tmp_path, dicom_dir)
    browser = StudyBrowser()
    qtbot.addWidget(browser)
    for name in ("mono1.dcm", "j2k16.dcm", "anon_a.dcm", "anon_b.dcm", "eve_1.dcm", "eve_2.dcm"):
        browser.add_result(scan(folder / name))
    assert sorted(files for _, files in _tree(browser)) == [["anon_a.dcm"], ["anon_b.dcm"], ["eve_1.dcm", "eve_2.dcm"],
                                                ["j2k16.dcm"], ["mono1.dcm"]]


@pytest.fixture()
def rasters(tmp_path, cxr3_dir) -> Path:
    import cv2

    folder = tmp_path / "rasters"
    folder.mkdir()
    shutil.copy(next((cxr3_dir / "images" / "normal").glob("*.jpg")), folder / "film.jpg")
    cv2.imwrite(str(folder / "small.png"), np.full((200, 180), 90, np.uint8))
    return folder


def _open(qtbot, window: MainWindow, paths: list[Path]) -> None:
    with qtbot.waitSignal(window.scanFinished, timeout=WAIT_MS):
        window.open_paths(paths)


@pytest.mark.parametrize("how", ["folder", "files"])
def test_png_and_jpeg_open_as_the_cli_reads_them(qtbot, window, rasters, how):
    paths = [rasters] if how == "folder" else sorted(rasters.iterdir())
    _open(qtbot, window, paths)
    assert window.problems.rowCount() == 0, window.problems.problems()
    assert sorted(p.name for p in window.browser.image_paths()) == ["film.jpg", "small.png"]
    small = rasters / "small.png"
    if window.viewer.path != small:
        with qtbot.waitSignal(window.imageShown, timeout=WAIT_MS):
            assert window.browser.select_path(small)
    qtbot.waitUntil(lambda: window.viewer.path == small, timeout=WAIT_MS)
    # The same suitability warnings as cxr-classify's CSV (image_warnings on the same image).
    expected = image_warnings(read_image(small), window.classification.card.input_size
                              if window.classification.card else None)
    assert tuple(window.result.image_warnings) == tuple(expected)
    assert any("smaller than the model input" in w for w in expected) or window.classification.card is None


def test_png_dropped_on_the_window_opens(qtbot, window, rasters):
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(rasters / "small.png"))])
    event = QDropEvent(QPointF(10, 10), Qt.DropAction.CopyAction, mime, Qt.MouseButton.NoButton,
                       Qt.KeyboardModifier.NoModifier)
    with qtbot.waitSignal(window.imageShown, timeout=WAIT_MS) as shown:
        window.dropEvent(event)
    assert Path(shown.args[0]) == rasters / "small.png"
    assert window.problems.rowCount() == 0


def test_two_issuers_patients_with_one_id_are_told_apart_in_the_tree(tmp_path, dicom_dir):
    """Kept apart already; both nodes read "SMITH, JOHN [12345] · born 1960-01-01" (tester, 2026-11-30)."""
    import pydicom
    from pydicom.uid import generate_uid

    from cxr_desktop.study_browser import _patient_label

    folder = tmp_path / "two_hospitals"
    folder.mkdir()
    for issuer in ("HOSP_A", "HOSP_B"):
        ds = pydicom.dcmread(dicom_dir / "CR-MONO1-10-chest.dcm", force=True)
        ds.PatientName, ds.PatientID, ds.PatientBirthDate, ds.IssuerOfPatientID = "SMITH^JOHN", "12345", "19600101", issuer
        ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.SOPInstanceUID = generate_uid(), generate_uid(), generate_uid()
        ds.save_as(folder / f"{issuer}.dcm")
    labels = sorted(_patient_label(patient) for patient in scan(folder).patients)
    assert labels == ["SMITH, JOHN  [12345, issuer HOSP_A]  · born 1960-01-01",
                      "SMITH, JOHN  [12345, issuer HOSP_B]  · born 1960-01-01"]
