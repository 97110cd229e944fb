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


#: Rows built at a time: the temporaries stay in the CPU's cache instead of ~90 MB of fresh pages.
_BLOCK_ROWS = 64


def heatmap_rgba(heatmap: np.ndarray, probability: float = 1.0) -> np.ndarray:
    """RGBA uint8 (H, W, 4) for a [0, 1] heat-map scaled by its class ``probability``; alpha ramps
    from 0 to 255 over the two thresholds of the scaled value. The colours are ``colorize``'s.
    ``ValueError`` for a probability outside [0, 1] (``shown_heat``).

    Built on the GUI thread whenever a heat-map is shown, so in blocks of rows, each one gather of
    packed 32-bit words: a 2128×2000 map takes 11–16 ms of CPU instead of 75–100 ms channel by
    channel over the whole map (the same bytes; ``benchmarks/README.md``).
    """
    shown_heat(np.zeros(0, np.float32), probability)  # refuses a probability outside [0, 1]
    heat = np.asarray(heatmap, dtype=np.float32)
    height, width = heat.shape
    words = np.empty((height, width), dtype=np.uint32)
    for row in range(0, height, _BLOCK_ROWS):
        shown = shown_heat(heat[row:row + _BLOCK_ROWS], probability)
        index = np.rint(np.clip(shown, 0.0, 1.0) * 255).astype(np.uint8)  # as ``colorize`` indexes its table
        alpha = np.rint(heat_alpha(shown) * 255.0).astype(np.uint32)
        alpha <<= 24
        block = words[row:row + _BLOCK_ROWS]
        np.take(_PACKED_COLOURS, index, out=block, mode="clip")  # "clip": no bounds pass, uint8 always fits
        block |= alpha
    return words.astype("<u4", copy=False).view(np.uint8).reshape(height, width, 4)


def legend_rgb(length: int = 256) -> np.ndarray:
    """RGB uint8 (1, length, 3): the colour map from 0 (left) to 1 (right) of Grad-CAM × probability."""
    return colorize(np.linspace(0.0, 1.0, length, dtype=np.float32)[None, :])
