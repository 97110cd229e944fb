"""The heat-map layer as an RGBA array: engine colours, transparent where evidence is weak. No Qt.

Colours mean Grad-CAM × the probability of the class shown (``cxr_engine.pixels.overlay.shown_heat``),
so a class the model gives 2 % is drawn fainter (here: not at all) than one it gives 97 %.
"""
from __future__ import annotations

import numpy as np

from cxr_engine.pixels.overlay import FADE, colorize, heat_alpha, shown_heat

#: Heat at or below this shows no colour, so the whole film is not tinted blue.
TRANSPARENT_BELOW = FADE[0]
#: Heat at or above this is fully opaque (the layer's own opacity still applies on top).
OPAQUE_FROM = FADE[1]


def heatmap_rgba(heatmap: np.ndarray, probability: float = 1.0) -> np.ndarray:
    """RGBA uint8 (H, W, 4) for a [0, 1] heat-map scaled by its class ``probability``; alpha ramps
    from 0 to 255 over the two thresholds of the scaled value."""
    shown = shown_heat(heatmap, probability)
    rgb = colorize(shown)
    alpha = np.rint(heat_alpha(shown) * 255.0).astype(np.uint8)
    return np.ascontiguousarray(np.dstack([rgb, alpha]))


def legend_rgb(length: int = 256) -> np.ndarray:
    """RGB uint8 (1, length, 3): the colour map from 0 (left) to 1 (right) of Grad-CAM × probability."""
    return colorize(np.linspace(0.0, 1.0, length, dtype=np.float32)[None, :])
