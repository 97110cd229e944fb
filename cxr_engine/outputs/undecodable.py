"""File names that are not valid UTF-8, made writable into UTF-8 outputs (CSV, JSON).

On POSIX a file name is bytes; Python holds the bytes that do not decode (a Latin-1 ``café.dcm`` from a
Windows share or an old PACS export) as lone surrogates U+DC80–U+DCFF (PEP 383, ``surrogateescape``),
which no UTF-8 writer accepts: one such name would fail the whole output.
"""
from __future__ import annotations

import os


def escape_undecodable(text: str | os.PathLike[str]) -> str:
    """``text`` (a string or path) with each byte that is not UTF-8 shown as ``\\xNN`` (``caf\\xe9.dcm``);
    unchanged when it is valid Unicode. Any other lone surrogate becomes ``\\udNNN``. The result always
    encodes as UTF-8; the original bytes are ``os.fsencode`` of the path, not of this text."""
    text = os.fspath(text)
    try:
        text.encode("utf-8")
        return text
    except UnicodeEncodeError:
        pass
    try:
        return text.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
    except UnicodeEncodeError:  # a surrogate that no byte made
        return text.encode("utf-8", "backslashreplace").decode("utf-8")
