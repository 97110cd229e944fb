"""The heat-map layer as an RGBA array: engine colours, transparent where evidence is weak. No Qt.

Colours mean Grad-CAM × the probability of the class shown (``cxr_engine.pixels.overlay.shown_heat``),
so a class the model gives 2 % is drawn fainter (here: not at all) than one it gives 97 %.
"""
from __future__ import annotations

import numpy as np

from cxr_engine.pixels.overlay import FADE, colorize, colour_table, heat_alpha, shown_heat

#: Heat at or below this shows no colour, so the whole film is not tinted blue.
TRANSPARENT_BELOW = FADE[0]
#: Heat at or above this is fully opaque (the layer's own opacity still applies on top).
OPAQUE_FROM = FADE[1]


#: The colour table packed as little-endian RGBA words with alpha 0 (R in the lowest byte).
_PACKED_COLOURS = colour_table().astype(np.uint32) @ np.array([1, 1 << 8, 1 << 16], dtype=np.uint32)


def heatmap_rgba(heatmap: np.ndarray, probability: float = 1.0) -> np.ndarray:
    """RGBA uint8 (H, W, 4) for a [0, 1] heat-map scaled by its class ``probability``; alpha ramps
    from 0 to 255 over the two thresholds of the scaled value. The colours are ``colorize``'s.

    Built on the GUI thread whenever a heat-map is shown, so in one gather of 32-bit words rather
    than per channel: a 2128×2000 map takes about 22 ms of CPU instead of 75 ms (same bytes).
    """
    shown = shown_heat(heatmap, probability)
    index = np.rint(np.clip(shown, 0.0, 1.0) * 255).astype(np.uint8)  # as ``colorize`` indexes its table
    words = np.rint(heat_alpha(shown) * 255.0).astype(np.uint32)
    words <<= 24
    words |= np.take(_PACKED_COLOURS, index)
    return words.astype("<u4", copy=False).view(np.uint8).reshape(*shown.shape, 4)


def legend_rgb(length: int = 256) -> np.ndarray:
    """RGB uint8 (1, length, 3): the colour map from 0 (left) to 1 (right) of Grad-CAM × probability."""
    return colorize(np.linspace(0.0, 1.0, length, dtype=np.float32)[None, :])
