"""Header text made safe to show: the one place that turns a DICOM value into display text.

A header value is data written by another system. Control characters in it (an escape sequence,
CR/LF, a bidirectional override) would start a new line or restyle text in the viewer's overlay,
the study tree, a PDF or a DICOM output, so each is shown as U+FFFD REPLACEMENT CHARACTER: the
value stays on one line and the reader sees that something was there. PS3.5 6.1.3 allows control
characters in a decoded value only in the long text VRs (LT, ST, UT), none of which is shown here.
"""
from __future__ import annotations

import unicodedata

REPLACEMENT = "\ufffd"
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
    (family name, a comma, the other components; the alphabetic group only); a name without carets
    (``Jane Doe``) as it is; control characters as U+FFFD (``printable``); empty stays empty.
    """
    first_group = printable(str(value or "")).split("=")[0]
    if "^" not in first_group:
        return first_group.strip()
    family, *rest = (c.strip() for c in first_group.split("^"))
    others = " ".join(c for c in rest if c)
    return ", ".join(p for p in (family, others) if p)
