"""The wording of the reasons a file cannot be read, shared by the scanner (the app's Problems
list), the decoder (the viewer) and the batch CLI, so that one fault reads alike everywhere.

Every function returns a short reason without the file's path: callers put the path in front
(``ImageReadError`` and ``ScanError`` carry it). Text taken from a file (UIDs, names) goes
through :func:`printable` first, so a damaged value never puts control bytes into a message.
"""
from __future__ import annotations

import re

#: How many characters of a value from a file a message quotes by default (then ``…``).
_MAX_VALUE = 80


def printable(value: object, limit: int | None = _MAX_VALUE) -> str:
    """``value`` as text with every non-printable character escaped (``\\x9c``, ``\\u2028``,
    ``\\n``), at most ``limit`` characters (then ``…``). Bytes are shown as Latin-1.

    >>> printable("@\\x9c2.840.10008")
    '@\\\\x9c2.840.10008'
    """
    if isinstance(value, (bytes, bytearray)):
        value = bytes(value).decode("latin-1")
    text = str(value)
    out = "".join(ch if ch.isprintable() else ascii(ch)[1:-1] for ch in text)
    return out if limit is None or len(out) <= limit else out[: limit - 1] + "…"


def own_outputs_skipped(paths) -> str:
    """How many files a scan skipped because this program wrote them (heat-maps, lung masks, AI result objects:
    ``cxr_engine.outputs.own_outputs``), naming the first; the CLI's and the app's words alike. ``paths`` is not
    empty."""
    return (f"skipped {len(paths)} file(s) this program wrote (heat-maps, lung masks, AI result DICOM objects), "
            f"e.g. {printable(paths[0], None)}")


def uid_text(uid: object) -> str:
    """A UID for a message: its registered name when pydicom knows it, else the UID escaped."""
    text = str(uid or "").strip("\x00 ")
    if not text:
        return "(none)"
    if text.replace(".", "").isdigit() and text.isascii():  # only then can pydicom know it
        try:
            from pydicom.uid import UID

            name = UID(text).name
            if name != text:
                return name
        except Exception:  # an odd value must not stop a message from being written
            pass
    return printable(text)


# --------------------------------------------------------------------------- not DICOM / header

NOT_DICOM_NO_ATTRIBUTES = "not a valid DICOM file: no study, series or instance attributes"
NOT_DICOM_LENGTHS = "not a valid DICOM file: element lengths run past the end of the file"
NOT_DICOM_ZEROS = "not a valid DICOM file: zero bytes where its first data element should be"
EMPTY_FILE = "empty file"


def not_regular_file(mode: int) -> str:
    """A path that leads to no regular file but to a FIFO, a socket or a device (``mode``: ``os.stat``'s
    ``st_mode``, links followed): it is never opened, as a FIFO would wait for a writer forever."""
    import stat

    kinds = ((stat.S_ISFIFO, "a FIFO"), (stat.S_ISSOCK, "a socket"),
             (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"))
    kind = next((name for test, name in kinds if test(mode)), "a special file")
    return f"not a regular file ({kind})"
#: A file named directly that neither claims to be DICOM (no ``DICM`` prefix, no DICOM suffix) nor is a PNG/JPEG.
NOT_DICOM_OR_IMAGE = "not a DICOM or image file"


#: First bytes of files that are often given a DICOM name or dropped among films, with what they are.
_FILE_SIGNATURES = {b"%PDF-": "a PDF document", b"PK\x03\x04": "a ZIP archive (or an Office document)",
                    b"GIF87a": "a GIF image", b"GIF89a": "a GIF image", b"II*\x00": "a TIFF image",
                    b"MM\x00*": "a TIFF image", b"RIFF": "a RIFF file (WebP image, WAV or AVI)",
                    b"\x1f\x8b": "a gzip archive", b"7z\xbc\xaf\x27\x1c": "a 7-Zip archive"}


def file_kind(head: bytes) -> str | None:
    """What a file that is not DICOM is, from ``head`` (its first bytes, up to 132): one of the signatures
    above, or "a text file" when every byte is printable text (UTF-8, tabs and line ends; a character cut
    at the end of ``head`` is allowed); None when it cannot be told. A DICOM file cannot begin so: its
    128-byte preamble and ``DICM`` (checked first by the caller) or its first tag, (0008,xxxx) little endian,
    come first."""
    for signature, kind in _FILE_SIGNATURES.items():
        if head.startswith(signature):
            return kind
    if not head:
        return None
    text = head.decode("utf-8", errors="ignore")
    if len(text.encode("utf-8")) < len(head) - 3:  # more than one character cut at the end: not UTF-8
        return None
    if all(ch.isprintable() or ch in "\t\n\r\f" for ch in text.lstrip("\ufeff")):
        return "a text file"
    return None


def not_dicom(detail: str) -> str:
    """A file that does not parse as DICOM; ``detail`` says what the parser met."""
    return f"not a valid DICOM file: {printable(detail, 160)}"


def truncated_header(size: int) -> str:
    """The file ends inside a header element (before any pixel data)."""
    return f"truncated DICOM header: the file ends at byte {size:,} inside an element"


def ends_before_pixel_data(size: int) -> str:
    """An image's header is complete, but the file ends where its pixel data should begin."""
    return f"truncated DICOM file: it ends at byte {size:,}, before its pixel data"


def no_pixel_data(rows: int | None, columns: int | None) -> str:
    """An image's header is whole and the file ends with it, with no pixel data element at all (not cut:
    :func:`ends_before_pixel_data`)."""
    image = f"a {columns} × {rows} image" if rows and columns else "an image"
    return (f"no pixel data: the header describes {image} but the file has no Pixel Data element "
            "(a header-only export?)")


def truncated_pixel_data(present: int, expected: int, *, encapsulated: bool = False) -> str:
    """The pixel data holds fewer bytes than the header says it must (``expected`` is a minimum
    for compressed data, whose full length is not known until it ends)."""
    if encapsulated:
        return (f"pixel data truncated: the file holds {present:,} of at least {expected:,} bytes of "
                "compressed pixel data (the file was cut short)")
    return f"pixel data truncated: the file holds {present:,} of the {expected:,} bytes of pixel data"


# --------------------------------------------------------------------------- DICOM without an image


def dicomdir(n_files: int | None = None) -> str:
    """A DICOMDIR given where an image was expected."""
    count = f" listing {n_files:,} file(s)" if n_files is not None else ""
    return (f"a DICOMDIR (the index of a DICOM file-set{count}), not an image: open the DICOMDIR or its "
            "folder to read the images it lists")


def not_an_image(kind: str) -> str:
    """A DICOM object that holds no image: ``kind`` names it (``Basic Text SR``, ``Grayscale
    Softcopy Presentation State``, ``RT Plan`` …, or a UID)."""
    return f"a DICOM {printable(kind, 120)} object, not an image: it holds no pixel data"


def float_pixel_data(keyword: str) -> str:
    """Float or Double Float Pixel Data: parametric maps, not radiographs."""
    label = "Double Float Pixel Data" if keyword == "DoubleFloatPixelData" else "Float Pixel Data"
    return (f"the image is stored as {label} (a parametric map of real values, not a radiograph); "
            "only integer Pixel Data can be read")


def no_decoder(syntax: object, detail: str = "") -> str:
    """No installed decoder handles the transfer syntax."""
    extra = f" ({printable(detail, 160)})" if detail else ""
    return f"no decoder for transfer syntax {uid_text(syntax)}{extra}"


# --------------------------------------------------------------------------- PNG / JPEG


def image_too_large(size: str, limit: int) -> str:
    """An image whose header gives more pixels than this program decodes (``size`` in words, e.g.
    ``50000×50000``); worded alike for DICOM, PNG and JPEG."""
    return f"image too large: {size} exceeds {limit:,} pixels"


def raster_too_large(error: BaseException, limit: int) -> str:
    """Pillow's DecompressionBombError ("Image size (N pixels) exceeds limit of M pixels, could be
    decompression bomb DOS attack.") as :func:`image_too_large` words it."""
    match = re.search(r"\((\d+) pixels\)", str(error))
    return image_too_large(f"{int(match.group(1)):,} pixels" if match else "the header's size", limit)


def not_png_or_jpeg(error: BaseException | str) -> str:
    """A file named ``.png``/``.jpg`` whose header Pillow cannot read. Pillow's "cannot identify
    image file <_io.BytesIO object at 0x…>" names a memory address, not the fault: it becomes
    "unrecognised or damaged header", the same however the file was opened."""
    detail = str(error)
    if type(error).__name__ == "UnidentifiedImageError" or detail.startswith("cannot identify image file"):
        detail = "unrecognised or damaged image header"
    return f"not a PNG or JPEG image ({printable(detail, 160)})"
