"""Non-square pixels in the desktop (issue 15): the film is shown, exported and measured at its
physical aspect, and the heat-map and the annotations stay on the same image pixels.

Uses the bug case ``nonsquare-pixels.dcm`` (220 rows x 440 columns, Pixel Spacing 0.34\\0.17: as
tall as wide) when ``../shared/bugcases`` is there, else builds a file like it from the real film.
"""
from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("PySide6")
pytest.importorskip("pytestqt")

from PySide6.QtCore import QPointF  # noqa: E402

from cxr_desktop.annotation_model import RECTANGLE, RULER, Annotation  # noqa: E402
from cxr_desktop.image_jobs import thumbnail  # noqa: E402
from cxr_desktop.report_export import ExportRequest  # noqa: E402

from test_desktop import (  # noqa: E402,F401  (fixtures)
    MONO1, card, drag, export, make_window, open_and_wait, private_settings, wait_classified,
)

REPO = Path(__file__).resolve().parents[1]
BUGCASES = Path(os.environ.get("CXR_BUGCASES", REPO.parent / "shared" / "bugcases"))
ROWS, COLS, ASPECT = 220, 440, 2.0


@pytest.fixture()
def nonsquare(tmp_path, dicom_dir) -> Path:
    """A folder with one film whose rows lie twice as far apart as its columns."""
    folder = tmp_path / "nonsquare"
    folder.mkdir()
    case = BUGCASES / "nonsquare-pixels.dcm"
    if case.is_file():
        shutil.copy(case, folder / case.name)
        return folder / case.name
    return make_film(dicom_dir, folder / "nonsquare-pixels.dcm", ROWS, COLS, [0.34, 0.17])


def make_film(dicom_dir: Path, out: Path, rows: int, cols: int, spacing=None, aspect_ratio=None) -> Path:
    """The real MONOCHROME1 film resampled to ``rows`` x ``cols`` with the given Pixel Spacing
    (row, column) or Pixel Aspect Ratio (vertical, horizontal)."""
    import cv2
    import pydicom
    from pydicom.dataset import FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, ImplicitVRLittleEndian

    ds = pydicom.dcmread(dicom_dir / MONO1, force=True)  # the film has no file meta
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ImplicitVRLittleEndian
    original = ds.pixel_array
    pixels = cv2.resize(original, (cols, rows), interpolation=cv2.INTER_AREA)
    ds.Rows, ds.Columns = rows, cols
    ds.PixelData = pixels.astype(original.dtype).tobytes()
    for keyword in ("PixelSpacing", "ImagerPixelSpacing", "PixelAspectRatio"):
        if keyword in ds:
            delattr(ds, keyword)
    if spacing is not None:
        ds.PixelSpacing = spacing
    if aspect_ratio is not None:
        ds.PixelAspectRatio = aspect_ratio
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.file_meta.MediaStorageSOPClassUID = ds.SOPClassUID
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    ds.save_as(out, enforce_file_format=True)
    return out


def scene_point(item, x: float, y: float) -> tuple[float, float]:
    point = item.mapToScene(QPointF(x, y))
    return round(point.x(), 6), round(point.y(), 6)


def test_nonsquare_film_is_shown_and_rendered_at_its_physical_aspect(qtbot, make_window, nonsquare):
    window = make_window(show=True, with_model=False)
    open_and_wait(qtbot, window, nonsquare)
    image = window.viewer.image
    assert image.shape == (ROWS, COLS) and image.pixel_aspect == pytest.approx(ASPECT)
    rect = window.scene.image_item.sceneBoundingRect()
    assert (rect.width(), rect.height()) == pytest.approx((COLS, ROWS * ASPECT))  # as tall as wide
    assert window.viewer.pixel_scale == (1.0, ASPECT)
    on_screen = window.view.mapFromScene(rect).boundingRect()
    assert on_screen.height() / on_screen.width() == pytest.approx(1.0, abs=0.02)
    assert window.scene.render_image().shape == (440, 440, 3)
    # Rotation keeps the physical aspect (the scale applies before it).
    window.acts.rotate.trigger()
    rect = window.scene.image_item.sceneBoundingRect()
    assert (rect.width(), rect.height()) == pytest.approx((ROWS * ASPECT, COLS))
    # The study browser's thumbnail too.
    assert thumbnail(image).shape == (96, 96)


@pytest.mark.parametrize("rows, cols, spacing, aspect_ratio, scale", [
    (300, 100, [0.1, 0.3], None, (3.0, 1.0)),  # columns three times as far apart: stretched across
    (100, 300, None, [3, 1], (1.0, 3.0)),  # no spacing: Pixel Aspect Ratio (vertical\\horizontal)
    (200, 200, [0.2, 0.2], None, (1.0, 1.0)),
])
def test_other_pixel_aspects_are_shown_square(qtbot, make_window, dicom_dir, tmp_path, rows, cols, spacing,
                                              aspect_ratio, scale):
    film = make_film(dicom_dir, tmp_path / "film.dcm", rows, cols, spacing, aspect_ratio)
    window = make_window(show=True, with_model=False)
    open_and_wait(qtbot, window, film)
    rect = window.scene.image_item.sceneBoundingRect()
    assert (rect.width(), rect.height()) == pytest.approx((cols * scale[0], rows * scale[1]))
    assert rect.width() == pytest.approx(rect.height())
    assert window.viewer.pixel_scale == pytest.approx(scale)
    side = round(rect.width())
    assert window.scene.render_image().shape == (side, side, 3)


def test_heatmap_and_annotations_stay_on_the_same_pixels_on_a_nonsquare_film(qtbot, make_window, nonsquare):
    window = make_window(show=True, with_model=False)
    open_and_wait(qtbot, window, nonsquare)
    scene, viewer = window.scene, window.viewer
    heat = np.zeros((ROWS, COLS), np.float32)
    heat[50:60, 300:320] = 1.0  # a hot block 10 rows x 20 columns
    viewer.set_heatmap(heat, "covid")
    box = scene.commit(Annotation(RECTANGLE, ((300.0, 50.0), (320.0, 60.0))))

    # A known image pixel maps to one scene point through the picture, the heat-map and the mark,
    # and that point is at the physical place (rows stretched twice).
    for orientation in ("upright", "rotated", "flipped"):
        if orientation == "rotated":
            window.acts.rotate.trigger()
        elif orientation == "flipped":
            viewer.set_flip(horizontal=True)
        for x, y in ((300.0, 50.0), (320.0, 60.0), (0.0, 0.0), (COLS, ROWS)):
            where = scene_point(scene.image_item, x, y)
            assert scene_point(scene.heatmap_item, x, y) == where
            assert scene_point(box, x, y) == where
    viewer.reset_display()
    assert scene_point(scene.image_item, 310.0, 55.0) == (310.0, 110.0)

    # Rendered: the heat-map's colour and the rectangle's yellow both cover rows 100-120 of the
    # 440 x 440 picture, columns 300-320.
    plain = scene.render_image(heatmap=False, annotations=False).astype(int)
    hot = np.argwhere(np.abs(scene.render_image(heatmap=True, annotations=False).astype(int) - plain).sum(2) > 60)
    assert hot.size and hot.mean(0) == pytest.approx((110, 310), abs=2.0)
    assert hot[:, 0].min() >= 94 and hot[:, 0].max() <= 126  # the layer's smoothing blurs the edge a little
    box.set_label("")  # the rectangle's ROI statistics label (issue 18) is not the geometry checked here
    marked = np.argwhere(np.abs(scene.render_image(heatmap=False, annotations=True).astype(int) - plain).sum(2) > 60)
    assert marked.mean(0) == pytest.approx((110, 310), abs=2.0)
    assert (marked[:, 0].min(), marked[:, 0].max()) == pytest.approx((100, 120), abs=3)
    assert (marked[:, 1].min(), marked[:, 1].max()) == pytest.approx((300, 320), abs=3)


def test_a_ruler_drawn_on_a_nonsquare_film_measures_physical_distance(qtbot, make_window, tmp_path, dicom_dir):
    # 660 x 1320 at 0.34 x 0.17 mm: a 224-mm field of view (the bug case's 75 mm is no chest film's: its spacing
    # is set aside for lengths, which are then in pixels, while its aspect still holds)
    folder = tmp_path / "calibrated"
    folder.mkdir()
    make_film(dicom_dir, folder / "nonsquare.dcm", 660, 1320, [0.34, 0.17])
    window = make_window(show=True, with_model=False)
    open_and_wait(qtbot, window, folder)
    window.acts.tool[RULER].trigger()
    centre = QPointF(window.view.viewport().rect().center())
    drag(window.view, centre, centre + QPointF(120, 0))
    drag(window.view, centre, centre + QPointF(0, 120))
    across, down = window.annotations.for_path(window.viewer.path)
    (x1, y1), (x2, y2) = down.points
    assert abs(y2 - y1) == pytest.approx(abs(across.points[1][0] - across.points[0][0]) / ASPECT, rel=0.05)
    labels = [item.label_text() for item in window.scene.annotation_items()]
    lengths = [float(label.split()[0]) for label in labels]
    assert all(label.endswith(" mm") for label in labels)
    # The same screen length is the same physical length, across or down.
    assert lengths[0] == pytest.approx(lengths[1], rel=0.03)


def drawn_images(pdf: Path) -> list[tuple[float, float, int, int]]:
    """(drawn width, drawn height, pixel width, pixel height) of every image on the first page."""
    from pypdf import PdfReader
    from pypdf.generic import ContentStream

    reader = PdfReader(str(pdf))
    page = reader.pages[0]
    xobjects = page["/Resources"]["/XObject"]
    ctm, stack, found = np.eye(3), [], []
    for operands, operator in ContentStream(page.get_contents(), reader).operations:
        if operator == b"q":
            stack.append(ctm)
        elif operator == b"Q":
            ctm = stack.pop()
        elif operator == b"cm":
            a, b, c, d, e, f = (float(v) for v in operands)
            ctm = np.array([[a, b, 0], [c, d, 0], [e, f, 1]]) @ ctm
        elif operator == b"Do":
            xobject = xobjects[operands[0]].get_object()
            if xobject["/Subtype"] == "/Image":
                found.append((float(np.hypot(*ctm[0, :2])), float(np.hypot(*ctm[1, :2])),
                              int(xobject["/Width"]), int(xobject["/Height"])))
    return found


def test_pdf_export_of_a_nonsquare_film_draws_both_panels_at_the_physical_aspect(
        qtbot, make_window, nonsquare, tmp_path):
    pytest.importorskip("pypdf")
    window = make_window(show=True)
    open_and_wait(qtbot, window, nonsquare)
    wait_classified(qtbot, window)
    out = export(qtbot, window, ExportRequest((nonsquare,), tmp_path / "nonsquare.pdf", False))
    panels = drawn_images(out)
    assert len(panels) == 2  # the film and its heat-map
    for drawn_w, drawn_h, pixels_w, pixels_h in panels:
        # The scene renders square pixels already (440 x 440), and the page does not stretch
        # them again: drawn as tall as wide, not half (squashed) nor twice (corrected twice).
        assert pixels_h / pixels_w == pytest.approx(1.0, abs=0.01)
        assert drawn_h / drawn_w == pytest.approx(1.0, abs=0.01)
