"""Exceptions raised by the engine. Each names the file (where there is one) and the reason."""
from __future__ import annotations

from pathlib import Path


class CxrError(Exception):
    """Base class of every error the engine raises on purpose."""


class FileError(CxrError):
    """One file could not be read or written: ``path`` names it, ``reason`` says why in words a
    user can act on; the message is ``"<path>: <reason>"``."""

    def __init__(self, path: str | Path, reason: str):
        from .messages import printable

        self.path = Path(path)
        # Text from a damaged file (a UID, a decoder's message) may hold control bytes: escaped.
        self.reason = printable(reason, limit=None)
        super().__init__(f"{self.path}: {self.reason}")


class ImageReadError(FileError):
    """A file could not be read or decoded into an image."""


class UnsupportedImageError(ImageReadError):
    """A readable file whose content the engine does not handle (e.g. a multi-frame colour image)."""


class NoImageContentError(FileError):
    """A decoded film holds nothing to classify (blank, near-constant, or a few pixels across;
    ``cxr_engine.pixels.content``): it gets no class, ``reason`` says why."""


class ModelError(CxrError):
    """A model could not be found, built or loaded."""


class ModelIntegrityError(ModelError):
    """A weights file does not match the sha256 recorded in its model card."""

    def __init__(self, path: str | Path, expected: str, actual: str):
        self.path = Path(path)
        self.expected = expected
        self.actual = actual
        super().__init__(
            f"{self.path}: sha256 {actual} does not match the model card's {expected}; "
            "the file is damaged or was replaced, refusing to load it"
        )


class DecoderCrashError(ImageReadError):
    """The isolated decoding worker died while reading the file."""


class DecoderStartError(CxrError):
    """The isolated decoding worker process could not start, or died before it read its file: not the
    file's fault, and no file can be decoded in workers until it is fixed. ``reason`` (also the message)
    is ``the decoding process could not start: <why>``."""

    def __init__(self, why: str):
        from .messages import printable

        self.reason = f"the decoding process could not start: {printable(why, limit=None)}"
        super().__init__(self.reason)


class DecodeTimeoutError(ImageReadError):
    """Decoding the file took longer than the isolation time limit."""


class DecoderBugError(ImageReadError):
    """A decoder raised an exception the engine does not expect (a bug, reported plainly)."""


class ReportError(FileError):
    """A PDF report could not be written; ``path`` is the destination."""


class SourceHeaderError(FileError):
    """The source file's DICOM header cannot give the outputs a patient, study and image."""


class DicomOutputError(FileError):
    """One film's DICOM outputs could not be made or written; ``path`` is the film."""
