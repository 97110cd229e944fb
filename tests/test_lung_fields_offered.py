"""The lung outline and the cardiothoracic ratio are offered on projection radiographs only
(``suitability.lung_fields_refusal``): on pydicom's CT_small.dcm the desktop used to outline "lungs"
around a vertebra and offer a CTR (its test is in test_desktop_lungs.py)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from cxr_engine.pixels.image import CxrImage, ImageMetadata
from cxr_engine.models.suitability import lung_fields_refusal


def image(modality: str, source_format: str = "dicom") -> CxrImage:
    pixels = np.zeros((8, 8), np.uint16)
    return CxrImage(Path("x"), pixels, pixels.astype(np.float32), metadata=ImageMetadata(modality=modality),
                    source_format=source_format)


@pytest.mark.parametrize("modality", ["CR", "DX", "DR", "RG", " dx "])
def test_projection_radiographs_are_offered(modality):
    assert lung_fields_refusal(image(modality)) == ""


@pytest.mark.parametrize("source_format", ["png", "jpeg"])
def test_png_and_jpeg_without_a_header_are_offered(source_format):
    assert lung_fields_refusal(image("", source_format)) == ""


@pytest.mark.parametrize("modality", ["CT", "MR", "US", "NM", "PT", "RTIMAGE", "SEG", "OT"])
def test_other_modalities_are_refused_with_a_plain_reason(modality):
    assert lung_fields_refusal(image(modality)) == f"lung fields are drawn on chest radiographs only (this is {modality})"


def test_a_dicom_without_a_modality_is_refused():
    assert "records no modality" in lung_fields_refusal(image(""))


def test_the_real_ct_slice_is_refused():
    pydicom_data = pytest.importorskip("pydicom.data")
    from cxr_engine.reading.read import read_image

    ct = read_image(pydicom_data.get_testdata_file("CT_small.dcm"))
    assert lung_fields_refusal(ct) == "lung fields are drawn on chest radiographs only (this is CT)"


# ------------------------------------------------------------------ films the image checks flag

#: Real films the bundled image checks flag, with their reasons, and the same film stored upright.
INVERTED = "Fake_MONOHR1.dcm"  # stored as a negative
UPSIDE_DOWN = "JPEG2KLossless_1s_1f_u_16_16.dcm"  # a negative, upside down
UPRIGHT_TWIN = "1.2.276.0.7230010.3.1.4.8323329.6904.1517875201.850819.dcm"  # Fake_MONOHR1's film, stored right


def checked(dicom_dir: Path, name: str):
    from cxr_engine.models.image_checks import check_image
    from cxr_engine.reading.read import read_image

    path = dicom_dir / name
    if not path.is_file():
        pytest.skip(f"{path} is not on this machine")
    film = read_image(path)
    return film, check_image(film)


@pytest.mark.parametrize("name, words", [
    (INVERTED, "the film looks shown as a negative (inverted)"),
    (UPSIDE_DOWN, "flipped top to bottom (upside down and mirrored left-right)"),
])
def test_a_film_the_image_checks_find_inverted_or_turned_is_refused_until_viewed_corrected(dicom_dir, name, words):
    from cxr_engine.models.image_checks import check_image, reoriented

    film, check = checked(dicom_dir, name)
    assert check is not None and check.correctable
    refusal = lung_fields_refusal(film, check.scope_reasons)
    assert words in refusal and refusal.endswith(
        "view it corrected to draw the lung fields and the cardiothoracic ratio")
    assert lung_fields_refusal(film) == ""  # the header alone (a CR / DX film) does not refuse it
    shown_corrected = reoriented(film, check.correction)
    assert lung_fields_refusal(shown_corrected, check_image(shown_corrected).scope_reasons) == ""


def test_the_same_film_stored_upright_is_offered(dicom_dir):
    film, check = checked(dicom_dir, UPRIGHT_TWIN)
    assert lung_fields_refusal(film, check.scope_reasons) == ""


@pytest.mark.parametrize("reasons", ["", "cropped", "atypical-film", "not-a-chest-radiograph", "child-chest"])
def test_other_image_check_reasons_do_not_refuse_a_radiograph(reasons):
    assert lung_fields_refusal(image("CR"), reasons) == ""


@pytest.mark.parametrize("reasons", ["rotated-90", "rotated-270", "inverted;rotated-90", "cropped;rotated-180"])
def test_every_turn_is_refused(reasons):
    refusal = lung_fields_refusal(image("DX"), reasons)
    assert "turned" in refusal or "upside down" in refusal


def test_a_ct_slice_is_refused_for_its_modality_first():
    assert "this is CT" in lung_fields_refusal(image("CT"), "inverted")
