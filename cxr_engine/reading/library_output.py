"""pydicom's own output while reading damaged files: silenced where nobody reads it.

pydicom reports what it meets in a damaged header on its ``pydicom`` logger and as ``UserWarning``
(e.g. "The value length (56) exceeds the maximum length of 16 allowed for VR SH", "End of file
reached before delimiter (FFFE,E0DD) found"). The engine states each file's problem itself, in its own
words, against the file (the read error, or the image's warnings), so these lines only repeat it in a
library's format, interleaved with other files' lines. ``cxr-classify`` (without ``--verbose``) and
the isolated decoding workers (``cxr_engine.reading.isolation``) call :func:`silence_pydicom`.
"""
from __future__ import annotations

import logging
import warnings

#: The warnings pydicom raises are attributed to its own modules (``pydicom.valuerep``, ``pydicom.filereader``).
PYDICOM_MODULES = r"pydicom(\..*)?$"


def silence_pydicom() -> None:
    """Drop pydicom's log records below ERROR and its ``UserWarning``s for this process (idempotent).
    Errors still raise; pixel-data problems are still found and reported by the engine's readers."""
    import pydicom.config  # noqa: F401  (its import sets the logger's level: set it after)

    logging.getLogger("pydicom").setLevel(logging.ERROR)
    warnings.filterwarnings("ignore", category=UserWarning, module=PYDICOM_MODULES)
