"""Header text made safe to show: the one place that turns a DICOM value into display text.

A header value is data written by another system. Control characters in it (an escape sequence,
CR/LF, a bidirectional override) would start a new line or restyle text in the viewer's overlay,
the study tree, a PDF or a DICOM output, so each is shown as U+FFFD REPLACEMENT CHARACTER: the
value stays on one line and the reader sees that something was there. PS3.5 6.1.3 allows control
characters in a decoded value only in the long text VRs (LT, ST, UT), none of which is shown here.
"""
from __future__ import annotations

import re
import unicodedata

REPLACEMENT = "\ufffd"
_AGE_UNITS = {"D": "days", "W": "weeks", "M": "months", "Y": "years"}
#: Format characters kept: zero-width non-joiner and joiner spell names in Persian and Indic scripts.
_KEPT_FORMAT_CHARACTERS = frozenset("\u200c\u200d")
_UNSAFE_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Co", "Zl", "Zp"})


def printable(text: str) -> str:
    """``text`` with every control, format, surrogate, private-use, line- and paragraph-separator
    character (Unicode categories Cc, Cf, Cs, Co, Zl, Zp; ZWNJ and ZWJ kept) replaced by U+FFFD."""
    if text.isascii() and text.isprintable():
        return text
    return "".join(REPLACEMENT if unicodedata.category(char) in _UNSAFE_CATEGORIES
                   and char not in _KEPT_FORMAT_CHARACTERS else char for char in text)


def format_person_name(value) -> str:
    """A DICOM PN value for display: ``DOE^JANE^Q`` → ``DOE, JANE Q``, ``DOE^JANE^^DR`` → ``DOE, JANE DR``
    (family name, a comma, the other components); a name without carets (``Jane Doe``) as it is; control
    characters as U+FFFD (``printable``); empty stays empty.

    Of the ``=``-separated component groups (alphabetic, ideographic, phonetic: PS3.5 6.2.1.2) the first that
    holds a name is shown: the alphabetic one, else the ideographic, else the phonetic, since the standard lets
    any group be empty (``=山田^太郎=やまだ^たろう``, as Japanese sites write it, → ``山田, 太郎``).
    """
    groups = printable(str(value or "")).split("=")
    group = next((g for g in groups if g.replace("^", "").strip()), "")
    if "^" not in group:
        return group.strip()
    family, *rest = (c.strip() for c in group.split("^"))
    others = " ".join(c for c in rest if c)
    return ", ".join(p for p in (family, others) if p)


def sentence_case(text: str) -> str:
    """``text`` with its first character upper-cased and the rest as it is (``str.capitalize`` would lower-case
    the rest: "the averaged networks disagree (efficientnet-b1: COVID-19)" → "The averaged networks disagree
    (efficientnet-b1: COVID-19)")."""
    return text[:1].upper() + text[1:]


def format_percent(fraction: float, decimals: int = 1) -> str:
    """A fraction (a probability, an accuracy) as a percentage with a space before the sign (SI,
    ISO 80000-1): ``0.7134`` → ``71.3 %``, ``format_percent(0.91, 0)`` → ``91 %``."""
    return f"{100.0 * fraction:.{decimals}f} %"


#: Shown in place of a header value that breaks its VR's rules (PS3.5 6.2): the raw text (a hash, a
#: name) could be taken for the value, so it is not shown; the film's warnings name it.
INVALID_DATE, INVALID_AGE = "invalid date", "invalid age"


def valid_date(value) -> bool:
    """Whether ``value`` is a DICOM DA value (PS3.5 6.2): ``YYYYMMDD`` (or the ACR-NEMA ``YYYY.MM.DD``
    PS3.5 still reads) naming a real calendar date."""
    import datetime

    text = str(value or "").strip()
    if re.fullmatch(r"[0-9]{4}\.[0-9]{2}\.[0-9]{2}", text):
        text = text.replace(".", "")
    if not re.fullmatch(r"[0-9]{8}", text):
        return False
    try:
        datetime.date(int(text[:4]), int(text[4:6]), int(text[6:]))
    except ValueError:
        return False
    return True


def valid_age(value) -> bool:
    """Whether ``value`` can be read as an age: a DICOM AS value (PS3.5 6.2, ``nnnD|W|M|Y``) or, leniently,
    a bare number of years (what ``format_age`` and the age checks accept)."""
    return re.fullmatch(r"([0-9]{1,3})([DWMY])?", str(value or "").strip().upper()) is not None


def age_in_years(age: str) -> float | None:
    """DICOM Age String (``nnnD/W/M/Y``, PS3.5 Table 6.2-1) in years; bare numbers are years."""
    match = re.fullmatch(r"\s*(\d{1,3})\s*([DWMY]?)\s*", age or "", flags=re.IGNORECASE)
    if not match:
        return None
    value, unit = int(match.group(1)), (match.group(2) or "Y").upper()
    return value / {"D": 365.25, "W": 52.18, "M": 12.0, "Y": 1.0}[unit]


def age_at_study(age: str, birth_date: str, study_date: str) -> float | None:
    """The patient's age in years at the study: Patient's Age (0010,1010) when it is a valid Age String, else
    Study Date (0008,0020) minus Patient's Birth Date (0010,0030) when both are valid DA values (PS3.5 6.2)
    and the birth is not after the study; ``None`` when the header does not say."""
    import datetime

    years = age_in_years(age)
    if years is not None:
        return years
    try:
        born = datetime.datetime.strptime((birth_date or "").strip(), "%Y%m%d").date()
        seen = datetime.datetime.strptime((study_date or "").strip(), "%Y%m%d").date()
    except ValueError:
        return None
    return (seen - born).days / 365.25 if seen >= born else None


def format_date(value) -> str:
    """A DICOM DA value (PS3.5 6.2, ``YYYYMMDD``) as an ISO 8601 date: ``19620314`` → ``1962-03-14``, the
    same in every locale and on every face (viewer corners, study tree, PACS list, PDF); a value that is
    not a date (``valid_date``: a hash, ``20231345``) as ``INVALID_DATE``, never its text; empty stays empty."""
    value = printable(str(value or "")).strip()
    if not value:
        return ""
    if not valid_date(value):
        return INVALID_DATE
    digits = value.replace(".", "")
    return f"{digits[:4]}-{digits[4:6]}-{digits[6:]}"


def format_time(value) -> str:
    """A DICOM TM value (PS3.5 6.2, ``HHMMSS.FFFFFF``, seconds optional) as ``HH:MM``: ``143015.25`` →
    ``14:30``; anything else as it is, control characters as U+FFFD."""
    value = printable(str(value or "")).strip()
    return f"{value[:2]}:{value[2:4]}" if re.match(r"[0-9]{4}", value) else value


def format_age(value) -> str:
    """A DICOM AS value (PS3.5 6.2, ``nnnD|W|M|Y``) in words: ``062Y`` → ``62 years``, ``003W`` →
    ``3 weeks``; a bare number is taken as years; anything else (``abc``) as ``INVALID_AGE``; empty stays empty."""
    value = printable(str(value or "")).strip()
    match = re.fullmatch(r"([0-9]{1,3})([DWMY])?", value.upper())
    if not match:
        return INVALID_AGE if value else ""
    return f"{int(match.group(1))} {_AGE_UNITS[match.group(2) or 'Y']}"
