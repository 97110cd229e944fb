"""Heat-map colouring and blending, shared by the CLI, the app and the reports."""
from __future__ import annotations

import numpy as np

#: The colour map used everywhere a heat-map is shown (OpenCV's name), low → high evidence.
COLORMAP_NAME = "JET"
#: Heat at or below FADE[0] shows no colour (the film is not tinted everywhere); at or above
#: FADE[1] the colour has its full opacity. Screen, CLI heat-maps and reports share it.
FADE = (0.2, 0.5)


def colorize(heatmap: np.ndarray) -> np.ndarray:
    """RGB uint8 (H, W, 3) colours for a [0, 1] heat-map."""
    import cv2

    index = np.rint(np.clip(heatmap, 0.0, 1.0) * 255).astype(np.uint8)
    bgr = cv2.applyColorMap(index, getattr(cv2, f"COLORMAP_{COLORMAP_NAME}"))
    return bgr[..., ::-1].copy()


def blend(grey: np.ndarray, heatmap: np.ndarray, opacity: float = 0.5, fade: tuple[float, float] = FADE) -> np.ndarray:
    """RGB uint8 image: ``grey`` (uint8, H×W) with the coloured heat-map over it.

    Opacity ramps from 0 at heat ``fade[0]`` to ``opacity`` at ``fade[1]`` and above, so weak
    evidence leaves the film untinted and the reader sees the anatomy under the hot spots.
    """
    if grey.shape != heatmap.shape:
        raise ValueError(f"image {grey.shape} and heat-map {heatmap.shape} differ in shape")
    base = np.repeat(grey[..., None], 3, axis=2).astype(np.float32)
    alpha = (float(opacity) * heat_alpha(heatmap, fade))[..., None]
    mixed = base * (1.0 - alpha) + colorize(heatmap).astype(np.float32) * alpha
    return np.rint(mixed).astype(np.uint8)


def heat_alpha(heatmap: np.ndarray, fade: tuple[float, float] = FADE) -> np.ndarray:
    """Per-pixel opacity factor in [0, 1] for a heat-map (0 below ``fade[0]``, 1 above ``fade[1]``)."""
    low, high = fade
    return np.clip((heatmap.astype(np.float32) - low) / max(high - low, 1e-6), 0.0, 1.0)
