"""One entry point for reading any supported image file."""
from __future__ import annotations

from pathlib import Path

from ..errors import ImageReadError
from ..pixels.image import CxrImage
from .raster_io import RASTER_SUFFIXES, raster_signature, read_raster
from .reduced_decode import FULL, DecodeRequest

DICOM_SUFFIXES = {".dcm", ".dicom", ".dic"}


def is_dicom_file(path: str | Path) -> bool:
    """True when the file carries the DICM magic at offset 128."""
    try:
        with open(path, "rb") as handle:
            handle.seek(128)
            return handle.read(4) == b"DICM"
    except OSError:
        return False


def _starts_as_raster(path: Path) -> bool:
    try:
        with open(path, "rb") as handle:
            return raster_signature(handle.read(8)) is not None
    except OSError:
        return False


def read_image(path: str | Path, request: DecodeRequest = FULL) -> CxrImage:
    """Read a DICOM, PNG or JPEG file; raises ``ImageReadError`` with the file and the reason.

    ``request`` (``cxr_engine.reading.reduced_decode``) lets a DICOM file be decoded at a reduced
    resolution where its syntax stores one; PNG and JPEG files are always read in full.
    """
    from .dicom_io import read_dicom

    path = Path(path)
    if not path.exists():
        raise ImageReadError(path, "no such file")
    if path.is_dir():
        raise ImageReadError(path, "is a folder, not an image file")
    if not is_dicom_file(path) and (path.suffix.lower() in RASTER_SUFFIXES or _starts_as_raster(path)):
        return read_raster(path)  # a PNG or JPEG by name or by content (a JPEG named .dcm)
    return read_dicom(path, request)


def full_decode_only(path: str | Path) -> bool:
    """True when every ``DecodeRequest`` of ``path`` gives the same image, its full decode: a PNG or
    JPEG file (always read in full), or a DICOM file whose transfer syntax offers no reduced path or
    that is multi-frame or colour (``reduced_decode.decode_reduced`` then declines whatever the size).
    Known from the file's first bytes and its header, without decoding. False when that is not sure
    (a single-frame greyscale JPEG 2000 or JPEG file, a header that cannot be read): the decode may
    then differ by size."""
    import pydicom

    from .reduced_decode import J2K_SYNTAXES, JPEG_SYNTAXES

    path = Path(path)
    try:
        if not path.is_file():
            return False
        if not is_dicom_file(path):
            return path.suffix.lower() in RASTER_SUFFIXES or _starts_as_raster(path)
        ds = pydicom.dcmread(path, stop_before_pixels=True, force=True,
                             specific_tags=["NumberOfFrames", "SamplesPerPixel"])
        syntax = str(ds.file_meta.TransferSyntaxUID)
        frames = int(ds.get("NumberOfFrames", 1) or 1)
        samples = int(ds.get("SamplesPerPixel", 1) or 1)
    except Exception:  # an unreadable header: the decode itself will say what is wrong
        return False
    return syntax not in J2K_SYNTAXES | JPEG_SYNTAXES or frames != 1 or samples != 1
