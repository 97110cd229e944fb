"""Comparison with films whose patient is not identified (reviewer's finding): a DICOM film without Patient ID and
without name and birth date, or a PNG/JPEG, is one patient only within its own study (``scanning.patient_key``), so
it was captioned "⚠ Another patient" beside any other film and emptied the viewports when it became the current
one, when nothing tells it is another person. Now: kept, captioned "Patient not known to be the same"; two
identified patients who differ are still told apart as before. Real films from ``../shared/data/dicom_rsna``."""
from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("PySide6")
pytest.importorskip("pytestqt")

from test_desktop import WAIT_MS, card, make_window, open_and_wait, private_settings, select  # noqa: E402,F401
from test_desktop_comparison_patients import AM_FILM, OTHER_FILM, PM_FILM, _film  # noqa: E402


@pytest.fixture()
def room(tmp_path, shared_data) -> Path:
    """DOE^JOHN's portable AP at 07:00 and PA at 14:30; ROE^JANE's PA; a film without Patient ID or name."""
    folder = tmp_path / "room"
    doe = ("P001", "DOE^JOHN")
    _film(shared_data, AM_FILM, folder / "P001" / "am" / "img.dcm", doe, "20240510", "070000", "AP",
          "CHEST AP PORTABLE")
    _film(shared_data, PM_FILM, folder / "P001" / "pm" / "img.dcm", doe, "20240510", "143000", "PA", "CHEST PA")
    _film(shared_data, OTHER_FILM, folder / "P002" / "img.dcm", ("P002", "ROE^JANE"), "20240901", "090000", "PA",
          "CHEST PA")
    anonymous = _film(shared_data, OTHER_FILM, folder / "anon" / "img.dcm", ("", ""), "20240601", "100000", "PA",
                      "CHEST PA")
    import pydicom

    ds = pydicom.dcmread(anonymous)
    del ds.PatientBirthDate
    ds.save_as(anonymous)
    return folder


def test_a_film_without_patient_identity_is_not_called_another_patient(qtbot, make_window, room):
    window = make_window(show=True)
    open_and_wait(qtbot, window, room)
    comparison = window.comparison
    pm, am = room / "P001" / "pm" / "img.dcm", room / "P001" / "am" / "img.dcm"
    anonymous, other = room / "anon" / "img.dcm", room / "P002" / "img.dcm"
    select(qtbot, window, pm)
    viewport = comparison.viewports[0]
    # An unidentified film dragged beside DOE^JOHN's: not known to be his, not said to be someone else's.
    with qtbot.waitSignal(viewport.shown, timeout=WAIT_MS):
        comparison.compare_with(anonymous)
    pane = comparison.panes[1]
    assert pane.caption.text().startswith("⚠ Patient not known to be the same: ")
    assert "Another patient" not in pane.caption.text()
    assert pane.unknown_patient and not pane.other_patient
    assert "act on its film" in pane.caption.toolTip()  # what the frame means

    # DOE^JOHN's prior beside him, then the unidentified film made current: the prior stays (nothing tells it is
    # another person's), captioned as not known to be the same patient.
    with qtbot.waitSignal(viewport.shown, timeout=WAIT_MS):
        comparison.compare_with(am)
    assert pane.caption.text().startswith("Prior")
    select(qtbot, window, anonymous)
    assert viewport.path == am and viewport.model.path == am
    assert pane.caption.text().startswith("⚠ Patient not known to be the same: DOE, JOHN")
    assert pane.unknown_patient and not pane.other_patient

    # Two identified patients who differ: emptied as before.
    select(qtbot, window, pm)
    select(qtbot, window, other)
    assert viewport.path is None and "another patient's" in viewport.view.message


def test_a_png_beside_a_dicom_film_is_not_known_to_be_another_patient(qtbot, make_window, room):
    """A PNG (a film exported from a viewer, from the same real DICOM film) has no patient identity at all."""
    import numpy as np
    from PIL import Image

    from cxr_engine.reading.read import read_image

    pm, am = room / "P001" / "pm" / "img.dcm", room / "P001" / "am" / "img.dcm"
    png = room / "png" / "film.png"
    png.parent.mkdir()
    pixels = read_image(pm).modality.astype(np.float64)
    scaled = (pixels - pixels.min()) / max(float(np.ptp(pixels)), 1.0) * 255
    Image.fromarray(scaled.astype(np.uint8)).save(png)
    window = make_window(show=True)
    open_and_wait(qtbot, window, room)
    select(qtbot, window, pm)
    comparison, viewport = window.comparison, window.comparison.viewports[0]
    with qtbot.waitSignal(viewport.shown, timeout=WAIT_MS):
        comparison.compare_with(png)
    assert comparison.panes[1].caption.text().startswith("⚠ Patient not known to be the same: film.png")
    with qtbot.waitSignal(viewport.shown, timeout=WAIT_MS):
        comparison.compare_with(am)
    select(qtbot, window, png)  # the PNG current: DOE^JOHN's prior beside it is kept, said not known to be the same
    assert viewport.path == am
    assert comparison.panes[1].caption.text().startswith("⚠ Patient not known to be the same: DOE, JOHN")


def test_an_unidentified_current_film_does_not_hide_two_different_patients_in_the_panes(qtbot, make_window, room):
    """A tester's finding: with DOE^JOHN and ROE^JANE in two panes, making an unidentified film current captioned
    both "not known to be the same", losing ROE's red "Another patient" though the two are known to differ."""
    pm, am = room / "P001" / "pm" / "img.dcm", room / "P001" / "am" / "img.dcm"
    anonymous, other = room / "anon" / "img.dcm", room / "P002" / "img.dcm"
    window = make_window(show=True)
    open_and_wait(qtbot, window, room)
    select(qtbot, window, pm)
    comparison = window.comparison
    comparison.set_layout("2x2")
    for slot, path in ((0, am), (1, other)):
        with qtbot.waitSignal(comparison.viewports[slot].shown, timeout=WAIT_MS):
            comparison.compare_with(path, slot)
    assert comparison.panes[2].other_patient  # ROE^JANE beside DOE^JOHN
    select(qtbot, window, anonymous)
    assert comparison.viewports[0].path == am and comparison.viewports[1].path == other  # kept: identity unknown
    for pane in comparison.panes[1:3]:
        assert pane.caption.text().startswith("⚠ Another patient: "), pane.caption.text()
        assert pane.other_patient and not pane.unknown_patient
