"""Small image filters in numpy, bit-exact with OpenCV's where a trained model consumes them.

The image checks' features (``cxr_engine.models.image_checks``) feed a trained MLP, so the Sobel
derivatives and the Laplacian here reproduce ``cv2.Sobel(..., ksize=3)`` and ``cv2.Laplacian`` (ksize 1)
on float32 bit for bit: the same border (``BORDER_REFLECT_101``, numpy's ``reflect``), and the same
float32 operations in the same order (products by 1, 2 and -4 are exact; additions are not
associative). The CTR's Gaussian blur (``cxr_engine.models.cardiothoracic``) only places measuring
lines, so it matches ``cv2.GaussianBlur`` to float32 rounding. ``tests/test_filters.py`` compares with
OpenCV on real films.
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


def gaussian_kernel(sigma: float) -> np.ndarray:
    """float32 (n,) normalised Gaussian weights, n = round(8·sigma + 1) made odd (OpenCV's size for
    float images, ``cv2.getGaussianKernel``: ±4 sigma). Raises ``ValueError`` for sigma <= 0."""
    if not sigma > 0:
        raise ValueError(f"sigma must be positive, got {sigma!r}")
    size = int(np.floor(sigma * 8 + 1 + 0.5)) | 1
    offsets = np.arange(size, dtype=np.float64) - (size - 1) / 2.0
    weights = np.exp(-offsets ** 2 / (2.0 * sigma * sigma))
    return (weights / weights.sum()).astype(np.float32)


def _smooth_along(image: np.ndarray, kernel: np.ndarray, axis: int) -> np.ndarray:
    half = len(kernel) // 2
    widths = [(0, 0), (0, 0)]
    widths[axis] = (half, half)
    padded = np.pad(image, widths, mode="symmetric")
    length = image.shape[axis]
    out = np.zeros(image.shape, dtype=np.float32)
    for tap, weight in enumerate(kernel):
        out += weight * (padded[tap:tap + length] if axis == 0 else padded[:, tap:tap + length])
    return out


def gaussian_blur(image: np.ndarray, sigma_x: float, sigma_y: float) -> np.ndarray:
    """float32 (H, W) Gaussian blur of a 2-D image, ``sigma_x`` along the columns and ``sigma_y`` down
    the rows (pixels), borders mirrored with the edge pixel repeated (``BORDER_REFLECT``, numpy's
    ``symmetric``). Equals ``cv2.GaussianBlur(image, (0, 0), sigma_x, sigmaY=sigma_y,
    borderType=cv2.BORDER_REFLECT)`` to float32 rounding (not bit for bit: the sums run in another
    order). Raises ``ValueError`` unless 2-D or for a sigma <= 0."""
    array = _float32_2d(image)
    rows = _smooth_along(array, gaussian_kernel(sigma_x), axis=1)
    return _smooth_along(rows, gaussian_kernel(sigma_y), axis=0)
