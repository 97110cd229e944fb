"""Which spacing a ruler may trust (a reading radiologist's findings 1-3 and 10): a resized film that kept its
original Pixel Spacing read lengths about a third of the truth (1024 x 1024 at 0.143 mm: a 146-mm "adult chest"),
a Pixel Spacing that repeats the Imager Pixel Spacing is the detector's, the cardiothoracic lengths say so too,
and an area without spacing is in px². Real RSNA and SIIM films, and headers made to the rule's edges."""
from __future__ import annotations

import pydicom
import pytest

from cxr_engine.models.cardiothoracic import CardiothoracicRatio, Line
from cxr_engine.pixels.roi import roi_stats
from cxr_engine.reading.calibration import MIN_CHEST_FIELD_MM, calibrated_spacing
from cxr_engine.reading.read import read_image

RSNA_ADULT = "00704310-78a8-4b38-8475-49f4573b2dbb.dcm"  # 75-year-old man, 1024 x 1024, Pixel Spacing 0.143


def header(rows=2000, columns=2000, pixel=None, imager=None, age="", calibration=""):
    ds = pydicom.Dataset()
    ds.Rows, ds.Columns = rows, columns
    if pixel is not None:
        ds.PixelSpacing = pixel
    if imager is not None:
        ds.ImagerPixelSpacing = imager
    if age:
        ds.PatientAge = age
    if calibration:
        ds.PixelSpacingCalibrationType = calibration
    return ds


def test_a_spacing_that_makes_a_chest_too_small_is_set_aside():
    spacing, source, warning = calibrated_spacing(header(1024, 1024, [0.143, 0.143], age="075Y"))
    assert (spacing, source) == (None, None)
    assert warning.startswith("Pixel Spacing 0.143 × 0.143 mm gives a field of view of 146 × 146 mm, too small")
    assert calibrated_spacing(header(1024, 1024, [0.143, 0.143]))[0] is None  # no age: an adult's rule
    # a young child's film may be that small; at the rule's edge a chest film keeps its spacing
    assert calibrated_spacing(header(1024, 1024, [0.143, 0.143], age="006Y"))[:2] == ((0.143, 0.143), "PixelSpacing")
    infant = header(1000, 1200, [0.15, 0.15])
    infant.PatientBirthDate, infant.StudyDate = "20230101", "20230701"  # six months old, no Patient's Age
    assert calibrated_spacing(infant)[:2] == ((0.15, 0.15), "PixelSpacing")
    edge = MIN_CHEST_FIELD_MM / 1000
    assert calibrated_spacing(header(1000, 500, [edge, edge], age="040Y"))[:2] == ((edge, edge), "PixelSpacing")


def test_a_pixel_spacing_that_repeats_the_detectors_is_the_detectors():
    assert calibrated_spacing(header(pixel=[0.16, 0.16], imager=[0.16, 0.16]))[:2] == ((0.16, 0.16), "ImagerPixelSpacing")
    calibrated = header(pixel=[0.16, 0.16], imager=[0.16, 0.16], calibration="GEOMETRY")
    assert calibrated_spacing(calibrated)[:2] == ((0.16, 0.16), "PixelSpacing")  # said to be calibrated: trusted
    assert calibrated_spacing(header(pixel=[0.14, 0.14], imager=[0.16, 0.16]))[:2] == ((0.14, 0.14), "PixelSpacing")
    assert calibrated_spacing(header(imager=[0.16, 0.16]))[:2] == ((0.16, 0.16), "ImagerPixelSpacing")
    assert calibrated_spacing(header()) == (None, None, None)


def test_a_resized_rsna_film_measures_in_pixels_and_says_why(shared_data):
    path = shared_data / "dicom_rsna" / RSNA_ADULT
    if not path.exists():
        pytest.skip(f"not in ../shared/data/dicom_rsna: {RSNA_ADULT}")
    film = read_image(path)
    assert film.spacing_mm is None and film.pixel_aspect == 1.0
    assert any("field of view of 146 × 146 mm" in w and "lengths are given in pixels" in w for w in film.warnings)
    stats = roi_stats(film, "rectangle", (100.0, 100.0), (200.0, 150.0))
    assert (stats.area, stats.area_unit) == (5000.0, "px²") and stats.lines()[-2] == "area 5,000 px²"


def test_the_cardiothoracic_lengths_say_when_they_are_the_detectors():
    thoracic, cardiac = Line((100.0, 500.0), (900.0, 500.0)), Line((350.0, 450.0), (700.0, 460.0))
    assert CardiothoracicRatio(thoracic, cardiac, (0.4, 0.4), detector=True).lengths_text() == \
        "cardiac 140 mm / thoracic 320 mm (detector)"
    assert CardiothoracicRatio(thoracic, cardiac, (0.4, 0.4)).lengths_text() == "cardiac 140 mm / thoracic 320 mm"
    assert CardiothoracicRatio(thoracic, cardiac).lengths_text() == "cardiac 350 px / thoracic 800 px"
