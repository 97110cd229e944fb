"""Whether a film's pixel spacing measures the patient, the detector, or nothing one can trust (PS3.3 10.7.1.3).

The spacing the app measures with is Pixel Spacing (0028,0030), else Imager Pixel Spacing (0018,1164), as
``header_checks.SPACING_KEYWORDS`` orders them. Two refinements keep a ruler from misleading:

* Pixel Spacing equal to Imager Pixel Spacing with no Pixel Spacing Calibration Type (0028,0A02) has not been
  corrected for the X-ray beam's magnification: it is the detector's, and lengths say "(detector)".
* A spacing whose field of view (rows and columns times the spacing) is under ``MIN_CHEST_FIELD_MM`` on its
  longer side cannot be an adult's or an older child's chest film: such files are usually films resized for a
  dataset or a screen (a secondary capture of 1024 x 1024 pixels) that kept the original film's spacing, so a
  ruler would read about a third of the true length. Lengths are then given in pixels, with a warning; the
  spacing's ratio still gives the pixels' aspect. A young child's film (under ``YOUNG_CHILD_YEARS`` by Patient's
  Age, else by Study Date minus Birth Date) may be that small and keeps its spacing; with no age at all the
  adult rule holds (lengths in pixels: never a wrong millimetre).
"""
from __future__ import annotations

from ..display_text import age_at_study
from .header_checks import SPACING_KEYWORDS, multi_values, valid_spacing

#: The smallest plausible field of view (longer side, mm) of a chest film of anyone but a young child.
MIN_CHEST_FIELD_MM = 200.0
#: Below this age (years) a chest film may cover less than ``MIN_CHEST_FIELD_MM``.
YOUNG_CHILD_YEARS = 12.0
#: Pixel Spacing and Imager Pixel Spacing closer than this (mm) are the same spacing.
SAME_SPACING_MM = 1e-6


def raw_spacing(ds) -> tuple[tuple[float, float] | None, str | None]:
    """(row, column) spacing in mm and the keyword that gave it: Pixel Spacing when valid, else Imager Pixel
    Spacing; zeros and junk count as absent (and are named in the film's warnings,
    ``header_checks.spacing_warnings``)."""
    for keyword in SPACING_KEYWORDS:
        spacing = valid_spacing(multi_values(ds.get(keyword)))
        if spacing is not None:
            return spacing, keyword
    return None, None


def calibrated_spacing(ds) -> tuple[tuple[float, float] | None, str | None, str | None]:
    """(spacing, source, warning) of the film ``ds`` describes: the spacing lengths are measured with (None:
    lengths in pixels), "PixelSpacing" when it is calibrated to the patient or "ImagerPixelSpacing" when it is
    the detector's (also for a Pixel Spacing that merely repeats it), and a warning when a spacing was set
    aside (an implausible field of view)."""
    spacing, source = raw_spacing(ds)
    if spacing is None:
        return None, None, None
    if source == "PixelSpacing" and not str(ds.get("PixelSpacingCalibrationType", "") or "").strip():
        imager = valid_spacing(multi_values(ds.get("ImagerPixelSpacing")))
        if imager is not None and all(abs(a - b) <= SAME_SPACING_MM for a, b in zip(imager, spacing)):
            source = "ImagerPixelSpacing"  # not corrected for magnification (PS3.3 10.7.1.3): at the detector
    rows, columns = int(ds.get("Rows", 0) or 0), int(ds.get("Columns", 0) or 0)
    field = (rows * spacing[0], columns * spacing[1])
    years = age_at_study(*(str(ds.get(k, "") or "") for k in ("PatientAge", "PatientBirthDate", "StudyDate")))
    if rows and columns and max(field) < MIN_CHEST_FIELD_MM and (years is None or years >= YOUNG_CHILD_YEARS):
        name = SPACING_KEYWORDS[source if source in SPACING_KEYWORDS else "PixelSpacing"].split(" (")[0]
        return None, None, (
            f"{name} {spacing[0]:g} × {spacing[1]:g} mm gives a field of view of {field[0]:.0f} × {field[1]:.0f} mm, "
            f"too small for a chest film: the spacing is most likely the original film's, kept when the image was "
            f"resized; lengths are given in pixels")
    return spacing, source, None
