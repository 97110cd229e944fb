"""The app's out-of-scope banner and "View corrected and reclassify" (pytest-qt, offscreen), with the
bundled classifier on ONNX Runtime and the bundled image checks, on a real film stored upside down."""
from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("PySide6")
pytest.importorskip("pytestqt")
pytest.importorskip("onnxruntime")

import cv2  # noqa: E402

from cxr_engine.reading.read import read_image  # noqa: E402

from desktop_fixtures import card  # noqa: E402,F401  (fixture)
from test_desktop import WAIT_MS, make_window, open_and_wait, private_settings  # noqa: E402,F401  (fixtures)


@pytest.fixture()
def upside_down(tmp_path, dicom_dir):
    film = (read_image(dicom_dir / "RG1_J2KI.dcm").display() * 255).astype(np.uint8)
    folder = tmp_path / "study"
    folder.mkdir()
    cv2.imwrite(str(folder / "upside_down.png"), np.rot90(film, 2))
    return folder


def test_banner_and_view_corrected_and_reclassify(qtbot, make_window, upside_down):
    window = make_window(show=True)
    window.classification.start()
    open_and_wait(qtbot, window, upside_down)
    panel = window.result_panel
    qtbot.waitUntil(lambda: window.result.image_check is not None and window.result.prediction is not None,
                    timeout=WAIT_MS)
    assert window.result.image_check.reasons == "rotated-180"
    assert panel.scope_banner.isVisible() and "upside down" in panel.scope_banner.text()
    assert "not reliable" in panel.scope_banner.text() and "not reliable either" in panel.heatmap_caption.text()
    assert panel.correct_button.isVisible()
    shown_before = window.viewer.image
    from cxr_desktop.annotation_model import Annotation

    mark = window.annotations.add(shown_before.path, Annotation("text", ((4.5, 8.5),), "here"))
    window.annotations.history.seal()
    window.annotations.update(shown_before.path, mark.moved(6.0, 12.0))  # the reader drags it: an undo step
    window.annotations.history.seal()
    mark = window.annotations.get(shown_before.path, mark.id)
    assert mark.points == ((10.5, 20.5),)
    with qtbot.waitSignal(window.imageShown, timeout=WAIT_MS):
        panel.correct_button.click()
    qtbot.waitUntil(lambda: window.result.image_check is not None and window.result.prediction is not None
                    and window.viewer.heatmap is not None, timeout=WAIT_MS)
    assert not window.result.image_check.flagged
    assert "upside down" not in panel.scope_banner.text() and not panel.correct_button.isVisible()
    np.testing.assert_array_equal(window.viewer.image.modality, np.rot90(shown_before.modality, 2))
    assert window.viewer.heatmap.shape == window.viewer.image.shape
    (moved,) = window.annotations.for_path(shown_before.path)  # the mark stays on the same pixel of the film
    (x, y), rows, cols = moved.points[0], *shown_before.shape
    assert moved.id == mark.id and (x, y) == (cols - 10.5, rows - 20.5)
    assert window.viewer.image.modality[int(y), int(x)] == shown_before.modality[20, 10]
    # Undoing the drag made before the correction puts the mark where it then lay on the anatomy, on the
    # film as now shown (it went back to (4.5, 8.5) of the film turned back: other anatomy).
    window.annotations.history.stack.undo()
    (undone,) = window.annotations.for_path(shown_before.path)
    assert undone.points == ((cols - 4.5, rows - 8.5),)
    window.annotations.history.stack.redo()
    assert window.annotations.for_path(shown_before.path)[0].points == ((cols - 10.5, rows - 20.5),)


def open_flipped(qtbot, make_window, tmp_path, dicom_dir, name: str):
    """The app on a PNG of ``name``'s film flipped top to bottom, once its checks and prediction are in."""
    film = (read_image(dicom_dir / name).display() * 255).astype(np.uint8)
    folder = tmp_path / "flipped"
    folder.mkdir()
    cv2.imwrite(str(folder / "flipped.png"), np.ascontiguousarray(film[::-1]))
    window = make_window(show=True)
    window.classification.start()
    open_and_wait(qtbot, window, folder)
    qtbot.waitUntil(lambda: window.result.image_check is not None and window.result.prediction is not None,
                    timeout=WAIT_MS)
    return window


def test_a_flipped_film_is_shown_flipped_back_not_mirrored(qtbot, make_window, tmp_path, dicom_dir):
    """A film stored flipped top to bottom: the banner says flipped, and the corrected view is the film itself."""
    window = open_flipped(qtbot, make_window, tmp_path, dicom_dir, "RG1_J2KI.dcm")
    panel = window.result_panel
    assert window.result.image_check.scope_reasons == "rotated-180;mirrored"
    assert "flipped top to bottom" in panel.scope_banner.text() and panel.correct_button.isVisible()
    stored = window.viewer.image.stored
    with qtbot.waitSignal(window.imageShown, timeout=WAIT_MS):
        panel.correct_button.click()
    qtbot.waitUntil(lambda: window.result.image_check is not None and window.result.prediction is not None,
                    timeout=WAIT_MS)
    np.testing.assert_array_equal(window.viewer.image.stored, stored[::-1])  # flipped back, not turned


def test_a_turned_film_it_cannot_tell_is_flagged_not_offered_and_the_panel_says_why(qtbot, make_window, tmp_path,
                                                                                     dicom_dir):
    from cxr_engine.models.image_checks import NOT_CORRECTED

    window = open_flipped(qtbot, make_window, tmp_path, dicom_dir, "966_fixed.dcm")
    assert window.result.image_check.withheld and not window.result_panel.correct_button.isVisible()
    assert NOT_CORRECTED in window.result.warnings and NOT_CORRECTED in window.result_panel.warnings_label.text()
