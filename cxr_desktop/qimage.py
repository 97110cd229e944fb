"""Conversions between numpy arrays and QImage (copies, so neither side outlives the other)."""
from __future__ import annotations

import numpy as np
from PySide6.QtGui import QImage

_FORMATS = {1: QImage.Format.Format_Grayscale8, 3: QImage.Format.Format_RGB888, 4: QImage.Format.Format_RGBA8888}


def to_qimage(array: np.ndarray) -> QImage:
    """A QImage owning a copy of a uint8 (H, W), (H, W, 3) or (H, W, 4) array."""
    if array.dtype != np.uint8:
        raise ValueError(f"expected uint8 pixels, got {array.dtype}")
    channels = 1 if array.ndim == 2 else array.shape[2]
    if channels not in _FORMATS:
        raise ValueError(f"expected 1, 3 or 4 channels, got shape {array.shape}")
    array = np.ascontiguousarray(array)
    height, width = array.shape[:2]
    image = QImage(array.data, width, height, array.strides[0], _FORMATS[channels])
    return image.copy()


def to_rgb_array(image: QImage) -> np.ndarray:
    """RGB uint8 (H, W, 3) pixels of any QImage."""
    rgb = image.convertToFormat(QImage.Format.Format_RGB888)
    height, width = rgb.height(), rgb.width()
    buffer = np.frombuffer(rgb.constBits(), dtype=np.uint8, count=rgb.sizeInBytes())
    return buffer.reshape(height, rgb.bytesPerLine())[:, : width * 3].reshape(height, width, 3).copy()
