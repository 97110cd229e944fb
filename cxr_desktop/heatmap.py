"""The heat-map layer as an RGBA array: engine colours, transparent where evidence is weak. No Qt."""
from __future__ import annotations

import numpy as np

from cxr_engine.overlay import colorize

#: Heat at or below this shows no colour, so the whole film is not tinted blue.
TRANSPARENT_BELOW = 0.2
#: Heat at or above this is fully opaque (the layer's own opacity still applies on top).
OPAQUE_FROM = 0.5


def heatmap_rgba(heatmap: np.ndarray) -> np.ndarray:
    """RGBA uint8 (H, W, 4) for a [0, 1] heat-map; alpha ramps from 0 to 255 over the two thresholds."""
    rgb = colorize(heatmap)
    ramp = np.clip((np.asarray(heatmap, dtype=np.float32) - TRANSPARENT_BELOW) / (OPAQUE_FROM - TRANSPARENT_BELOW), 0.0, 1.0)
    alpha = np.rint(ramp * 255.0).astype(np.uint8)
    return np.ascontiguousarray(np.dstack([rgb, alpha]))


def legend_rgb(length: int = 256) -> np.ndarray:
    """RGB uint8 (1, length, 3): the colour map from low (left) to high (right) heat."""
    return colorize(np.linspace(0.0, 1.0, length, dtype=np.float32)[None, :])
