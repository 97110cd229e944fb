"""The study tree's thumbnail after "View corrected and reclassify" (new-user test, finding 5): it shows the
film as the reader sees it in the viewer (corrected), with an amber corner mark and the correction's note
in its tooltip, so the tree never hides that the stored film differs; another film's thumbnail is left as
it is, and a thumbnail that arrives after the correction is drawn corrected too. Real films: Fake_MONOHR1
(found inverted by the image checks) and CR-MONO1-10-chest, with the bundled classifier on ONNX Runtime."""
from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("PySide6")
pytest.importorskip("pytestqt")
pytest.importorskip("onnxruntime")

from cxr_desktop.study_browser import CORRECTED_MARK_COLOUR, _grey_pixels  # noqa: E402
from cxr_desktop.qimage import to_rgb_array  # noqa: E402
from cxr_engine.models.image_checks import correction_note  # noqa: E402

from desktop_fixtures import FRONTAL, INVERTED_FILM, card, study  # noqa: E402,F401  (fixtures)
from test_desktop import WAIT_MS, make_window, open_and_wait, private_settings, select  # noqa: E402,F401


def _icon_rgb(browser, path):
    icon = browser._images[path].icon(0)
    size = max(icon.availableSizes(), key=lambda s: s.width() * s.height())
    return to_rgb_array(icon.pixmap(size).toImage())


def test_the_thumbnail_shows_the_corrected_film_with_a_mark(qtbot, make_window, study, tmp_path):
    window = make_window(show=True)
    window.classification.start()
    open_and_wait(qtbot, window, study)
    browser = window.browser
    film, other = study / INVERTED_FILM, study / FRONTAL
    qtbot.waitUntil(lambda: all(not browser._images[p].icon(0).isNull() for p in (film, other)), timeout=WAIT_MS)
    stored = _grey_pixels(browser._images[film].icon(0))
    other_before = _icon_rgb(browser, other)
    select(qtbot, window, film)
    qtbot.waitUntil(lambda: window.result.image_check is not None and window.result.prediction is not None,
                    timeout=WAIT_MS)
    assert window.result.image_check.reasons == "inverted"
    assert browser.thumbnail_correction(film) == ""

    with qtbot.waitSignal(window.imageShown, timeout=WAIT_MS):
        window.result_panel.correct_button.click()
    assert browser.thumbnail_correction(film) == "inverted"
    shown = _icon_rgb(browser, film)
    mark = max(6, min(stored.shape) // 4)
    height, width = stored.shape
    body = np.ones(stored.shape, bool)
    body[:mark, width - mark:] = False  # the corner mark's square
    assert shown.shape[:2] == stored.shape
    assert np.abs(shown[..., 0][body].astype(int) - (255 - stored[body].astype(int))).max() <= 1  # as the viewer
    corner = shown[1, width - 2]
    assert tuple(corner) == (CORRECTED_MARK_COLOUR.red(), CORRECTED_MARK_COLOUR.green(), CORRECTED_MARK_COLOUR.blue())
    assert correction_note("inverted") in browser._images[film].toolTip(0)
    assert str(film) in browser._images[film].toolTip(0)  # the path stays in the tooltip
    assert np.array_equal(_icon_rgb(browser, other), other_before)  # the other film is left as stored

    # The viewer shows the film inverted back too (its display toggled, the file unchanged).
    from cxr_engine.reading.read import read_image

    assert window.viewer.image.invert != read_image(film).invert

    # A thumbnail that arrives now (a new scan's worker) is drawn corrected, with the mark.
    browser.set_thumbnail(film, stored)
    assert np.array_equal(_icon_rgb(browser, film), shown)
    qtbot.waitUntil(lambda: "corrected" in browser.result_text(film)[0], timeout=WAIT_MS)
    assert browser.thumbnail_correction(film) == "inverted"  # the reclassification kept it
    window.grab().save(str(tmp_path / "corrected_thumbnail.png"))
