"""The out-of-scope banner (new-user test, finding 4a): each reason on its own line, and every line of it
shown in the result panel (no label of the panel is given less height than its text needs)."""
from __future__ import annotations

import shutil

import pytest

pytest.importorskip("PySide6")
pytest.importorskip("pytestqt")

from PySide6.QtWidgets import QApplication  # noqa: E402

from cxr_engine.models.image_checks import ATYPICAL, INVERTED, REASON_WORDS, banner  # noqa: E402
from cxr_engine.models.suitability import AGE_OUTSIDE_TRAINING, LATERAL  # noqa: E402

from test_desktop import WAIT_MS, card, make_window, open_and_wait, private_settings  # noqa: E402,F401

#: The reasons the RSNA film 00aecb01… (a 6-year-old's AP film) gets, the tester's example.
CHILD_FILM = f"{AGE_OUTSIDE_TRAINING};{ATYPICAL}"


def test_several_reasons_are_listed_one_a_line():
    lines = banner(f"{CHILD_FILM};{LATERAL}").split("\n")
    assert lines[0] == "Outside what this model was trained for:"
    assert lines[1:4] == [f"• {REASON_WORDS[r]}" for r in (AGE_OUTSIDE_TRAINING, ATYPICAL, LATERAL)]
    assert lines[4:] == ["The probabilities below are not reliable."]


def test_one_reason_stays_on_the_first_line():
    assert banner(INVERTED).split("\n") == [f"Outside what this model was trained for: {REASON_WORDS[INVERTED]}.",
                                            "The probabilities below are not reliable."]


def test_the_panel_shows_every_line_of_the_banner(qtbot, make_window, shared_data, tmp_path):
    """The tester's film in a 1440 × 900 window: the banner's label gets the height its lines need."""
    film = shared_data / "dicom_rsna" / "00aecb01-a116-45a2-956c-08d2fa55433f.dcm"
    if not film.exists():
        pytest.skip(f"not found: {film}")
    folder = tmp_path / "child"
    folder.mkdir()
    shutil.copy(film, folder / film.name)
    window = make_window(show=True)
    window.resize(1440, 900)
    window.classification.start()
    open_and_wait(qtbot, window, folder)
    label = window.result_panel.scope_banner
    qtbot.waitUntil(lambda: label.isVisible() and label.text().count("\n• ") == 2, timeout=WAIT_MS)
    for _ in range(3):
        QApplication.processEvents()
    needed = label.heightForWidth(label.width())
    assert label.height() >= needed, (label.width(), label.height(), needed)
