"""Measurement labels never cover the viewer's corner text, and the PDF's picture numbers its marks
(radiologist tester, sessions 2 and 4: ROI and ruler labels drawn over "rotated 90° flipped H", the zoom and
the heat-map caption, a laterality risk; in the PDF's ~350 px "Image as displayed" the labels kept their
screen size and their stacked blocks hid the measured regions)."""
from __future__ import annotations

import io

import pytest

pytest.importorskip("PySide6")
pytest.importorskip("pytestqt")

from PySide6.QtCore import QPointF, QRectF  # noqa: E402

from cxr_desktop.annotation_model import ELLIPSE, RECTANGLE, RULER, Annotation  # noqa: E402
from cxr_desktop.corner_layout import corner_blocks, corner_text_rects  # noqa: E402
from cxr_desktop.label_layout import arranged_labels, measurement_labels  # noqa: E402
from cxr_desktop.report_export import ExportRequest  # noqa: E402

from test_desktop import (WAIT_MS, card, make_window, open_and_wait, private_settings, select,  # noqa: E402,F401
                          study)


def marks(width: float, height: float) -> list[Annotation]:
    """An ellipse, a rectangle and a ruler in the film's lower right, where the labels are pushed to the
    viewport's bottom-right corner once the film is zoomed, rotated and flipped."""
    return [Annotation(ELLIPSE, ((0.55 * width, 0.6 * height), (0.8 * width, 0.85 * height))),
            Annotation(RECTANGLE, ((0.6 * width, 0.62 * height), (0.82 * width, 0.88 * height))),
            Annotation(RULER, ((0.5 * width, 0.9 * height), (0.9 * width, 0.9 * height)))]


def shown_labels(view) -> list[QRectF]:
    return [label.deviceTransform(view.viewportTransform()).mapRect(label.boundingRect())
            for label in measurement_labels(view.image_scene)]


def test_a_label_is_moved_off_a_keep_clear_rectangle_and_off_the_others():
    port = QRectF(0, 0, 400, 300)
    corner = QRectF(250, 230, 150, 70)  # bottom-right corner text
    boxes = [QRectF(300, 280, 120, 60), QRectF(300, 280, 120, 60), QRectF(290, 270, 60, 20)]
    placed = [box.translated(dx, dy) for box, (dx, dy) in zip(boxes, arranged_labels(boxes, port, keep_clear=[corner]))]
    for i, rect in enumerate(placed):
        assert port.contains(rect) and not rect.intersects(corner), rect
        assert not any(rect.intersects(other) for other in placed[i + 1:]), placed


@pytest.mark.parametrize("zoom", [1.0, 2.5])
def test_labels_keep_off_the_corner_text_when_zoomed_rotated_and_flipped(qtbot, make_window, study, zoom):
    window = make_window(show=True)
    window.resize(1400, 900)
    open_and_wait(qtbot, window, study)
    select(qtbot, window, study / "siim.dcm")
    viewer, view = window.viewer, window.view
    viewer.set_corner_overlay(True)
    height, width = viewer.image.shape
    for annotation in marks(width, height):
        window.scene.commit(annotation)
    window.acts.rotate.trigger()
    window.acts.flip_h.trigger()
    view.set_zoom(view.zoom * zoom)
    view.viewport().repaint()
    corners = corner_text_rects(view)
    assert any("flipped H" in block for *_, block in corner_blocks(view))
    assert len(corners) >= 3
    labels = shown_labels(view)
    assert len(labels) == 3
    port = QRectF(view.viewport().rect())
    for i, rect in enumerate(labels):
        assert port.contains(rect), rect
        assert not any(rect.intersects(corner) for corner in corners), (rect, corners)
        assert not any(rect.intersects(other) for other in labels[i + 1:]), labels


def test_the_pdf_picture_numbers_the_marks_as_the_pages_list(qtbot, make_window, study, tmp_path):
    pypdf = pytest.importorskip("pypdf")
    window = make_window(show=True)
    open_and_wait(qtbot, window, study)
    select(qtbot, window, study / "siim.dcm")
    scene, path = window.scene, window.viewer.path
    height, width = window.viewer.image.shape
    items = [scene.commit(annotation) for annotation in marks(width, height)]
    full = [item.label_text() for item in items]
    drawn = []
    render = scene.render

    def spy(*args):  # the labels' texts as the export draws them
        labels = sorted(measurement_labels(scene), key=lambda label: items.index(label.parentItem()))
        drawn.append([label.text() for label in labels])
        return render(*args)

    scene.render = spy
    with qtbot.waitSignal(window.exportFinished, timeout=WAIT_MS):
        window.start_export(ExportRequest((path,), tmp_path / "marks.pdf", False))
    del scene.render
    assert drawn and drawn[0] == ["1", "2", "3"], drawn
    assert [item.label_text() for item in items] == full  # the screen's labels back as they were
    pages = pypdf.PdfReader(io.BytesIO((tmp_path / "marks.pdf").read_bytes())).pages
    text = " ".join(" ".join(page.extract_text() for page in pages).split())
    for number, name in ((1, "Ellipse ROI"), (2, "Rectangle ROI"), (3, "Ruler")):
        assert f"{number}. {name}:" in text, text[:2000]
