"""Export the view as PNG / JPEG (issue 18 item 8): with or without annotations and heat-map, and a
de-identified option that burns no identifiers into the pixels."""
from __future__ import annotations

import struct

import numpy as np
import pytest

pytest.importorskip("PySide6")
pytest.importorskip("pytestqt")

from PIL import Image  # noqa: E402

from cxr_desktop.annotation_model import RULER, TEXT, Annotation, AnnotationStore  # noqa: E402
from cxr_desktop.image_scene import ImageScene  # noqa: E402
from cxr_desktop.image_view import ImageView  # noqa: E402
from cxr_desktop.view_export import ViewExportDialog, ViewExportOptions, export_view, render_view  # noqa: E402
from cxr_desktop.viewer_model import ViewerModel  # noqa: E402
from cxr_engine.reading.read import read_image  # noqa: E402
from cxr_engine.pixels.rendering import Renderer  # noqa: E402

FILM = "1.2.276.0.7230010.3.1.4.8323329.6904.1517875201.850819.dcm"  # SIIM CR, 1024 x 1024, spacing 0.168
NAME, PATIENT_ID = "Testperson^Annabel", "PID-4711-X"


@pytest.fixture()
def named_film(tmp_path, dicom_dir):
    import pydicom

    ds = pydicom.dcmread(dicom_dir / FILM)
    ds.PatientName, ds.PatientID, ds.PatientBirthDate = NAME, PATIENT_ID, "19610203"
    path = tmp_path / "named.dcm"
    ds.save_as(path)
    return path


@pytest.fixture()
def view(qtbot, named_film):
    image = read_image(named_film)
    model = ViewerModel()
    scene = ImageScene(model, AnnotationStore())
    view = ImageView(scene)
    qtbot.addWidget(view)
    view.resize(700, 700)
    view.show()
    qtbot.waitExposed(view)
    model.set_image(image, Renderer(image))
    view.fit()
    scene.commit(Annotation(RULER, ((200.0, 300.0), (700.0, 300.0))))
    scene.commit(Annotation(TEXT, ((150.0, 600.0),), "Annabel Testperson PID-4711-X: left base"))
    heat = np.zeros(image.shape, np.float32)
    heat[400:700, 300:650] = 1.0
    model.set_heatmap(heat, "covid", 0.9)
    model.set_heatmap_visible(True)
    return view


def png_chunks(data: bytes) -> list[str]:
    chunks, at = [], 8
    while at < len(data):
        length, kind = struct.unpack(">I4s", data[at:at + 8])
        chunks.append(kind.decode("ascii"))
        at += 12 + length
    return chunks


def test_the_layers_are_in_or_out_as_asked(view):
    plain = render_view(view, ViewExportOptions(annotations=False, heatmap=False))
    with_heat = render_view(view, ViewExportOptions(annotations=False, heatmap=True))
    with_marks = render_view(view, ViewExportOptions(annotations=True, heatmap=False))
    assert plain.shape == (1024, 1024, 3)  # the film's own resolution
    heat_diff = np.abs(with_heat.astype(int) - plain).sum(axis=2) > 30
    assert heat_diff[450:650, 350:600].mean() > 0.9 and heat_diff[:300, :].mean() < 0.01
    mark_diff = np.abs(with_marks.astype(int) - plain).sum(axis=2) > 30
    assert mark_diff[295:306, 250:650].any() and not mark_diff[800:, 800:].any()
    assert np.array_equal(plain[..., 0], plain[..., 1])  # grey without layers


def test_deidentified_export_burns_no_identifiers(view, tmp_path):
    scene = view.image_scene
    full = render_view(view, ViewExportOptions(corner_text=True))
    deidentified = render_view(view, ViewExportOptions(deidentify=True, corner_text=True))
    no_corner = render_view(view, ViewExportOptions(corner_text=False))
    corner = np.abs(full.astype(int) - no_corner).sum(axis=2) > 30
    assert corner[:120, :400].any()  # the name, ID and birth date block is burned in when asked ...
    # ... and never when de-identifying: the picture equals one whose note reads as redacted.
    (note,) = [item for item in scene.annotation_items() if hasattr(item, "set_text")]
    original = note.text()
    note.setText("[removed] [removed] [removed]: left base")
    try:
        expected = render_view(view, ViewExportOptions(corner_text=False))
    finally:
        note.setText(original)
    assert np.array_equal(deidentified, expected)
    assert not np.array_equal(deidentified, no_corner)  # the note itself was changed in the picture
    assert note.text() == original  # and only for the export

    png = export_view(view, tmp_path / "view.png", ViewExportOptions(deidentify=True))
    assert set(png_chunks(png.read_bytes())) == {"IHDR", "IDAT", "IEND"}  # no text or time chunks
    assert np.array_equal(np.asarray(Image.open(png).convert("RGB")), deidentified)
    jpeg = export_view(view, tmp_path / "view.JPG", ViewExportOptions(deidentify=True))
    data = jpeg.read_bytes()
    assert data[:2] == b"\xff\xd8" and b"Exif" not in data and b"\xff\xfe" not in data  # no EXIF, no comment
    assert NAME.split("^")[0].encode() not in data and PATIENT_ID.encode() not in data
    decoded = np.asarray(Image.open(jpeg).convert("RGB")).astype(int)
    assert np.abs(decoded - deidentified).mean() < 3.0


def test_a_bad_suffix_is_refused_with_the_file_name(view, tmp_path):
    with pytest.raises(ValueError, match="view.tiff: the file name must end in .png, .jpg or .jpeg"):
        export_view(view, tmp_path / "view.tiff", ViewExportOptions())
    assert not (tmp_path / "view.tiff").exists()


def test_visible_area_exports_what_the_viewer_shows(view):
    view.set_zoom(view.zoom * 3)
    part = render_view(view, ViewExportOptions(visible_area=True, annotations=False, heatmap=False))
    whole = render_view(view, ViewExportOptions(annotations=False, heatmap=False))
    assert part.shape[0] < whole.shape[0] / 2 and part.shape[1] < whole.shape[1] / 2


def test_the_dialog_never_offers_corner_text_with_deidentification(qtbot):
    dialog = ViewExportDialog(heatmap_available=False)
    qtbot.addWidget(dialog)
    assert not dialog.heatmap.isEnabled() and not dialog.options().heatmap
    dialog.corner_text.setChecked(True)
    dialog.deidentify.setChecked(True)
    assert not dialog.corner_text.isEnabled() and not dialog.corner_text.isChecked()
    options = dialog.options()
    assert options.deidentify and not options.corner_text
