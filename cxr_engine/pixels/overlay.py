"""Heat-map colouring and blending, shared by the CLI, the app and the reports.

**What a colour means** (the app and the PDF): a Grad-CAM map is min-max scaled within its
image (``predictions.HeatmapResult``), so on its own a class the model gives 2 % would look as red as
the winning class. Before it is shown the map is multiplied by the probability of the class it
explains (``shown_heat``): 1.0 (dark red) is the strongest evidence in a film the model is
certain of; a 2 % class peaks at 0.02 and, below ``FADE[0]``, is not drawn at all. Colours can
then be compared between classes and between images. The outline mode draws one contour where
that shown value reaches ``OUTLINE_LEVEL`` (``outline_contours``).
"""
from __future__ import annotations

import numpy as np

from .contours import outer_contours, polygon_area

#: The colour map used everywhere a heat-map is shown (OpenCV's name), low → high evidence.
COLORMAP_NAME = "JET"
#: OpenCV's COLORMAP_JET (MATLAB's jet interpolated to 256 entries, rounded) as the corners of its
#: piecewise-linear channels: (index, value) per channel, red, green, blue. Interpolated at every
#: index they give OpenCV's 256 × 3 table exactly (``tests/test_resampling.py`` compares with cv2).
JET_CORNERS = (
    ((0, 0), (95, 0), (96, 2), (159, 254), (160, 255), (223, 255), (224, 252), (255, 128)),
    ((0, 0), (32, 0), (95, 252), (96, 255), (159, 255), (160, 252), (223, 0), (255, 0)),
    ((0, 128), (31, 252), (32, 255), (95, 255), (96, 254), (158, 6), (159, 1), (160, 0), (255, 0)),
)


def colour_table(corners=JET_CORNERS) -> np.ndarray:
    """The colour map as a uint8 (256, 3) RGB table, entry i for heat i / 255."""
    index = np.arange(256)
    channels = [np.interp(index, [i for i, _ in corner], [v for _, v in corner]) for corner in corners]
    return np.rint(np.stack(channels, axis=1)).astype(np.uint8)


_COLOURS = colour_table()
#: Heat at or below FADE[0] shows no colour (the film is not tinted everywhere); at or above
#: FADE[1] the colour has its full opacity. Screen, CLI heat-maps and reports share it.
FADE = (0.2, 0.5)
#: The outline mode's contour: where the shown value (Grad-CAM × class probability) reaches this.
OUTLINE_LEVEL = 0.5

#: The legend's words, shared by the app's colour bar and the PDF.
LEGEND_TITLE = "Grad-CAM × class probability"
LEGEND_NOTE = (
    "Colour = Grad-CAM (where the model's score for the class shown rose most, 1 at this image's strongest "
    "point) times the probability it gives the class: dark red only where a class called at about 100 % rose "
    "most. The strength compares between classes and images; the shape is relative to this image alone. It "
    f"shows where the model looked, not a finding. Below {FADE[0]:g} nothing is drawn, so a class given less "
    f"than {FADE[0] * 100:.0f} % shows no colour. The outline encloses where the value is at least "
    f"{OUTLINE_LEVEL:g}."
)
#: The same in two lines, for the PDF's legend (``OUTLINE_NOTE`` follows it when the map is an outline).
LEGEND_SHORT = (
    "Grad-CAM (1 at the image's peak) × the class's probability: strength compares between images, shape "
    f"does not; below {FADE[0]:g} not drawn."
)
#: The PDF legend's words for a heat-map drawn as an outline.
OUTLINE_NOTE = f"Outline: contour where the value reaches {OUTLINE_LEVEL:g}."
#: The heat-map's two looks: colours over the film, or one contour at ``OUTLINE_LEVEL``.
HEATMAP_STYLES = ("colour", "outline")


def shown_heat(heatmap: np.ndarray, probability: float) -> np.ndarray:
    """The map as shown: float32 (H, W) ``heatmap`` ([0, 1], min-max within its image) times
    ``probability`` (the class's probability, [0, 1]). Raises ``ValueError`` for a probability
    outside [0, 1]."""
    p = float(probability)
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"class probability must be in [0, 1], got {probability!r}")
    return np.asarray(heatmap, dtype=np.float32) * np.float32(p)


def outline_contours(shown: np.ndarray, level: float = OUTLINE_LEVEL) -> list[np.ndarray]:
    """Closed contours around the regions where ``shown`` (a ``shown_heat`` map, H×W) is at least
    ``level``: a list of float32 (N, 2) arrays of (x, y) = (column, row) pixel-centre coordinates,
    largest region first (equal areas in raster order); empty when no pixel reaches the level. Border
    following (Suzuki & Abe 1985, ``contours.outer_contours``) on the thresholded map; holes are not traced."""
    mask = np.asarray(shown) >= level
    if not mask.any():
        return []
    ordered = sorted(outer_contours(mask), key=polygon_area, reverse=True)
    return [c.astype(np.float32) for c in ordered]


def colorize(heatmap: np.ndarray) -> np.ndarray:
    """RGB uint8 (H, W, 3) colours for a [0, 1] heat-map (:data:`JET_CORNERS`' table)."""
    index = np.rint(np.clip(heatmap, 0.0, 1.0) * 255).astype(np.uint8)
    return _COLOURS[index]


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
