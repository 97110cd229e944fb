"""Invalid header values the pixels depend on (Rescale Slope, Pixel Spacing) are named in the film's
warnings and replaced as the warning says; real DICOMs from /work/shared copied and edited in tmp."""
from __future__ import annotations

import shutil

import numpy as np
import pydicom
import pytest

from cxr_engine.reading.read import read_image
from conftest import set_attributes

SIIM = "1.2.276.0.7230010.3.1.4.8323329.6904.1517875201.850819.dcm"  # CR, PixelSpacing 0.168, no rescale


@pytest.fixture()
def edited(tmp_path, dicom_dir):
    """``edited(name, **attributes)``: a copy of the real SIIM film with those attributes set (None: removed, when
    present); ``name`` (the file's stem) defaults to a new one per call."""
    def make(name: str | None = None, **attributes):
        path = tmp_path / f"{name or f'film{len(list(tmp_path.iterdir()))}'}.dcm"
        shutil.copy(dicom_dir / SIIM, path)
        ds = pydicom.dcmread(path)
        set_attributes(ds, attributes)
        ds.save_as(path)
        return path
    return make


class TestRescaleSlope:
    @pytest.mark.parametrize("slope", ["0", "0.0"])
    def test_a_zero_slope_is_named_and_read_as_one(self, edited, slope):
        path = edited("slope0", RescaleSlope=slope, RescaleIntercept="-24")
        before = path.read_bytes()
        image = read_image(path)
        [warning] = [w for w in image.warnings if "Rescale Slope" in w]
        assert warning.startswith("invalid Rescale Slope (0028,1053) '0")
        assert "maps every pixel to one value (PS3.3 C.11.1.1.2)" in warning and "with slope 1" in warning
        np.testing.assert_array_equal(image.modality, image.stored.astype(np.int64) - 24)
        assert not any("nearly uniform" in w or "lies outside the pixel values" in w for w in image.warnings)
        assert path.read_bytes() == before  # the source is never modified

    def test_a_valid_slope_gives_no_warning(self, edited):
        image = read_image(edited("slope2", RescaleSlope="2", RescaleIntercept="0"))
        assert not any("Rescale Slope" in w for w in image.warnings)
        np.testing.assert_array_equal(image.modality, image.stored.astype(np.int64) * 2)


class TestPixelSpacing:
    @pytest.mark.parametrize("value, shown", [(["0", "0"], "0\\0"), (["-0.168", "-0.168"], "-0.168\\-0.168"),
                                              (["0.168"], "0.168")])
    def test_an_invalid_spacing_is_named_and_lengths_are_in_pixels(self, edited, value, shown):
        from cxr_desktop.annotation_model import measure

        image = read_image(edited("spacing", PixelSpacing=value))
        assert image.spacing_mm is None
        assert [w for w in image.warnings if "Spacing" in w] == [
            f"invalid Pixel Spacing (0028,0030) '{shown}': must be two positive numbers in mm (PS3.3 10.7.1.3); "
            "no calibrated measurements: lengths are in pixels"]
        assert str(measure((0, 0), (30, 40), image.spacing_mm, image.spacing_source)) == "50 px"

    def test_imager_pixel_spacing_calibrates_when_pixel_spacing_is_invalid(self, edited):
        image = read_image(edited("fallback", PixelSpacing=["0", "0"], ImagerPixelSpacing=["0.2", "0.2"]))
        assert image.spacing_mm == (0.2, 0.2) and image.spacing_source == "ImagerPixelSpacing"
        assert [w for w in image.warnings if "Spacing" in w] == [
            "invalid Pixel Spacing (0028,0030) '0\\0': must be two positive numbers in mm (PS3.3 10.7.1.3); "
            "measurements use Imager Pixel Spacing (0018,1164)"]

    def test_the_real_film_gives_no_invalid_spacing_warning(self, dicom_dir):
        image = read_image(dicom_dir / SIIM)
        # valid, but a 172-mm field of view: set aside for lengths (``calibration``), the aspect kept
        assert image.spacing_mm is None and image.pixel_aspect_ratio == (0.168, 0.168)
        assert [w for w in image.warnings if "Spacing" in w] == [
            "Pixel Spacing 0.168 × 0.168 mm gives a field of view of 172 × 172 mm, too small for a chest film: the "
            "spacing is most likely the original film's, kept when the image was resized; lengths are given in pixels"]


class TestShownHeaderText:
    """Header text that breaks its VR's rules is shown as invalid (never its raw text) on every face, and
    named in the film's warnings; 966_fixed.dcm and the JPEG 2000 film are real files from /work/shared."""

    def faces(self, image):
        """The viewer's corner text and the PDF's identification block of ``image``."""
        formatting = pytest.importorskip("cxr_desktop.formatting")
        from cxr_engine.outputs.deidentify import report_identifiers
        from cxr_engine.pixels.windowing import Window

        corners = formatting.corner_text(image.metadata, image.shape, Window(1000.0, 2000.0), 1.0, 0, False, False,
                                         False)
        return corners.top_left, dict(report_identifiers(image.metadata, deidentify=False))

    def test_a_hash_as_birth_date_is_shown_as_invalid(self, tmp_path, dicom_dir):
        path = tmp_path / "966_fixed.dcm"
        if not (dicom_dir / path.name).is_file():
            pytest.skip(f"{path.name} not in {dicom_dir}")
        shutil.copy(dicom_dir / path.name, path)
        image = read_image(path)
        stored = image.metadata.patient_birth_date
        assert len(stored) == 56  # the file's hash, kept as read
        corners, pdf = self.faces(image)
        assert "Born invalid date" in corners and pdf["Birth date"] == "invalid date"
        assert not any(line.startswith("Born") and stored[:8] in line for line in corners)
        assert ("invalid Patient's Birth Date (0010,0030): not a date (YYYYMMDD, PS3.5 6.2); shown as 'invalid date'"
                in image.warnings)

    def test_a_broken_age_is_a_warning_and_shown_as_invalid(self, edited):
        image = read_image(edited("age", PatientAge="abc"))
        assert ("invalid Patient's Age (0010,1010) 'abc': not an age (nnnD/W/M/Y, PS3.5 6.2); the age checks "
                "cannot use it") in image.warnings
        corners, pdf = self.faces(image)
        assert any(line.endswith("invalid age") for line in corners) and pdf["Age"] == "invalid age"

    def test_non_ascii_text_without_a_character_set_is_named(self, tmp_path, dicom_dir):
        name = "JPEG2KLossless_1s_1f_u_16_16.dcm"  # Cyrillic names in Windows-1251, no (0008,0005)
        shutil.copy(dicom_dir / name, tmp_path / name)
        image = read_image(tmp_path / name)
        [warning] = [w for w in image.warnings if "Specific Character Set" in w]
        assert warning.startswith("Patient's Name, Institution Name, Manufacturer not ASCII but the file has no "
                                  "Specific Character Set (0008,0005)")

    @pytest.mark.parametrize("name", [SIIM, "CR-MONO1-10-chest.dcm"])
    def test_valid_headers_give_none_of_these_warnings(self, dicom_dir, name):
        image = read_image(dicom_dir / name)
        assert not [w for w in image.warnings if w.startswith("invalid") or "Character Set" in w]
        corners, pdf = self.faces(image)
        assert "invalid" not in " ".join((*corners, *pdf.values()))

    def test_a_latin1_name_with_its_character_set_is_not_flagged(self, edited):
        image = read_image(edited("latin1", SpecificCharacterSet="ISO_IR 100", PatientName="M\u00fcller^J\u00f6rg"))
        assert image.metadata.patient_name == "M\u00fcller^J\u00f6rg"
        assert not any("Character Set" in w for w in image.warnings)
