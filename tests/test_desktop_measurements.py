"""Measurements (issue 18 item 7): ROI statistics in modality units against a hand computation on a
real film, the angle tool, and ruler / arrow end points dragged with the mouse."""
from __future__ import annotations

import math

import numpy as np
import pytest

pytest.importorskip("PySide6")
pytest.importorskip("pytestqt")

from PySide6.QtCore import QEvent, QPointF, Qt  # noqa: E402

from cxr_desktop.annotation_model import (  # noqa: E402
    ANGLE, ARROW, ELLIPSE, RECTANGLE, RULER, Annotation, AnnotationStore, measure,
)
from cxr_desktop.image_scene import ImageScene  # noqa: E402
from cxr_desktop.image_view import NAVIGATE, ImageView  # noqa: E402
from cxr_desktop.viewer_model import ViewerModel  # noqa: E402
from cxr_engine.reading.read import read_image  # noqa: E402
from cxr_engine.pixels.rendering import Renderer  # noqa: E402
from cxr_engine.pixels.roi import angle_degrees, roi_stats  # noqa: E402

from test_desktop import drag, mouse  # noqa: E402

# DX, MONOCHROME1, 12 bits stored, Rescale 1 / 0 (US); Pixel Spacing 0.16 mm equal to its Imager Pixel Spacing with
# no calibration type: not corrected for magnification, so lengths and areas say "(detector)" (PS3.3 10.7.1.3)
FILM = "966_fixed.dcm"


_RAW = {}


def by_hand(path, kind, corner_a, corner_b, slope=1.0, intercept=0.0):
    """Mean, SD, min, max and area of the region, from pydicom's stored values alone: every pixel
    whose centre lies inside, values times the Rescale Slope plus the Intercept."""
    import pydicom

    if path not in _RAW:
        ds = pydicom.dcmread(path)
        _RAW[path] = ds.pixel_array.astype(np.float64), tuple(float(v) for v in ds.PixelSpacing)
    stored, (row_mm, col_mm) = _RAW[path]
    rows, cols = np.mgrid[0:stored.shape[0], 0:stored.shape[1]]
    x, y = cols + 0.5, rows + 0.5
    (xa, ya), (xb, yb) = corner_a, corner_b
    x0, x1, y0, y1 = min(xa, xb), max(xa, xb), min(ya, yb), max(ya, yb)
    if kind == RECTANGLE:
        inside = (x >= x0) & (x <= x1) & (y >= y0) & (y <= y1)
    else:
        cx, cy, rx, ry = (x0 + x1) / 2, (y0 + y1) / 2, (x1 - x0) / 2, (y1 - y0) / 2
        inside = ((x - cx) / rx) ** 2 + ((y - cy) / ry) ** 2 <= 1.0
    values = stored[inside] * slope + intercept
    area = (x1 - x0) * (y1 - y0) * (math.pi / 4 if kind == ELLIPSE else 1.0) * row_mm * col_mm
    return values.mean(), values.std(), values.min(), values.max(), int(inside.sum()), area


@pytest.fixture(scope="module")
def film(dicom_dir):
    return dicom_dir / FILM


@pytest.fixture(scope="module")
def image(film):
    return read_image(film)


@pytest.mark.parametrize("kind", [ELLIPSE, RECTANGLE])
def test_roi_statistics_equal_a_hand_computation_on_a_real_film(film, image, kind):
    corners = ((812.3, 640.7), (1203.9, 1011.2))
    stats = roi_stats(image, kind, *corners)
    mean, sd, low, high, n, area = by_hand(film, kind, *corners)
    assert stats.pixels == n and stats.padding == 0
    assert stats.mean == pytest.approx(mean, rel=1e-9) and stats.sd == pytest.approx(sd, rel=1e-9)
    assert (stats.minimum, stats.maximum) == (low, high)
    assert stats.area_unit == "mm²" and stats.area == pytest.approx(area, rel=1e-9)
    assert f"mean {mean:.1f}  SD {sd:.1f}" in stats.lines()[0]


def test_roi_statistics_are_in_modality_units(film, tmp_path):
    """The same film with Rescale Slope 2 and Intercept -1024: statistics follow the modality LUT."""
    import pydicom

    ds = pydicom.dcmread(film)
    ds.RescaleSlope, ds.RescaleIntercept = 2, -1024
    rescaled = tmp_path / "rescaled.dcm"
    ds.save_as(rescaled)
    corners = ((300.0, 400.0), (700.0, 650.0))
    stats = roi_stats(read_image(rescaled), ELLIPSE, *corners)
    mean, sd, low, high, n, _ = by_hand(film, ELLIPSE, *corners, slope=2.0, intercept=-1024.0)
    assert stats.pixels == n
    assert stats.mean == pytest.approx(mean, rel=1e-9) and stats.sd == pytest.approx(sd, rel=1e-9)
    assert (stats.minimum, stats.maximum) == (low, high)


def test_angles_are_measured_at_the_physical_aspect():
    assert angle_degrees((0, 0), (10, 0), (10, 10)) == pytest.approx(90.0)
    assert angle_degrees((20, 0), (10, 0), (10, 10)) == pytest.approx(90.0)
    assert angle_degrees((0, 0), (10, 0), (20, 0)) == pytest.approx(180.0)
    # Rows twice as far apart as columns: (10, 10) from the vertex is at 63.4°, not 45°.
    assert angle_degrees((10, 0), (0, 0), (10, 10), (0.2, 0.1)) == pytest.approx(math.degrees(math.atan(2)))
    assert angle_degrees((0, 0), (0, 0), (5, 5)) == 0.0


# ------------------------------------------------------------------------------------ in the viewer

@pytest.fixture()
def viewer(qtbot, image):
    model = ViewerModel()
    scene = ImageScene(model, AnnotationStore())
    view = ImageView(scene)
    qtbot.addWidget(view)
    view.resize(800, 800)
    view.show()
    qtbot.waitExposed(view)
    model.set_image(image, Renderer(image))
    view.fit()
    return view


def screen(view, x: float, y: float) -> QPointF:
    """The viewport position of image pixel coordinates (x, y)."""
    return QPointF(view.mapFromScene(view.image_scene.image_item.mapToScene(QPointF(x, y))))


def stored(view) -> list[Annotation]:
    return view.image_scene.annotations.for_path(view.model.path)


def item_of(view, annotation_id: int):
    return view.image_scene._annotation_items[annotation_id]


def test_an_ellipse_drawn_with_the_mouse_shows_its_statistics(qtbot, viewer, film):
    viewer.mode = ELLIPSE
    drag(viewer, screen(viewer, 800, 700), screen(viewer, 1200, 1000))
    (annotation,) = stored(viewer)
    mean, sd, low, high, n, area = by_hand(film, ELLIPSE, *annotation.points)
    label = item_of(viewer, annotation.id).label_text()
    assert label.splitlines() == [f"mean {mean:.1f}  SD {sd:.1f}", f"min {low:.1f}  max {high:.1f}",
                                  f"area {area:,.1f} mm² (detector)", f"n = {n:,} pixels"]


def test_the_angle_tool_measures_three_clicked_points(qtbot, viewer):
    viewer.mode = ANGLE
    drag(viewer, screen(viewer, 600, 1200), screen(viewer, 1000, 1200))  # first arm, ending at the vertex
    mouse(viewer, QEvent.Type.MouseMove, screen(viewer, 1000, 900))
    mouse(viewer, QEvent.Type.MouseButtonPress, screen(viewer, 1000, 800), Qt.MouseButton.LeftButton,
          Qt.MouseButton.LeftButton)
    mouse(viewer, QEvent.Type.MouseButtonRelease, screen(viewer, 1000, 800), Qt.MouseButton.LeftButton)
    (annotation,) = stored(viewer)
    assert annotation.kind == ANGLE and len(annotation.points) == 3
    expected = angle_degrees(*annotation.points, (0.16, 0.16))
    assert expected == pytest.approx(90.0, abs=1.0)
    assert item_of(viewer, annotation.id).label_text() == f"{expected:.1f}°"


@pytest.mark.parametrize("kind", [RULER, ARROW])
def test_an_end_point_can_be_dragged_and_the_other_stays(qtbot, viewer, film, kind):
    scene = viewer.image_scene
    item = scene.commit(Annotation(kind, ((500.0, 500.0), (1100.0, 500.0))))
    viewer.mode = NAVIGATE
    drag(viewer, screen(viewer, 1100, 500), screen(viewer, 1100, 1300))
    (annotation,) = stored(viewer)
    (x0, y0), (x1, y1) = annotation.points
    assert (x0, y0) == pytest.approx((500.0, 500.0), abs=1e-6)  # the other end did not move
    assert (x1, y1) == pytest.approx((1100.0, 1300.0), abs=3.0)  # within a few pixels of the release
    if kind == RULER:
        image = viewer.model.image
        assert item.label_text() == str(measure(*annotation.points, image.spacing_mm, image.spacing_source))
        assert item.label_text().endswith(" mm (detector)")


def test_a_rectangle_corner_drag_updates_its_statistics(qtbot, viewer, film):
    scene = viewer.image_scene
    item = scene.commit(Annotation(RECTANGLE, ((700.0, 700.0), (1000.0, 1000.0))))
    before = item.label_text()
    viewer.mode = NAVIGATE
    drag(viewer, screen(viewer, 1000, 1000), screen(viewer, 1300, 1200))
    (annotation,) = stored(viewer)
    assert annotation.points[0] == pytest.approx((700.0, 700.0))
    mean, sd, *_ = by_hand(film, RECTANGLE, *annotation.points)
    assert item.label_text() != before and item.label_text().startswith(f"mean {mean:.1f}  SD {sd:.1f}")


def test_measurements_go_to_the_pdf_lines(qtbot, viewer):
    scene = viewer.image_scene
    scene.commit(Annotation(RULER, ((100.0, 100.0), (100.0, 725.0))))
    scene.commit(Annotation(ANGLE, ((0.0, 0.0), (10.0, 0.0), (10.0, 10.0))))
    lines = scene.measurement_lines()
    assert lines[0] == "Ruler: 100.0 mm (detector)" and lines[1] == "Angle: 90.0°"
