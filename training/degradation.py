"""Image processing steps that sources differ in, on [0, 1] greyscale float32 images.

Torch-free, so the evaluation's processing-shift test runs where the training stack is absent;
``training.data.AcquisitionShift`` draws its random chain from the same steps.
"""
from __future__ import annotations

import cv2
import numpy as np


def resampled(grey: np.ndarray, factor: float) -> np.ndarray:
    """Down-sampled by ``factor`` (area) and back to the same shape (bilinear): a resolution loss."""
    height, width = grey.shape
    small = cv2.resize(grey, (max(8, round(width / factor)), max(8, round(height / factor))),
                       interpolation=cv2.INTER_AREA)
    return cv2.resize(small, (width, height), interpolation=cv2.INTER_LINEAR)


def sharpened(grey: np.ndarray, sigma: float, amount: float) -> np.ndarray:
    """Unsharp mask: ``amount`` times the detail above a Gaussian blur of ``sigma`` px added back (unclipped)."""
    return grey + amount * (grey - cv2.GaussianBlur(grey, (0, 0), sigma))


def recompressed(grey: np.ndarray, quality: int) -> np.ndarray:
    """Encoded as an 8-bit JPEG at ``quality`` and decoded again (``grey`` itself if encoding fails)."""
    ok, encoded = cv2.imencode(".jpg", np.round(grey * 255.0).astype(np.uint8), [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        return grey
    return cv2.imdecode(encoded, cv2.IMREAD_GRAYSCALE).astype(np.float32) / 255.0
