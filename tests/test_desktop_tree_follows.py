"""The study tree follows the film the program shows (new-user test, finding 3): ``MainWindow.show_image``
(a test, the comparison, an opened file) selects the film in the tree and scrolls to it, and the tree's
change of selection does not load it a second time. Real films: copies of the SIIM CR film, each its own
SOP Instance, so the tree holds more rows than it shows."""
from __future__ import annotations

import pydicom
import pytest

pytest.importorskip("PySide6")
pytest.importorskip("pytestqt")

from PySide6.QtWidgets import QApplication  # noqa: E402

from test_desktop import (  # noqa: E402,F401  (fixtures)
    SIIM, WAIT_MS, card, make_window, open_and_wait, private_settings,
)

FILMS = 12


def _in_sight(browser, item) -> bool:
    """Whether ``item``'s row lies within the tree's viewport, top to bottom."""
    rect = browser.visualItemRect(item)
    return rect.isValid() and rect.top() >= 0 and rect.bottom() < browser.viewport().height()


@pytest.fixture()
def many_films(tmp_path, dicom_dir):
    folder = tmp_path / "many"
    folder.mkdir()
    ds = pydicom.dcmread(dicom_dir / SIIM)
    for i in range(FILMS):
        ds.SOPInstanceUID = pydicom.uid.generate_uid()
        ds.InstanceNumber = i + 1
        ds.save_as(folder / f"film{i:02d}.dcm")
    return folder


def test_show_image_selects_and_scrolls_to_the_film_without_a_second_load(qtbot, make_window, many_films,
                                                                          monkeypatch):
    window = make_window(show=True, with_model=False)
    window.resize(800, 500)
    first = open_and_wait(qtbot, window, many_films)
    browser = window.browser
    assert browser.current_path() == first and browser.image_count() == FILMS
    last = browser.image_paths()[-1]
    item = browser._images[last]
    QApplication.processEvents()
    assert not _in_sight(browser, item), "the last film must start out of sight"

    wanted = []
    show = window.showing.show
    monkeypatch.setattr(window.showing, "show", lambda path: (wanted.append(path), show(path)))
    selected = []
    browser.imageSelected.connect(selected.append)
    with qtbot.waitSignal(window.imageShown, timeout=WAIT_MS, check_params_cb=lambda path: path == last):
        window.show_image(last)
    QApplication.processEvents()

    assert browser.current_path() == last and item.isSelected()
    assert _in_sight(browser, item)  # scrolled to
    assert window.viewer.path == last
    assert wanted == [last] and selected == []  # one load; the tree did not ask for it again

    # The reader's own steps still load what they select, once each.
    with qtbot.waitSignal(window.imageShown, timeout=WAIT_MS):
        assert browser.select_next(-1)
    assert wanted == [last, browser.image_paths()[-2]] and window.viewer.path == browser.image_paths()[-2]
