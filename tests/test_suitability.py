"""Warnings for images the model was not made for."""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from cxr_engine.pixels.image import CxrImage, ImageMetadata
from cxr_engine.reading.read import read_image
from cxr_engine.models.suitability import age_in_years, assess, image_warnings


def image_with(size=(512, 512), **meta) -> CxrImage:
    values = np.tile(np.linspace(0, 255, size[1]).astype(np.uint8), (size[0], 1))  # some content
    return CxrImage(path="x", stored=values, modality=values, metadata=ImageMetadata(**meta))


@pytest.mark.parametrize("fill", [0, 255, 117])
def test_a_blank_image_is_said_to_hold_no_film(fill, tmp_path):
    from PIL import Image

    from cxr_engine.models.suitability import NO_CONTENT_WARNING

    path = tmp_path / "blank.png"
    Image.fromarray(np.full((300, 300), fill, np.uint8)).save(path)
    assert NO_CONTENT_WARNING in image_warnings(read_image(path), 224)
    one_pixel = tmp_path / "one.png"
    Image.fromarray(np.full((1, 1), fill, np.uint8)).save(one_pixel)
    assert NO_CONTENT_WARNING in image_warnings(read_image(one_pixel), 224)


def test_real_films_are_not_called_blank(dicom_dir, cxr3_dir):
    from cxr_engine.models.suitability import is_nearly_uniform

    films = sorted(dicom_dir.glob("*.dcm")) + sorted((cxr3_dir / "images" / "normal").glob("*.jpg"))[:20]
    assert films and not any(is_nearly_uniform(read_image(f)) for f in films)


@pytest.mark.parametrize("age, years", [("062Y", 62), ("3", 3), ("018M", 1.5), ("010D", 10 / 365.25), ("", None), ("old", None)])
def test_dicom_age_strings(age, years):
    assert age_in_years(age) == (pytest.approx(years) if years is not None else None)


def test_a_frontal_adult_chest_film_gets_no_warning():
    assert assess(image_with(modality="CR", body_part="CHEST", view_position="PA", patient_age="045Y",
                             sop_class_uid="1.2.840.10008.5.1.4.1.1.1"), 224) == ()


@pytest.mark.parametrize(
    "meta, expected",
    [
        ({"view_position": "LL"}, "lateral view"),
        ({"view_position": "LATERAL"}, "lateral view"),
        ({"body_part": "KNEE"}, "body part KNEE"),
        ({"modality": "CT"}, "modality CT"),
        ({"patient_age": "012Y"}, "age outside the training data"),
        ({"patient_age": "006M"}, "age outside the training data"),
        ({"sop_class_uid": "1.2.840.10008.5.1.4.1.1.7"}, "secondary capture"),
        ({"sop_class_uid": "1.2.840.10008.5.1.4.1.1.7.4"}, "secondary capture"),
    ],
)
def test_unsuitable_content_is_told_plainly(meta, expected):
    warnings = assess(image_with(**meta), 224)
    assert len(warnings) == 1 and expected in warnings[0]


def test_age_warning_never_quotes_the_age():
    (warning,) = assess(image_with(patient_age="012Y"))
    assert "12" not in warning


def test_images_smaller_than_the_model_input_are_flagged():
    assert "smaller than the model input" in assess(image_with(size=(100, 300)), 224)[0]
    assert assess(image_with(size=(100, 300))) == ()


def test_real_files_keep_their_reader_warnings_first(dicom_dir):
    image = read_image(dicom_dir / "JPEG2KLossless_1s_1f_u_16_16.dcm")
    warnings = image_warnings(image, 224)
    assert "outside the pixel values" in warnings[0]
    siim = read_image(dicom_dir / "Fake_MONOHR1.dcm")  # a workstation's secondary capture
    assert image_warnings(siim, 224) == (
        "Pixel Spacing 0.168 × 0.168 mm gives a field of view of 172 × 172 mm, too small for a chest film: the spacing "
        "is most likely the original film's, kept when the image was resized; lengths are given in pixels",
        "secondary capture: a converted or digitised copy, not the original radiograph")
    assert image_warnings(read_image(dicom_dir / "RG1_J2KI.dcm"), 224) == (  # CR image storage, spacing 0.000\0.000
        "invalid Pixel Spacing (0028,0030) '0.000\\0.000': must be two positive numbers in mm (PS3.3 10.7.1.3); "
        "no calibrated measurements: lengths are in pixels",)
    child = dataclasses.replace(siim, metadata=dataclasses.replace(siim.metadata, patient_age="009Y"))
    assert any("age outside" in w for w in image_warnings(child, 224))
