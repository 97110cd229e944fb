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
