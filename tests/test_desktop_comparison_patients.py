"""A radiologist's test of the comparison view and the study tree on a reading-room folder of real films
(``../shared/data/dicom_rsna``, headers rewritten): one patient's portable AP at 07:00 and PA at 14:30 of one
day, another patient's film, an unreadable (cut short) film first in the tree.

Findings: pressing → after "Compare side by side" left the first patient's prior beside the second patient's
film without a word; the offer bar kept offering the prior already on screen; no viewport was marked active
and the preset keys acted on the left one whatever had the focus; "Compare side by side" had no key; the
same-day prior was offered as "2024-05-10" (the current film's own date) and the tree showed both studies
as "2024-05-10 · …"; opening the folder showed the unreadable film; the tree showed an out-of-scope film's
class and score ("⚠ COVID-19 79.3 %") where the panel calls them not reliable."""
from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("PySide6")
pytest.importorskip("pytestqt")

from PySide6.QtCore import Qt  # noqa: E402
from PySide6.QtTest import QTest  # noqa: E402
from pydicom.uid import generate_uid  # noqa: E402

from cxr_engine.models.classifier import Prediction  # noqa: E402
from cxr_engine.reading.scanning import scan  # noqa: E402

from real_films import rsna_film  # noqa: E402
from test_desktop import WAIT_MS, card, make_window, open_and_wait, private_settings, select  # noqa: E402,F401

AM_FILM = "00f08de1-517e-4652-a04f-d1dc9ee48593.dcm"
PM_FILM = "00704310-78a8-4b38-8475-49f4573b2dbb.dcm"
OTHER_FILM = "009eb222-eabc-4150-8121-d5a6d06b8ebf.dcm"
CUT_FILM = "00c0b293-48e7-4e16-ac76-9269ba535a62.dcm"


def _film(shared_data: Path, source: str, target: Path, patient: tuple[str, str], date: str, time: str,
          view: str, description: str, study_uid: str = "", time_keyword: str = "StudyTime") -> Path:
    """A copy of a real film as ``target`` with the patient, study date and time (in ``time_keyword``; the
    other times removed), view and description given, and new UIDs."""
    import pydicom

    ds = pydicom.dcmread(rsna_film(shared_data, source))
    ds.PatientID, ds.PatientName = patient
    ds.PatientBirthDate = "19600101"
    ds.StudyDate, ds.StudyDescription, ds.ViewPosition = date, description, view
    for keyword in ("StudyTime", "SeriesTime", "AcquisitionTime", "ContentTime"):
        if keyword in ds:
            delattr(ds, keyword)
    setattr(ds, time_keyword, time)
    ds.StudyInstanceUID = study_uid or generate_uid()
    ds.SeriesInstanceUID = generate_uid()
    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
    target.parent.mkdir(parents=True, exist_ok=True)
    ds.save_as(target)
    return target


@pytest.fixture()
def room(tmp_path, shared_data) -> Path:
    """DOE^JOHN's 2023 PA, his 2024-05-10 portable AP at 07:00 and PA at 14:30; ROE^JANE's PA."""
    folder = tmp_path / "room"
    doe = ("P001", "DOE^JOHN")
    _film(shared_data, OTHER_FILM, folder / "P001" / "2023" / "img.dcm", doe, "20230301", "101500", "PA", "CHEST PA")
    _film(shared_data, AM_FILM, folder / "P001" / "am" / "img.dcm", doe, "20240510", "070000", "AP",
          "CHEST AP PORTABLE")
    _film(shared_data, PM_FILM, folder / "P001" / "pm" / "img.dcm", doe, "20240510", "143000", "PA", "CHEST PA")
    _film(shared_data, OTHER_FILM, folder / "P002" / "img.dcm", ("P002", "ROE^JANE"), "20240901", "090000", "PA",
          "CHEST PA")
    return folder


def test_moving_to_another_patient_empties_the_comparison_viewport(qtbot, make_window, room):
    window = make_window(show=True)
    open_and_wait(qtbot, window, room)
    comparison, offers = window.comparison, window.comparison.offers
    pm, am, other = room / "P001" / "pm" / "img.dcm", room / "P001" / "am" / "img.dcm", room / "P002" / "img.dcm"
    select(qtbot, window, pm)
    assert offers.isVisible() and offers.prior == am
    viewport = comparison.viewports[0]
    with qtbot.waitSignal(viewport.shown, timeout=WAIT_MS):
        offers.prior_button.click()
    assert comparison.layout_name == "1x2" and viewport.model.path == am
    # The prior on screen is not offered again.
    assert offers.prior is None and not offers.prior_button.isVisible()
    # Each pane says what it shows; the active one (the keys' target) is framed.
    assert comparison.panes[0].caption.text() == "Current · 2024-05-10 14:30 · CHEST PA"
    assert comparison.panes[1].caption.text() == "Prior · 2024-05-10 07:00 · CHEST AP PORTABLE"
    assert comparison.panes[0].caption.isVisible() and comparison.panes[0].active
    assert not comparison.panes[1].active and not comparison.panes[1].other_patient

    # → in the viewer: the next film is another patient's; the first patient's prior leaves at once.
    window.activateWindow()
    window.view.setFocus()
    with qtbot.waitSignal(window.imageShown, timeout=WAIT_MS):
        QTest.keyClick(window.view, Qt.Key.Key_Right)
    assert window.viewer.path == other
    assert viewport.path is None and viewport.model.image is None
    assert "another patient's" in viewport.view.message and "ROE, JANE" in viewport.view.message
    assert comparison.panes[1].caption.text() == "Empty"
    assert comparison.panes[0].caption.text().startswith("Current · 2024-09-01 09:00")

    # Back to the first patient: compared again, then the prior itself made current (the same patient):
    # the pane that showed it empties (nothing to compare), and the prior's own prior is offered.
    select(qtbot, window, pm)
    with qtbot.waitSignal(viewport.shown, timeout=WAIT_MS):
        offers.prior_button.click()
    select(qtbot, window, am)
    assert viewport.path is None and offers.prior == room / "P001" / "2023" / "img.dcm"
    assert "2023-03-01" in offers.label.text()
    # A later film of the same patient beside it is kept, and said to be later.
    with qtbot.waitSignal(viewport.shown, timeout=WAIT_MS):
        viewport.show_path(pm)
    assert comparison.panes[1].caption.text() == "Later study · 2024-05-10 14:30 · CHEST PA"
    # Another patient's film put beside on purpose (dragged) is unmistakable.
    with qtbot.waitSignal(viewport.shown, timeout=WAIT_MS):
        viewport.show_path(other)
    assert comparison.panes[1].other_patient
    assert comparison.panes[1].caption.text().startswith("⚠ Another patient: ROE, JANE  [P002]")
    window.grab().save(str(room.parent / "comparison_other_patient.png"))


def test_p_compares_side_by_side_and_the_sheet_lists_it(qtbot, make_window, room):
    from cxr_desktop.shortcuts import shortcut_rows

    window = make_window(show=True)
    open_and_wait(qtbot, window, room)
    pm, am = room / "P001" / "pm" / "img.dcm", room / "P001" / "am" / "img.dcm"
    select(qtbot, window, pm)
    viewport = window.comparison.viewports[0]
    window.activateWindow()
    window.view.setFocus()
    qtbot.waitUntil(lambda: window.view.hasFocus(), timeout=WAIT_MS)
    with qtbot.waitSignal(viewport.shown, timeout=WAIT_MS):
        QTest.keyClick(window.view, Qt.Key.Key_P)
    assert window.comparison.layout_name == "1x2" and viewport.model.path == am
    rows = {text: keys for _, text, keys in shortcut_rows(window)}
    assert rows.get("Compare side by side (prior study)") == "P"
    assert "(P)" in window.comparison.offers.prior_button.toolTip()
    QTest.keyClick(window.view, Qt.Key.Key_P)  # on screen already: said so, nothing else changes
    assert "already" in window.statusBar().currentMessage() and viewport.model.path == am


def test_preset_keys_act_on_the_viewport_with_the_focus(qtbot, make_window, room):
    window = make_window(show=True)
    open_and_wait(qtbot, window, room)
    select(qtbot, window, room / "P001" / "pm" / "img.dcm")
    comparison = window.comparison
    viewport = comparison.viewports[0]
    with qtbot.waitSignal(viewport.shown, timeout=WAIT_MS):
        comparison.offers.prior_button.click()
    main_before = (window.viewer.voi, window.viewer.voi_name)
    window.activateWindow()
    viewport.view.setFocus()
    qtbot.waitUntil(lambda: comparison.active == 1, timeout=WAIT_MS)
    assert comparison.panes[1].active and not comparison.panes[0].active
    QTest.keyClick(viewport.view, Qt.Key.Key_3)  # the second preset of the menu
    assert viewport.model.voi_name not in ("", "Default")
    assert (window.viewer.voi, window.viewer.voi_name) == main_before
    rotation = window.viewer.rotation
    QTest.keyClick(viewport.view, Qt.Key.Key_R)
    assert viewport.model.rotation == 90 and window.viewer.rotation == rotation
    # The focus back in the main viewer: it is the active one again, and the keys act on it.
    window.view.setFocus()
    qtbot.waitUntil(lambda: comparison.active == 0, timeout=WAIT_MS)
    QTest.keyClick(window.view, Qt.Key.Key_3)
    assert window.viewer.voi_name == viewport.model.voi_name


def test_same_day_studies_are_told_apart_by_their_time(qtbot, make_window, tmp_path, shared_data):
    """The tree and the offer give the time where the date alone does not tell two studies apart; the time is the
    Study Time, else the Series (or Acquisition, Content) Time."""
    folder = tmp_path / "icu"
    doe = ("P001", "DOE^JOHN")
    _film(shared_data, OTHER_FILM, folder / "2023.dcm", doe, "20230301", "101500", "PA", "CHEST PA")
    _film(shared_data, AM_FILM, folder / "am.dcm", doe, "20240510", "070000", "AP", "CHEST AP PORTABLE")
    _film(shared_data, PM_FILM, folder / "pm.dcm", doe, "20240510", "143000", "PA", "CHEST PA",
          time_keyword="SeriesTime")
    window = make_window(show=True)
    open_and_wait(qtbot, window, folder)
    browser = window.browser
    labels = {path.name: browser._images[path].parent().parent().text(0) for path in browser.image_paths()}
    assert labels == {"2023.dcm": "2023-03-01 · CHEST PA", "am.dcm": "2024-05-10 07:00 · CHEST AP PORTABLE",
                      "pm.dcm": "2024-05-10 14:30 · CHEST PA"}
    select(qtbot, window, folder / "pm.dcm")
    text = window.comparison.offers.label.text()
    assert "2024-05-10 07:00" in text and "14:30" in text and "same day" in text


def test_opening_a_folder_shows_its_first_readable_film(qtbot, make_window, tmp_path, shared_data):
    folder = tmp_path / "opened"
    cut = _film(shared_data, CUT_FILM, folder / "cut.dcm", ("A1", "AARON^FIRST"), "20240101", "080000", "PA",
                "CHEST PA")
    cut.write_bytes(cut.read_bytes()[: cut.stat().st_size // 3])  # cut short: the header reads, the pixels do not
    good = _film(shared_data, PM_FILM, folder / "good.dcm", ("B2", "BAKER^SECOND"), "20240101", "090000", "PA",
                 "CHEST PA")
    window = make_window(show=True)
    shown = open_and_wait(qtbot, window, folder)
    browser = window.browser
    assert browser.image_paths() == [cut, good]  # the unreadable film stays listed, first
    assert shown == good and window.viewer.path == good and browser.current_path() == good
    qtbot.waitUntil(lambda: browser.result_text(cut)[0] == "⚠ error", timeout=WAIT_MS)
    assert "cut short" in browser.result_text(cut)[1]


def test_the_tree_gives_no_class_for_an_out_of_scope_film(qtbot, tmp_path, shared_data):
    from cxr_desktop.study_browser import StudyBrowser

    film = _film(shared_data, PM_FILM, tmp_path / "ct.dcm", ("P9", "CT^HEAD"), "20240101", "090000", "", "HEAD")
    browser = StudyBrowser()
    qtbot.addWidget(browser)
    browser.add_result(scan(tmp_path))
    prediction = Prediction(("normal", "pneumonia", "covid"), (0.1, 0.107, 0.793), "efficientnet-lite0", "")
    browser.show_prediction(film, prediction)
    browser.show_scope(film, "lateral")
    text, tip = browser.result_text(film)
    assert text == "⚠ out of\nscope" and "%" not in text and "COVID" not in text
    assert "Not reliable: Normal: 10.0 %, Pneumonia: 10.7 %, COVID-19: 79.3 %" in tip
    assert tip.startswith("Outside what this model was trained for")
    # Maybe in scope (a close call): the class and score stay, marked "?", as the panel shows them.
    browser.show_scope(film, "uncertain")
    text, tip = browser.result_text(film)
    assert text == "? COVID-19\n79.3 %" and "Not reliable" not in tip
    browser.show_scope(film, "")
    assert browser.result_text(film)[0] == "COVID-19\n79.3 %"
