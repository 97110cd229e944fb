"""Read PNG / JPEG radiographs into a ``CxrImage`` (greyscale, values kept as stored)."""
from __future__ import annotations

import io
from pathlib import Path

import numpy as np

from ..errors import ImageReadError, UnsupportedImageError
from ..messages import image_too_large, not_png_or_jpeg, raster_too_large
from ..pixels.image import CxrImage
from ..pixels.windowing import Window

RASTER_SUFFIXES = {".png", ".jpg", ".jpeg"}
_SIGNATURES = {b"\x89PNG\r\n\x1a\n": "PNG", b"\xff\xd8\xff": "JPEG"}


def raster_signature(head: bytes) -> str | None:
    """``"PNG"`` or ``"JPEG"`` when ``head`` (a file's first bytes) begins with that format's signature
    (PNG: ISO/IEC 15948 5.2; JPEG: the SOI marker and the next marker's ``FF``), else None. A DICOM
    file cannot begin so (its preamble or first element tag comes first)."""
    return next((name for signature, name in _SIGNATURES.items() if head.startswith(signature)), None)


def read_raster(path: str | Path, max_pixels: int | None = None) -> CxrImage:
    """Decode a PNG or JPEG file; colour images are converted to greyscale with a warning.

    The EXIF Orientation (0x0112; Pillow also reads an XMP ``tiff:Orientation``) is applied, all
    eight values, as every photo viewer and Pillow's ``ImageOps.exif_transpose`` do, so a photo
    stored on its side reads upright. 8-bit files get the identity window (0 → black,
    255 → white); 16-bit files their full range.
    """
    from .dicom_io import MAX_PIXELS

    path = Path(path)
    try:
        data = np.fromfile(path, dtype=np.uint8)
    except OSError as exc:
        raise ImageReadError(path, f"cannot read file ({exc.strerror or exc})") from exc
    if data.size == 0:
        raise ImageReadError(path, "empty file")
    orientation = _check_header_size(path, data, max_pixels or MAX_PIXELS)
    image, warnings = _decode(path, data.tobytes())
    # Writable and C-ordered as OpenCV's arrays were (Pillow's buffer is read-only).
    image = np.require(apply_exif_orientation(image, orientation), requirements=("C", "W"))
    if image.ndim == 3:
        if not _is_grey(image):
            warnings.append("colour image converted to greyscale")
        image = rgb_to_grey(image)
    if image.dtype not in (np.uint8, np.uint16):
        raise UnsupportedImageError(path, f"unsupported pixel type {image.dtype}")
    bits = 8 if image.dtype == np.uint8 else 16
    window = Window.from_range(0, 255, "identity") if bits == 8 else None
    return CxrImage(
        path=path,
        stored=image,
        modality=image,
        photometric="MONOCHROME2",
        bits_stored=bits,
        windows=(window,) if window else (),
        source_format="png" if path.suffix.lower() == ".png" else "jpeg",
        warnings=tuple(warnings),
    )


def _decode(path: Path, data: bytes) -> tuple[np.ndarray, list[str]]:
    """The stored pixels (Pillow): uint8 or uint16 (H, W) for grey files, uint8 (H, W, 3) RGB for
    colour, palette and CMYK files; alpha is dropped (a radiograph has none to show). 1-, 2- and
    4-bit grey PNGs are scaled to 0–255 (as libpng's expansion does), 16-bit grey PNGs keep their
    values. Pillow reads 16-bit colour PNGs at 8 bits per channel, which is said in a warning."""
    from PIL import Image

    warnings: list[str] = []
    try:
        with Image.open(io.BytesIO(data)) as decoded:
            decoded.load()
            mode = decoded.mode
            if mode.startswith("I;16"):
                image = np.asarray(decoded).astype(np.uint16)
            elif mode == "I":  # a 16-bit grey PNG in older Pillow releases
                image = np.asarray(decoded)
                if image.size and (image.min() < 0 or image.max() > 65535):
                    raise UnsupportedImageError(path, f"unsupported pixel type {image.dtype}")
                image = image.astype(np.uint16)
            elif mode == "L":
                image = np.asarray(decoded)
            elif mode == "1":
                image = np.asarray(decoded.convert("L"))
            elif mode == "LA":
                image = np.asarray(decoded)[..., 0]
            else:
                if _is_16_bit_colour_png(data):
                    warnings.append("16-bit colour PNG read at 8 bits per channel")
                image = np.asarray(decoded.convert("RGB"))
    except (OSError, ValueError, SyntaxError) as exc:
        raise ImageReadError(path, "not a decodable PNG or JPEG image (corrupt or truncated)") from exc
    return image, warnings


def _is_16_bit_colour_png(data: bytes) -> bool:
    """True for a PNG whose IHDR (ISO/IEC 15948 11.2.2) declares bit depth 16 and colour type 2 or 6."""
    return data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 25 and data[24] == 16 and data[25] in (2, 6)


#: ITU-R BT.601 luma weights in 15-bit fixed point, rounded, as OpenCV's RGB→grey conversion uses
#: them (``cv2.COLOR_BGR2GRAY``), so greyscale values match the images the models were trained on.
_LUMA_R, _LUMA_G, _LUMA_B, _LUMA_SHIFT = 9798, 19235, 3735, 15


def rgb_to_grey(rgb: np.ndarray) -> np.ndarray:
    """Grey (H, W) of the same dtype (uint8 or uint16) from ``rgb`` (H, W, 3[+]): round(0.299 R +
    0.587 G + 0.114 B) in OpenCV's fixed point (ITU-R BT.601), bit-exact with ``cv2.cvtColor``."""
    channels = rgb[..., :3].astype(np.int64)
    grey = (channels[..., 0] * _LUMA_R + channels[..., 1] * _LUMA_G + channels[..., 2] * _LUMA_B
            + (1 << (_LUMA_SHIFT - 1))) >> _LUMA_SHIFT
    return grey.astype(rgb.dtype)


def _is_grey(rgb: np.ndarray) -> bool:
    return bool(np.array_equal(rgb[..., 0], rgb[..., 1]) and np.array_equal(rgb[..., 1], rgb[..., 2]))


#: EXIF Orientation → (rows reversed, columns reversed, transposed first): PS "TIFF 6.0" / EXIF 2.3
#: tag 0x0112; the same eight transforms as Pillow's ``ImageOps.exif_transpose``.
_ORIENTATIONS = {
    1: (False, False, False),
    2: (False, True, False),   # mirrored left-right
    3: (True, True, False),    # rotated 180°
    4: (True, False, False),   # mirrored top-bottom
    5: (False, False, True),   # transposed (mirrored along the main diagonal)
    6: (False, True, True),    # stored rotated 90° anticlockwise: turn 90° clockwise
    7: (True, True, True),     # transversed
    8: (True, False, True),    # stored rotated 90° clockwise: turn 90° anticlockwise
}


def apply_exif_orientation(image: np.ndarray, orientation: int) -> np.ndarray:
    """``image`` (H, W[, C]) turned upright for EXIF Orientation 1–8; other values leave it as is.

    Returns a view (possibly non-contiguous); orientations 5–8 swap height and width.
    """
    flip_rows, flip_cols, transpose = _ORIENTATIONS.get(int(orientation), (False, False, False))
    if transpose:
        image = image.swapaxes(0, 1)
    if flip_rows:
        image = image[::-1]
    if flip_cols:
        image = image[:, ::-1]
    return image


def _check_header_size(path: Path, data: np.ndarray, max_pixels: int) -> int:
    """Refuse absurd dimensions from the header before the decoder allocates memory for them; return
    the EXIF Orientation (1 when absent or unreadable)."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(io.BytesIO(data.tobytes())) as probe:
            width, height = probe.size
            orientation = _orientation(probe, data)
    except Image.DecompressionBombError as exc:  # Pillow's own, lower limit on the header's size
        raise UnsupportedImageError(path, raster_too_large(exc, max_pixels)) from exc
    except (UnidentifiedImageError, OSError, ValueError) as exc:
        raise ImageReadError(path, not_png_or_jpeg(exc)) from exc  # worded as the scan words it
    if width * height > max_pixels:
        raise UnsupportedImageError(path, image_too_large(f"{width}×{height}", max_pixels))
    return orientation


def _orientation(probe, data: np.ndarray) -> int:
    """The EXIF Orientation of an open Pillow image (1 when absent or unreadable).

    A PNG's eXIf chunk may follow the image data, where Pillow finds it only by decoding the
    whole file; that is done only when the file holds such a chunk.
    """
    if probe.format == "PNG" and b"eXIf" not in data.tobytes():
        return 1
    try:
        value = int(probe.getexif().get(0x0112, 1) or 1)
    except Exception:  # a damaged EXIF block must not stop the image from being read
        return 1
    return value if value in _ORIENTATIONS else 1
