"""Small image filters in numpy, bit-exact with OpenCV's where a trained model consumes them.

The image checks' features (``cxr_engine.models.image_checks``) feed a trained MLP, so the Sobel
derivatives and the Laplacian here reproduce ``cv2.Sobel(..., ksize=3)`` and ``cv2.Laplacian`` (ksize 1)
on float32 bit for bit: the same border (``BORDER_REFLECT_101``, numpy's ``reflect``), and the same
float32 operations in the same order (products by 1, 2 and -4 are exact; additions are not
associative). ``tests/test_filters.py`` compares with OpenCV on real films.
"""
from __future__ import annotations

import numpy as np

_TWO = np.float32(2)
_MINUS_FOUR = np.float32(-4)


def _float32_2d(image: np.ndarray) -> np.ndarray:
    array = np.asarray(image, dtype=np.float32)
    if array.ndim != 2:
        raise ValueError(f"expected a 2-D image, got shape {array.shape}")
    return array


def sobel_x(image: np.ndarray) -> np.ndarray:
    """float32 (H, W) horizontal derivative of a 2-D image: [-1, 0, 1] along the columns, smoothed by
    [1, 2, 1] down the rows (Sobel 3×3), borders reflected without repeating the edge pixel.
    Equals ``cv2.Sobel(image, cv2.CV_32F, 1, 0, ksize=3)``. Raises ``ValueError`` unless 2-D."""
    padded = np.pad(_float32_2d(image), 1, mode="reflect")
    across = padded[:, 2:] - padded[:, :-2]
    return (across[:-2] + across[2:]) + across[1:-1] * _TWO


def sobel_y(image: np.ndarray) -> np.ndarray:
    """float32 (H, W) vertical derivative: the transpose of :func:`sobel_x`'s kernel.
    Equals ``cv2.Sobel(image, cv2.CV_32F, 0, 1, ksize=3)``. Raises ``ValueError`` unless 2-D."""
    padded = np.pad(_float32_2d(image), 1, mode="reflect")
    smoothed = (padded[:, :-2] + padded[:, 2:]) + padded[:, 1:-1] * _TWO
    return smoothed[2:] - smoothed[:-2]


def laplacian(image: np.ndarray) -> np.ndarray:
    """float32 (H, W) 4-neighbour Laplacian ([[0, 1, 0], [1, -4, 1], [0, 1, 0]]), borders reflected
    without repeating the edge pixel. Equals ``cv2.Laplacian(image, cv2.CV_32F)``. Raises ``ValueError``
    unless 2-D."""
    padded = np.pad(_float32_2d(image), 1, mode="reflect")
    centre = padded[1:-1, 1:-1]
    return (((padded[:-2, 1:-1] + padded[1:-1, :-2]) + centre * _MINUS_FOUR) + padded[1:-1, 2:]) + padded[2:, 1:-1]
