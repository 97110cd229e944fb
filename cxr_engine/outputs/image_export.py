"""Writing a rendered view (RGB pixels) as PNG or JPEG, atomically and with no metadata.

The files carry pixels only: no PNG text chunks, no EXIF or comment in the JPEG (Pillow writes
none unless asked), so a de-identified rendering stays de-identified on disk.
"""
from __future__ import annotations

import io
from pathlib import Path

import numpy as np

from .atomic import write_bytes_atomic

#: File suffix -> Pillow format name.
VIEW_FORMATS = {".png": "PNG", ".jpg": "JPEG", ".jpeg": "JPEG"}
JPEG_QUALITY = 92


def encode_view(rgb: np.ndarray, image_format: str, jpeg_quality: int = JPEG_QUALITY) -> bytes:
    """``rgb`` uint8 (H, W, 3) encoded as ``PNG`` or ``JPEG`` (4:4:4, ``jpeg_quality``)."""
    from PIL import Image

    if rgb.dtype != np.uint8 or rgb.ndim != 3 or rgb.shape[2] != 3:
        raise ValueError(f"expected uint8 RGB (H, W, 3), got {rgb.dtype} {rgb.shape}")
    buffer = io.BytesIO()
    picture = Image.fromarray(np.ascontiguousarray(rgb), "RGB")
    if image_format == "JPEG":
        picture.save(buffer, "JPEG", quality=int(jpeg_quality), subsampling=0)
    elif image_format == "PNG":
        picture.save(buffer, "PNG", optimize=False)
    else:
        raise ValueError(f"unknown image format {image_format!r}; use PNG or JPEG")
    return buffer.getvalue()


def write_view_image(path: str | Path, rgb: np.ndarray, jpeg_quality: int = JPEG_QUALITY) -> Path:
    """Write ``rgb`` to ``path`` (``.png``, ``.jpg`` or ``.jpeg``) atomically; ``ValueError`` for
    another suffix, ``OSError`` when the file cannot be written."""
    path = Path(path)
    image_format = VIEW_FORMATS.get(path.suffix.lower())
    if image_format is None:
        raise ValueError(f"{path.name}: the file name must end in .png, .jpg or .jpeg")
    write_bytes_atomic(path, encode_view(rgb, image_format, jpeg_quality))
    return path
