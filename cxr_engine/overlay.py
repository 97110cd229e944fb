"""Heat-map colouring and blending, shared by the CLI, the app and the reports."""
from __future__ import annotations

import numpy as np

#: The colour map used everywhere a heat-map is shown (OpenCV's name), low → high evidence.
COLORMAP_NAME = "JET"


def colorize(heatmap: np.ndarray) -> np.ndarray:
    """RGB uint8 (H, W, 3) colours for a [0, 1] heat-map."""
    import cv2

    index = np.rint(np.clip(heatmap, 0.0, 1.0) * 255).astype(np.uint8)
    bgr = cv2.applyColorMap(index, getattr(cv2, f"COLORMAP_{COLORMAP_NAME}"))
    return bgr[..., ::-1].copy()


def blend(grey: np.ndarray, heatmap: np.ndarray, opacity: float = 0.4, threshold: float = 0.0) -> np.ndarray:
    """RGB uint8 image: ``grey`` (uint8, H×W) with the coloured heat-map over it.

    Pixels whose heat is at or below ``threshold`` stay uncoloured, so weak evidence does not
    tint the whole film.
    """
    if grey.shape != heatmap.shape:
        raise ValueError(f"image {grey.shape} and heat-map {heatmap.shape} differ in shape")
    base = np.repeat(grey[..., None], 3, axis=2).astype(np.float32)
    alpha = np.where(heatmap > threshold, float(opacity), 0.0)[..., None].astype(np.float32)
    mixed = base * (1.0 - alpha) + colorize(heatmap).astype(np.float32) * alpha
    return np.rint(mixed).astype(np.uint8)
