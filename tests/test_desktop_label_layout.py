"""Measurement labels never overprint each other and stay inside the view (tester finding 10: in 1×2 and
2×2 the ellipse and rectangle labels ran into each other, "mean114.2nSD 39.40")."""
from __future__ import annotations

import pytest

pytest.importorskip("PySide6")
pytest.importorskip("pytestqt")

from PySide6.QtCore import QPointF, QRectF  # noqa: E402

from cxr_desktop.annotation_model import ELLIPSE, RECTANGLE  # noqa: E402
from cxr_desktop.image_view import arranged_labels  # noqa: E402

from test_desktop import (  # noqa: E402,F401  (fixtures)
    card, drag, make_window, open_and_wait, private_settings, select, study,
)


def test_overlapping_boxes_are_moved_apart_and_kept_inside():
    port = QRectF(0, 0, 300, 200)
    boxes = [QRectF(100, 50, 120, 45), QRectF(110, 60, 120, 45), QRectF(250, 190, 120, 45)]
    shifts = arranged_labels(boxes, port)
    placed = [box.translated(dx, dy) for box, (dx, dy) in zip(boxes, shifts)]
    assert shifts[0] == (0.0, 0.0)
    for i, a in enumerate(placed):
        assert port.contains(a), a
        assert not any(a.intersects(b) for b in placed[i + 1:]), placed


def test_two_roi_labels_side_by_side_do_not_overprint(qtbot, make_window, study):
    window = make_window(show=True)
    open_and_wait(qtbot, window, study)
    select(qtbot, window, study / "siim.dcm")
    view = window.view
    w, h = view.viewport().width(), view.viewport().height()
    for kind, start, end in ((ELLIPSE, (0.2, 0.2), (0.45, 0.4)), (RECTANGLE, (0.3, 0.25), (0.5, 0.42))):
        window.acts.tool[kind].trigger()
        drag(view, QPointF(start[0] * w, start[1] * h), QPointF(end[0] * w, end[1] * h))
    view.viewport().repaint()
    shown = [item._label.deviceTransform(view.viewportTransform()).mapRect(item._label.boundingRect())
             for item in window.scene.annotation_items()]
    assert len(shown) == 2
    assert not shown[0].intersects(shown[1]), shown
    assert all(QRectF(view.viewport().rect()).contains(r) for r in shown), shown


def test_an_exported_picture_keeps_a_label_near_its_edge_whole(qtbot, dicom_dir):
    """A ruler along the right edge of the film: its label ("… mm") would run past the picture's right
    edge; the export moves it inside (the view's own placement is for the screen, not the picture)."""
    import numpy as np

    from cxr_desktop.annotation_model import RULER, Annotation, AnnotationStore
    from cxr_desktop.image_scene import ImageScene
    from cxr_desktop.image_view import ImageView
    from cxr_desktop.viewer_model import ViewerModel
    from cxr_engine.reading.read import read_image
    from cxr_engine.pixels.rendering import Renderer

    image = read_image(dicom_dir / "966_fixed.dcm")  # large enough for the export's text scale (> 1)
    model = ViewerModel()
    scene = ImageScene(model, AnnotationStore())
    view = ImageView(scene)
    qtbot.addWidget(view)
    view.resize(900, 900)
    view.show()
    qtbot.waitExposed(view)
    model.set_image(image, Renderer(image))
    height, width = image.shape
    item = scene.commit(Annotation(RULER, ((width - 20.0, 0.3 * height), (width - 20.0, 0.6 * height))))
    assert item.label_text().endswith(" mm (detector)")  # its Pixel Spacing repeats its Imager Pixel Spacing
    rgb = scene.render_image(max_side=1024)
    factor = rgb.shape[1] / width
    assert item._label.scale() == 1.0 and factor < 1.0
    rows = slice(round(0.6 * height * factor) + 15, round(0.6 * height * factor) + 80)  # below the end cap

    def label_coloured(block):
        return ((block[..., 0] > 200) & (block[..., 1] > 160) & (block[..., 2] < 90)).any()

    assert label_coloured(rgb[rows, -250:-24]), "the label is not drawn left of the ruler's end"
    assert not label_coloured(rgb[rows, -3:]), "the label runs past the picture's right edge"
    assert np.array_equal(np.array([item._label.transform().dx()]), np.array([0.0]))  # reset after the export
