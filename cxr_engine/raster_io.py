"""Read PNG / JPEG radiographs into a ``CxrImage`` (greyscale, values kept as stored)."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from .errors import ImageReadError, UnsupportedImageError
from .image import CxrImage
from .windowing import Window

RASTER_SUFFIXES = {".png", ".jpg", ".jpeg"}


def read_raster(path: str | Path, max_pixels: int | None = None) -> CxrImage:
    """Decode a PNG or JPEG file; colour images are converted to greyscale with a warning.

    8-bit files get the identity window (0 → black, 255 → white); 16-bit files their full range.
    """
    import cv2

    from .dicom_io import MAX_PIXELS

    path = Path(path)
    try:
        data = np.fromfile(path, dtype=np.uint8)
    except OSError as exc:
        raise ImageReadError(path, f"cannot read file ({exc.strerror or exc})") from exc
    if data.size == 0:
        raise ImageReadError(path, "empty file")
    _check_header_size(path, data, max_pixels or MAX_PIXELS)
    image = cv2.imdecode(data, cv2.IMREAD_UNCHANGED)
    if image is None:
        raise ImageReadError(path, "not a decodable PNG or JPEG image (corrupt or truncated)")
    warnings = []
    if image.ndim == 3:
        channels = image.shape[2]
        code = cv2.COLOR_BGRA2GRAY if channels == 4 else cv2.COLOR_BGR2GRAY
        if not _is_grey(image[..., :3]):
            warnings.append("colour image converted to greyscale")
        image = cv2.cvtColor(image, code)
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


def _is_grey(bgr: np.ndarray) -> bool:
    return bool(np.array_equal(bgr[..., 0], bgr[..., 1]) and np.array_equal(bgr[..., 1], bgr[..., 2]))


def _check_header_size(path: Path, data: np.ndarray, max_pixels: int) -> None:
    """Refuse absurd dimensions from the header before cv2 allocates memory for them."""
    from PIL import Image, UnidentifiedImageError
    import io

    try:
        with Image.open(io.BytesIO(data.tobytes())) as probe:
            width, height = probe.size
    except Image.DecompressionBombError as exc:  # Pillow's own, lower limit on the header's size
        raise UnsupportedImageError(path, f"image too large: {exc}") from exc
    except (UnidentifiedImageError, OSError, ValueError) as exc:
        raise ImageReadError(path, f"not a PNG or JPEG image ({exc})") from exc
    if width * height > max_pixels:
        raise UnsupportedImageError(path, f"image too large: {width}×{height} exceeds {max_pixels:,} pixels")
