"""Header values that the pixels depend on, checked against the standard's valid values: each problem
becomes a film warning (the CSV's warnings column, the app's panel, the PDF) naming the attribute, its
value and what the reader is shown instead.

- Rescale Slope (0028,1053): the modality LUT's ``output = slope × stored value + intercept``
  (PS3.3 C.11.1.1.2). A slope of 0 maps every pixel to one value (a blank film) and a non-number maps
  none; such a slope is read as 1, so the film is shown and classified as stored (plus the intercept).
- Pixel Spacing (0028,0030) and Imager Pixel Spacing (0018,1164): two positive numbers, row then
  column spacing in mm (PS3.3 10.7.1.3, C.8.11.4). An invalid one is not used: measurements fall back
  to the other attribute, else lengths are in pixels.
- Patient's Age (0010,1010) against Patient's Birth Date (0010,0030) and the Study Date (0008,0020)
  (else Acquisition Date, else Content Date): more than a year apart, the warning names both ages. The
  age checks (``suitability.patient_age_years``: training ages, child or adult) keep using Patient's
  Age, the age at the study as the modality recorded it, and the warning says so.
- Specific Character Set (0008,0005): a value that is not one of the defined terms (PS3.3 C.12.1.1.2) when a
  shown value is not plain ASCII: named, with what pydicom assumed (its correction of a common misspelling, a
  Python codec of that name, else ISO 8859-1) and so whether the letters shown may be wrong.
- Presentation Intent Type (0008,0068) ``FOR PROCESSING``, or a "For Processing" storage SOP class (PS3.4 B.5):
  raw detector data, to be processed before it is displayed (PS3.3 C.8.11.1.1.1). The model was trained on
  processed films only; ``suitability.header_scope_reasons`` puts a film of such a SOP class out of scope.
"""
from __future__ import annotations

import codecs
import math
import re

#: The spacing attributes in the order they calibrate a film (``dicom_io._spacing``).
SPACING_KEYWORDS = {"PixelSpacing": "Pixel Spacing (0028,0030)", "ImagerPixelSpacing": "Imager Pixel Spacing (0018,1164)"}


def multi_values(value) -> list:
    """A DICOM value as a list: ``[]`` when empty, its items when multi-valued, else ``[value]``.

    A ``str`` is one value, never its letters: an attribute stored with a text VR (explicit VR LO where the
    dictionary says IS: ``"61"``), or a single text value, reaches here as a plain string. A string holding the
    value delimiter ``\\`` (PS3.5 6.4; pydicom gives a ``MultiValue`` for those when it knows the VR, a raw string
    when it does not) is split on it. ``bytes`` (an OB/OW value) are their items, the byte values."""
    if value is None or value == "":
        return []
    if isinstance(value, str):
        return value.split("\\")
    try:
        return list(value)
    except TypeError:
        return [value]


def _number(value) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def _shown(value) -> str:
    from ..display_text import printable

    if isinstance(value, (list, tuple)) or type(value).__name__ == "MultiValue":
        return printable("\\".join(str(v) for v in value))
    return printable(str(value))


def valid_rescale_slope(ds) -> tuple[float | None, str | None]:
    """``(slope, warning)``: ``(None, None)`` when the file has no Rescale Slope (or a Modality LUT
    Sequence, which takes its place), ``(1.0, warning)`` when it is 0 or not a number, else the slope
    and None."""
    if ds.get("ModalityLUTSequence") or "RescaleSlope" not in ds:
        return None, None
    try:
        raw = ds.RescaleSlope
    except Exception:  # a value pydicom cannot parse
        raw = ds["RescaleSlope"].value
    slope = _number(raw)
    if slope is not None and slope != 0:
        return slope, None
    what = "0, which maps every pixel to one value" if slope == 0 else "not a number"
    return 1.0, (f"invalid Rescale Slope (0028,1053) '{_shown(raw)}': {what} (PS3.3 C.11.1.1.2); the modality "
                 "LUT is invalid, so the film is shown and classified with slope 1 (stored values plus the "
                 "intercept): values and the file's windows may not mean what they say")


def valid_spacing(value) -> tuple[float, float] | None:
    """(row, column) spacing in mm when ``value`` holds two finite positive numbers first, else None."""
    numbers = [_number(v) for v in multi_values(value)[:2]]
    if len(numbers) < 2 or any(n is None or n <= 0 for n in numbers):
        return None
    return numbers[0], numbers[1]


def spacing_warnings(ds, used: str | None) -> list[str]:
    """One warning per spacing attribute present but not two positive numbers; ``used`` is the keyword
    that calibrates the film (None: lengths are in pixels)."""
    warnings = []
    for keyword, name in SPACING_KEYWORDS.items():
        if keyword not in ds or keyword == used:
            continue
        try:
            raw = ds.get(keyword)
        except Exception:
            raw = ds[keyword].value
        if raw is None or raw == "" or valid_spacing(raw) is not None:
            continue
        instead = (f"measurements use {SPACING_KEYWORDS[used]}" if used
                   else "no calibrated measurements: lengths are in pixels")
        warnings.append(f"invalid {name} '{_shown(raw)}': must be two positive numbers in mm (PS3.3 10.7.1.3); "
                        f"{instead}")
    return warnings


#: Text attributes the app, the CSV and the PDF show, by keyword, with their names.
SHOWN_TEXT = {"PatientName": "Patient's Name", "PatientID": "Patient ID", "InstitutionName": "Institution Name",
              "StudyDescription": "Study Description", "SeriesDescription": "Series Description",
              "AccessionNumber": "Accession Number", "BodyPartExamined": "Body Part Examined",
              "Manufacturer": "Manufacturer"}


def header_text_warnings(ds) -> list[str]:
    """Warnings for shown header values that break their VR's rules (PS3.5 6.2): a Patient's Birth Date
    that is not a date and a Patient's Age that is not an age (shown as ``invalid date`` / ``invalid
    age``, ``display_text``), and non-ASCII text in a file without Specific Character Set (0008,0005),
    which then means ASCII (PS3.3 C.12.1.1.2): pydicom decodes it as ISO 8859-1, its fallback, so a
    name written in another character set (a Cyrillic one in Windows-1251, say) shows as wrong letters;
    with a Specific Character Set that is not a defined term, :func:`character_set_warning`. Then the header
    facts that change what the pixels are (:func:`presentation_intent_warning`) and the age disagreement."""
    from ..display_text import valid_age, valid_date

    warnings = []
    birth_date, age = _text(ds, "PatientBirthDate"), _text(ds, "PatientAge")
    if birth_date and not valid_date(birth_date):
        warnings.append("invalid Patient's Birth Date (0010,0030): not a date (YYYYMMDD, PS3.5 6.2); shown as "
                        "'invalid date'")
    if age and not valid_age(age):
        warnings.append(f"invalid Patient's Age (0010,1010) '{_shown(age)[:16]}': not an age (nnnD/W/M/Y, PS3.5 6.2); "
                        "the age checks cannot use it")
    if not _text(ds, "SpecificCharacterSet"):
        # a tab or a line break in a description is ASCII: only letters beyond it can be misread here
        if names := _not_plain_text(ds, control_characters=False):
            warnings.append(f"{', '.join(names)} not ASCII but the file has no Specific Character Set (0008,0005): "
                            "shown decoded as ISO 8859-1 (pydicom's fallback), which may show wrong letters")
    elif names := _not_plain_text(ds):
        warnings += filter(None, [character_set_warning(ds, names)])
    warnings += filter(None, [presentation_intent_warning(ds), age_disagreement_warning(ds)])
    return warnings


def _not_plain_text(ds, control_characters: bool = True) -> list[str]:
    """The names (``SHOWN_TEXT``) of the shown values that are not plain ASCII: a letter beyond ASCII, or (with
    ``control_characters``) a control character such as the escape that starts an ISO 2022 code extension, which
    an unknown Specific Character Set may have meant."""
    texts = {name: _text(ds, keyword) for keyword, name in SHOWN_TEXT.items()}
    return [name for name, text in texts.items()
            if not text.isascii() or (control_characters and not text.isprintable())]


def character_set_warning(ds, names: list[str]) -> str | None:
    """The warning for a Specific Character Set (0008,0005) that holds a value pydicom does not know as a defined
    term (PS3.3 C.12.1.1.2, ``pydicom.charset.python_encoding``; an empty first value, the default repertoire, is
    one), naming the value and what the shown ``names`` (the values that are not plain ASCII) were decoded as:
    pydicom's correction of a common misspelling (``ISO IR 100`` → ``ISO_IR 100``: the letters are right), a Python
    codec of that name (``utf8``), else ISO 8859-1, its fallback, which may show wrong letters (``ISO_IR192`` with
    UTF-8 bytes: ``MÃ¼ller``), and then the defined term the value differs from only in spaces, underscores,
    hyphens or letter case, if one does. The first unknown value is named; None when every value is known."""
    from pydicom.charset import python_encoding

    raw = _raw(ds, "SpecificCharacterSet")
    values = [str(v).strip() for v in multi_values(raw)]
    unknown = [value for value in values if value not in python_encoding]
    if not unknown:
        return None
    value = unknown[0]
    reading = _pydicom_reading(value)
    near = _near_defined_term(value, python_encoding)
    what = (f"Specific Character Set (0008,0005) '{_shown(value)}' is not a defined term (PS3.3 C.12.1.1.2"
            + (f"; perhaps '{near}' misspelt)" if near and not reading else ")"))
    if reading:
        return f"{what}: {', '.join(names)} read as {reading}"
    return f"{what}: {', '.join(names)} decoded as ISO 8859-1 (pydicom's fallback), which may show wrong letters"


def _pydicom_reading(value: str) -> str | None:
    """What pydicom decodes text of the unknown Specific Character Set ``value`` as, as
    ``pydicom.charset.convert_encodings`` decides it: its correction of a common misspelling (``ISO IR 100``,
    ``ISO-2022-IR 87``) or a Python codec of that name; None when it falls back to ISO 8859-1."""
    from pydicom.charset import python_encoding

    patched = None
    if re.match("^ISO[^_]IR", value):
        patched = "ISO_IR" + value[6:]
    elif re.match("^(?=ISO.2022.IR.)(?!ISO 2022 IR )", value):
        patched = "ISO 2022 IR " + value[12:]
    if patched is not None:
        return f"'{patched}' (pydicom's correction of a common misspelling)" if patched in python_encoding else None
    try:
        return f"the Python codec '{codecs.lookup(value).name}' of that name"
    except LookupError:
        return None


def _near_defined_term(value: str, terms) -> str | None:
    """The one defined term of ``terms`` that ``value`` matches once spaces, underscores and hyphens are dropped
    and letter case ignored (``ISO_IR192`` → ``ISO_IR 192``); None when none or several do."""
    def key(text: str) -> str:
        return re.sub(r"[\s_-]", "", text).upper()

    matches = {term for term in terms if term and key(term) == key(value)}
    return matches.pop() if len(matches) == 1 else None


#: The storage SOP classes of images "for processing" (PS3.4 B.5): raw detector data, which Presentation Intent
#: Type (0008,0068) must then call ``FOR PROCESSING`` (PS3.3 C.8.11.1.1.1).
FOR_PROCESSING_SOP_CLASSES = {
    "1.2.840.10008.5.1.4.1.1.1.1.1": "Digital X-Ray Image Storage - For Processing",
    "1.2.840.10008.5.1.4.1.1.1.2.1": "Digital Mammography X-Ray Image Storage - For Processing",
    "1.2.840.10008.5.1.4.1.1.1.3.1": "Digital Intra-Oral X-Ray Image Storage - For Processing",
    "1.2.840.10008.5.1.4.1.1.13.1.5": "Breast Projection X-Ray Image Storage - For Processing",
}
FOR_PROCESSING = "FOR PROCESSING"


def presentation_intent_warning(ds) -> str | None:
    """The warning for an image for processing: Presentation Intent Type (0008,0068) ``FOR PROCESSING`` and/or a
    SOP Class UID of :data:`FOR_PROCESSING_SOP_CLASSES` (SOP Class UID (0008,0016), else the file meta's Media
    Storage SOP Class UID (0002,0002), as ``dicom_io.read_metadata`` reads it), each named as the file says it. Such
    pixels are raw detector data, "intended to be further processed before being displayed" (PS3.3 C.8.11.1.1.1):
    shown as stored they look unlike a film, and the model, trained on processed films, is not reliable on them.
    None for an image for presentation."""
    from .dicom_values import file_meta

    intent = _text(ds, "PresentationIntentType").upper()
    sop_class_uid = _text(ds, "SOPClassUID") or _text(file_meta(ds), "MediaStorageSOPClassUID")
    sop_class = FOR_PROCESSING_SOP_CLASSES.get(sop_class_uid)
    said = ([f"Presentation Intent Type (0008,0068) '{FOR_PROCESSING}'"] if intent == FOR_PROCESSING else []) + \
        ([f"SOP Class '{sop_class}'"] if sop_class else [])
    if not said:
        return None
    return (f"image for processing ({' and '.join(said)}): raw detector data, meant to be processed before it is "
            "displayed (PS3.3 C.8.11.1.1.1); shown as stored, and the model, trained on processed films (for "
            "presentation), is not reliable on it")


#: The dates an age at the study is computed to, in order of preference.
AGE_REFERENCE_DATES = (("StudyDate", "Study Date (0008,0020)"), ("AcquisitionDate", "Acquisition Date (0008,0022)"),
                       ("ContentDate", "Content Date (0008,0023)"))
#: The words before the age from the dates in the warning ("which give an age of 64 years"): a de-identified output
#: (``outputs.deidentify.redact_generated_text``) removes the value after them, as it removes Patient's Age.
AGE_FROM_DATES = "an age of"
#: Patient's Age and the age from the dates may be this many years apart before the warning.
AGE_TOLERANCE_YEARS = 1.0
_AGE_UNIT_YEARS = {"D": 1 / 365.25, "W": 7 / 365.25, "M": 1 / 12, "Y": 1.0}


def _date(value: str):
    import datetime

    from ..display_text import valid_date

    if not valid_date(value):
        return None
    digits = value.strip().replace(".", "")
    return datetime.date(int(digits[:4]), int(digits[4:6]), int(digits[6:]))


def age_disagreement_warning(ds) -> str | None:
    """A warning when Patient's Age (0010,1010) and the age from Patient's Birth Date (0010,0030) to the
    Study Date (0008,0020) (else Acquisition Date (0008,0022), else Content Date (0008,0023)) are more
    than ``AGE_TOLERANCE_YEARS`` apart; None when they agree or when the age, the birth date or every
    reference date is missing or invalid, or the birth is after that date.

    An Age String ``nnnY`` means completed years, so it stands for the interval [n, n + 1) years
    (``nnnM`` for [n, n + 1) months, ...); the warning fires when the age from the dates lies more than the
    tolerance outside that interval. Patient's Age and the three dates are quoted after their attributes' names and
    tags, and the age from the dates follows ``AGE_FROM_DATES`` ("which give an age of 64 years"), not the name of
    Patient's Age, which it is not: a de-identified report (``deidentify.redact_generated_text``) drops each of them,
    by those rules (a quoted value after an identifying attribute, date or time; an age in words)."""
    from ..display_text import age_in_years, format_date, valid_age

    age = _text(ds, "PatientAge")
    if not age or not valid_age(age):
        return None
    years = age_in_years(age)
    born = _date(_text(ds, "PatientBirthDate"))
    if years is None or born is None:
        return None
    for keyword, name in AGE_REFERENCE_DATES:
        seen = _date(_text(ds, keyword))
        if seen is not None:
            break
    else:
        return None
    if seen < born:
        return None
    unit = (age.strip().upper()[-1:] if age.strip()[-1:].isalpha() else "Y")
    by_dates = (seen - born).days / 365.25
    low, high = years, years + _AGE_UNIT_YEARS.get(unit, 1.0)
    if max(low - by_dates, by_dates - high) <= AGE_TOLERANCE_YEARS:
        return None
    shown_age = _shown(age)[:16]
    by_dates_text = f"{int(by_dates)} years" if by_dates >= 2 else f"{by_dates * 12:.0f} months"
    return (f"Patient's Age (0010,1010) '{shown_age}' disagrees with Patient's Birth Date (0010,0030) "
            f"'{format_date(_text(ds, 'PatientBirthDate'))}' at the {name} '{format_date(_text(ds, keyword))}', "
            f"which give {AGE_FROM_DATES} {by_dates_text} (more than {AGE_TOLERANCE_YEARS:g} year apart); one of "
            f"them is wrong: the age checks (training ages, child or adult) use Patient's Age (0010,1010) "
            f"'{shown_age}'")


def _raw(ds, keyword: str):
    """The value of ``keyword`` in ``ds``, ``None`` when absent or unreadable."""
    try:
        return ds.get(keyword)
    except Exception:  # a value pydicom cannot decode
        return None


def _text(ds, keyword: str) -> str:
    try:
        value = ds.get(keyword)
    except Exception:  # a value pydicom cannot decode
        return ""
    if value is None:
        return ""
    if isinstance(value, (list, tuple)) or type(value).__name__ == "MultiValue":
        return "\\".join(str(v) for v in value).strip()
    return str(value).strip()
