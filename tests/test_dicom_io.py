"""The DICOM pixel pipeline on the 8 real chest files in ../shared/data/dicom."""
from __future__ import annotations

import shutil

import numpy as np
import pytest

from cxr_engine.errors import ImageReadError
from cxr_engine.reading.read import read_image
from cxr_engine.pixels.rendering import render

SIIM = "1.2.276.0.7230010.3.1.4.8323329.6904.1517875201.850819.dcm"
FAKE_MONO1 = "Fake_MONOHR1.dcm"
NO_META = "CR-MONO1-10-chest.dcm"
J2K_16 = "JPEG2KLossless_1s_1f_u_16_16.dcm"

EXPECTED = {  # file: (rows, cols, photometric, spacing source)
    # 1024 x 1024 with Pixel Spacing 0.168: a 172-mm field of view, a resized film that kept its spacing: set aside
    SIIM: (1024, 1024, "MONOCHROME2", None),
    "1.3.6.1.4.1.11129.5.5.110503645592756492463169821050252582267888.dcm": (1024, 1024, "MONOCHROME2", None),
    # Pixel Spacing equal to Imager Pixel Spacing, no calibration type: not corrected for magnification
    "966_fixed.dcm": (2128, 2000, "MONOCHROME1", "ImagerPixelSpacing"),
    NO_META: (440, 440, "MONOCHROME1", None),
    FAKE_MONO1: (1024, 1024, "MONOCHROME1", None),
    J2K_16: (1416, 1420, "MONOCHROME2", "ImagerPixelSpacing"),
    "RG1_J2KI.dcm": (1955, 1841, "MONOCHROME1", None),  # PixelSpacing 0\0 counts as absent
    "RG1_JLSN.dcm": (1955, 1841, "MONOCHROME1", None),
}

# Files whose own header makes them display like a negative: Fake_MONOHR1 stores the SIIM
# pixels unchanged but says MONOCHROME1; the 16-bit J2K sample is MONOCHROME2/IDENTITY with
# air at high values. A conformant viewer shows what the header says.
NEGATIVE_BY_HEADER = {FAKE_MONO1, J2K_16}


def mediastinum_minus_lungs(display: np.ndarray) -> float:
    """Mean brightness of the central column minus the lateral lung fields at mid-height."""
    h, w = display.shape
    band = display[int(0.35 * h) : int(0.6 * h)]
    centre = band[:, int(0.45 * w) : int(0.55 * w)].mean()
    lungs = np.concatenate([band[:, int(0.2 * w) : int(0.35 * w)].ravel(), band[:, int(0.65 * w) : int(0.8 * w)].ravel()])
    return float(centre - lungs.mean())


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_every_shared_dicom_decodes(dicom_dir, name):
    image = read_image(dicom_dir / name)
    rows, cols, photometric, spacing_source = EXPECTED[name]
    assert image.shape == (rows, cols)
    assert image.photometric == photometric
    assert image.invert == (photometric == "MONOCHROME1")
    assert image.spacing_source == spacing_source
    display = image.display()
    assert display.dtype == np.float32 and display.shape == (rows, cols)
    assert 0.0 <= display.min() and display.max() <= 1.0
    assert display.std() > 0.05, "rendered image is nearly flat"
    contrast = mediastinum_minus_lungs(display)
    if name in NEGATIVE_BY_HEADER:
        assert contrast < -0.1
    else:
        assert contrast > 0.1, "lungs should be darker than the mediastinum (grey scale upside down?)"


def test_monochrome1_twin_is_the_exact_inverse(dicom_dir):
    """Same stored pixels, one flagged MONOCHROME1: its display is 1 - the MONOCHROME2 display."""
    siim, fake = read_image(dicom_dir / SIIM), read_image(dicom_dir / FAKE_MONO1)
    np.testing.assert_array_equal(siim.stored, fake.stored)
    np.testing.assert_allclose(fake.display(), 1.0 - siim.display(), atol=1e-6)
    # Inverting the twin on screen (the viewer's invert toggle) gives the SIIM image exactly.
    np.testing.assert_array_equal(render(fake, invert=False), render(siim))


def test_file_without_meta_header_is_read_with_assumed_syntax(dicom_dir):
    image = read_image(dicom_dir / NO_META)
    assert image.metadata.modality == "CR"
    assert image.windows[0].center == 550 and image.windows[0].width == 1024
    assert image.bits_stored == 10


def test_raw_stored_and_modality_values_are_kept(dicom_dir):
    image = read_image(dicom_dir / "966_fixed.dcm")
    assert image.stored.dtype == np.uint16
    assert image.modality.max() <= 4095
    np.testing.assert_array_equal(image.modality, image.stored)  # slope 1, intercept 0
    assert image.spacing_mm == (0.16, 0.16)


def test_window_outside_the_data_falls_back_to_auto_with_a_warning(dicom_dir):
    image = read_image(dicom_dir / J2K_16)
    assert image.windows and image.windows[0].center == 2725
    assert image.default_voi() is image.preferred_voi
    assert any("outside the pixel values" in w for w in image.warnings)


def test_source_files_are_never_modified(dicom_dir, tmp_path):
    copy = tmp_path / SIIM
    shutil.copy(dicom_dir / SIIM, copy)
    before = copy.read_bytes()
    read_image(copy).display()
    assert copy.read_bytes() == before


@pytest.mark.parametrize(
    "content, reason",
    [
        (b"", "empty file"),
        (b"hello, this is a text file\n" * 10, "a text file, not a DICOM file"),
    ],
)
def test_non_dicom_content_is_refused_with_the_file_name(tmp_path, content, reason):
    path = tmp_path / "bad.dcm"
    path.write_bytes(content)
    with pytest.raises(ImageReadError, match=reason) as info:
        read_image(path)
    assert info.value.path == path


def test_truncated_dicom_names_the_file_and_reason(dicom_dir, tmp_path):
    data = (dicom_dir / "966_fixed.dcm").read_bytes()
    path = tmp_path / "truncated.dcm"
    path.write_bytes(data[: len(data) // 3])
    with pytest.raises(ImageReadError) as info:
        read_image(path)
    assert "truncated.dcm" in str(info.value) and info.value.reason


def test_png_and_jpeg_are_read_as_greyscale(cxr3_dir, tmp_path):
    import cv2

    jpeg = next((cxr3_dir / "images" / "normal").glob("*.jpg"))
    image = read_image(jpeg)
    assert image.source_format == "jpeg" and image.stored.ndim == 2
    grey = cv2.imread(str(jpeg), cv2.IMREAD_GRAYSCALE)
    png = tmp_path / "colour.png"
    cv2.imwrite(str(png), np.dstack([grey, grey // 2, grey]))
    converted = read_image(png)
    assert converted.stored.ndim == 2 and "converted to greyscale" in converted.warnings[0]
    np.testing.assert_allclose(image.display(), grey / 255.0, atol=1e-6)


def test_absurd_dimensions_are_refused_before_decoding(dicom_dir, tmp_path):
    import pydicom

    from cxr_engine.errors import UnsupportedImageError

    ds = pydicom.dcmread(dicom_dir / "CR-MONO1-10-chest.dcm", force=True)
    ds.Rows, ds.Columns = 60000, 60000
    path = tmp_path / "huge.dcm"
    ds.save_as(path, implicit_vr=True, little_endian=True)
    with pytest.raises(UnsupportedImageError, match="too large"):
        read_image(path)
