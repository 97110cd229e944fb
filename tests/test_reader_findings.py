"""Three things a radiologist's test found printed without a word of warning, on real films copied into tmp:
an ROI label whose area and pixel count read as one number twice, a Patient's Age that disagrees with the
birth and study dates, and a proposed cardiothoracic ratio outside the range the README calls plausible."""
from __future__ import annotations

import pytest

from cxr_engine.models.cardiothoracic import (PLAUSIBLE_RANGE, CardiothoracicRatio, Line, unusual_proposal_note,
                                              report_line)
from cxr_engine.models.suitability import patient_age_years
from cxr_engine.outputs.deidentify import REDACTED, redact_generated_text
from cxr_engine.pixels.image import ImageMetadata
from cxr_engine.pixels.roi import ELLIPSE, roi_mask, roi_stats
from cxr_engine.reading.read import read_image

from test_header_checks import edited  # noqa: F401  (fixture: a copy of the real SIIM film, attributes set)


def age_warnings(image) -> list[str]:
    return [w for w in image.warnings if "disagrees with Patient's Birth Date" in w]


# ------------------------------------------------------------------------------------- Patient's Age

def test_an_age_that_disagrees_with_the_birth_and_study_dates_is_named_with_both_ages(edited):
    image = read_image(edited(PatientAge="028Y", PatientBirthDate="19600101", StudyDate="20240301"))
    [warning] = age_warnings(image)
    # The age from the dates is not labelled Patient's Age, which it is not (two "Patient's Age" values read as one).
    assert warning == ("Patient's Age (0010,1010) '028Y' disagrees with Patient's Birth Date (0010,0030) "
                       "'1960-01-01' at the Study Date (0008,0020) '2024-03-01', which give an age of 64 years "
                       "(more than 1 year apart); one of them is wrong: the age checks (training ages, "
                       "child or adult) use Patient's Age (0010,1010) '028Y'")
    assert warning.count("Patient's Age") == 2 and warning.count("'028Y'") == 2
    assert patient_age_years(image.metadata) == 28  # what the warning says the age checks use
    # De-identified (the PDF's option), neither age nor either date is left, by the rules for quoted identifying
    # values and ages in words; the message's words stay.
    redacted = redact_generated_text(warning, image.metadata)
    assert redacted == (f"Patient's Age (0010,1010) '{REDACTED}' disagrees with Patient's Birth Date (0010,0030) "
                        f"'{REDACTED}' at the Study Date (0008,0020) '{REDACTED}', which give an age of {REDACTED} "
                        "(more than 1 year apart); one of them is wrong: the age checks (training ages, "
                        f"child or adult) use Patient's Age (0010,1010) '{REDACTED}'")
    # Not by an accident of the metadata: without the film's own values the rules alone remove them.
    assert redact_generated_text(warning, ImageMetadata()) == redacted


def test_an_age_in_months_from_the_dates_is_removed_too(edited):
    image = read_image(edited(PatientAge="010Y", PatientBirthDate="20230101", StudyDate="20240301"))
    [warning] = age_warnings(image)
    assert "which give an age of 14 months" in warning
    redacted = redact_generated_text(warning, ImageMetadata())
    assert f"which give an age of {REDACTED} (more than" in redacted and "14" not in redacted


@pytest.mark.parametrize("attributes", [
    {"PatientAge": "063Y", "PatientBirthDate": "19600501", "StudyDate": "20240301"},  # 63.8 years: agrees
    {"PatientAge": "062Y", "PatientBirthDate": "19600501", "StudyDate": "20240301"},  # a year off at most
    {"PatientAge": "014M", "PatientBirthDate": "20230101", "StudyDate": "20240301"},  # months
    {"PatientAge": "028Y", "PatientBirthDate": None, "StudyDate": "20240301"},  # no birth date
    {"PatientAge": "028Y", "PatientBirthDate": "19600101", "StudyDate": None, "AcquisitionDate": None,
     "ContentDate": None},  # no date to compute to
    {"PatientAge": "028Y", "PatientBirthDate": "19601301", "StudyDate": "20240301"},  # not a date
    {"PatientAge": "028Y", "PatientBirthDate": "19600101", "StudyDate": "2024XX01", "AcquisitionDate": None,
     "ContentDate": None},  # not a date
    {"PatientAge": "028Y", "PatientBirthDate": "20250101", "StudyDate": "20240301"},  # born after the study
    {"PatientAge": None, "PatientBirthDate": "19600101", "StudyDate": "20240301"},  # no age
    {"PatientAge": "abc", "PatientBirthDate": "19600101", "StudyDate": "20240301"},  # not an age
])
def test_no_age_warning_on_consistent_or_incomplete_headers(edited, attributes):
    assert age_warnings(read_image(edited(**attributes))) == []


@pytest.mark.parametrize("dates, said", [
    ({"AcquisitionDate": "20240301"}, ("Acquisition Date (0008,0022)", "2024-03-01")),
    ({"AcquisitionDate": None, "ContentDate": "20240510"}, ("Content Date (0008,0023)", "2024-05-10")),
])
def test_without_a_study_date_the_acquisition_or_content_date_is_used(edited, dates, said):
    image = read_image(edited(PatientAge="045Y", PatientBirthDate="19600101", StudyDate=None, **dates))
    [warning] = age_warnings(image)
    name, date = said
    assert f"at the {name} '{date}'" in warning and "which give an age of 64 years" in warning
    # De-identified, the reference date goes too: Acquisition Date and Content Date are not kept by PS3.15 Annex E
    # (X/Z, Z/D), though only Study Date is among the report's identification fields.
    for metadata in (image.metadata, ImageMetadata()):
        redacted = redact_generated_text(warning, metadata)
        assert f"at the {name} '{REDACTED}'" in redacted, redacted
        for value in (date, date.replace("-", ""), "1960", "045Y", "64"):
            assert value not in redacted, (value, redacted)


# ------------------------------------------------------------------------------------- ROI label

def test_the_roi_label_names_the_area_and_the_pixel_count(shared_data, dicom_dir):
    from cxr_desktop.annotation_model import ELLIPSE as ELLIPSE_KIND, Annotation
    from cxr_desktop.measurements import label_for, report_line as measurement_line

    path = shared_data / "dicom_rsna" / "00704310-78a8-4b38-8475-49f4573b2dbb.dcm"  # resized: areas in px²
    film = read_image(path)
    assert film.spacing_mm is None
    corners = ((300.0, 300.0), (470.0, 439.0))
    stats = roi_stats(film, ELLIPSE, *corners)
    n = int(roi_mask(film.shape, ELLIPSE, *corners)[2].sum())
    assert stats.pixels == n and abs(stats.area - n) < 0.01 * n  # the two close numbers of the report
    area, count = stats.lines()[-2:]  # each named, each on its own line (one line outgrew a 1x2 viewport)
    assert (area, count) == (f"area {stats.area:,.0f} px²", f"n = {n:,} pixels")
    assert area.startswith("area 18,") and count.startswith("n = 18,")
    label = label_for(Annotation(ELLIPSE_KIND, corners), film)
    assert label.splitlines()[0].startswith("mean ") and "  SD " in label.splitlines()[0]
    line = measurement_line(Annotation(ELLIPSE_KIND, corners), film)
    assert line == "Ellipse ROI: " + "; ".join(stats.lines())  # the PDF's line: "; " between, not ", "
    # With pixel spacing the area is in mm², the count still in pixels.
    calibrated = read_image(dicom_dir / "966_fixed.dcm")  # Imager Pixel Spacing: mm² at the detector
    stats = roi_stats(calibrated, ELLIPSE, *corners)
    assert stats.lines()[-2:] == [f"area {stats.area:,.1f} mm² (detector)", f"n = {stats.pixels:,} pixels"]


# ------------------------------------------------------------------------------------- CTR plausibility

def ratio_of(value: float) -> CardiothoracicRatio:
    return CardiothoracicRatio(Line((0.0, 10.0), (100.0, 10.0)), Line((20.0, 12.0), (20.0 + 100 * value, 12.0)))


def test_an_unadjusted_proposal_outside_the_readmes_range_asks_to_be_checked():
    assert PLAUSIBLE_RANGE == (0.35, 0.60)
    low = report_line(ratio_of(0.31), "PA", adjusted=False)
    assert low == ("Cardiothoracic ratio 0.31 (PA; cardiac 31 px / thoracic 100 px), proposed by the lung-field "
                   "model, not adjusted. Check the proposal (0.31, below the 0.35-0.60 it gave on normal films): the "
                   "lines may sit on another edge; drag them onto the heart borders and the inner rib margins")
    # Above the range an enlarged heart is as likely as a misplaced line: the note says both, never "implausible".
    high = report_line(ratio_of(0.65), "AP", adjusted=False)
    assert "Check the proposal (0.65, above the 0.35-0.60 it gave on normal films): an enlarged heart" in high
    assert "mplausible" not in high
    assert report_line(ratio_of(0.65), "AP", adjusted=False).endswith("CTR overestimated")
    for value in (0.35, 0.47, 0.60):
        assert unusual_proposal_note(ratio_of(value), adjusted=False) == ""
    # The reader's own lines are the reader's: no flag, whatever the value.
    assert unusual_proposal_note(ratio_of(0.31), adjusted=True) == ""
    assert "Check the proposal" not in report_line(ratio_of(0.31), "PA", adjusted=True)
