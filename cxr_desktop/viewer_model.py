"""What the viewer shows, as one observable object; the view and the panels mirror it.

Setters emit a signal only on a real change, so a widget that writes a value back does not
loop. Nothing here draws.
"""
from __future__ import annotations

import numpy as np
from PySide6.QtCore import QObject, Signal

from cxr_engine.pixels.image import CxrImage
from cxr_engine.pixels.windowing import VoiLut, Window

HEATMAP_COLOUR, HEATMAP_OUTLINE = "colour", "outline"
HEATMAP_STYLES = (HEATMAP_COLOUR, HEATMAP_OUTLINE)


class ViewerModel(QObject):
    """Image, window, polarity, orientation, corner overlay and heat-map layer of the viewer."""

    imageChanged = Signal()
    windowChanged = Signal()
    orientationChanged = Signal()
    cornerOverlayChanged = Signal(bool)
    heatmapChanged = Signal()
    heatmapVisibleChanged = Signal(bool)
    heatmapOpacityChanged = Signal(float)
    heatmapStyleChanged = Signal(str)

    def __init__(self, parent: QObject | None = None):
        super().__init__(parent)
        self.image: CxrImage | None = None
        self.renderer = None
        self.voi: Window | VoiLut | None = None
        self.voi_name = ""
        self.user_invert = False
        self.rotation = 0
        self.flip_h = False
        self.flip_v = False
        self.corner_overlay = True
        self.heatmap: np.ndarray | None = None
        self.heatmap_class = ""
        self.heatmap_probability = 1.0
        self.heatmap_style = HEATMAP_COLOUR
        self.heatmap_visible = False
        self.heatmap_opacity = 0.5

    # ------------------------------------------------------------------ image
    @property
    def path(self):
        return self.image.path if self.image is not None else None

    @property
    def pixel_scale(self) -> tuple[float, float]:
        """(x, y) scale that takes image pixels to square display units at the physical aspect.

        ``CxrImage.pixel_aspect`` is row / column spacing; the coarser axis is stretched (as in
        ``CxrImage.display_shape``), so no detail is lost: (1, 2) for rows twice as far apart as
        columns, (2, 1) for the reverse, (1, 1) for square pixels or no image.
        """
        aspect = self.image.pixel_aspect if self.image is not None else 1.0
        if abs(aspect - 1.0) < 1e-3:
            return 1.0, 1.0
        return (1.0, aspect) if aspect > 1.0 else (1.0 / aspect, 1.0)

    @property
    def display_inverted(self) -> bool:
        """True when the screen shows high values dark (MONOCHROME1 XOR the user's invert)."""
        return bool(self.image is not None and self.image.invert) != self.user_invert

    def set_image(self, image: CxrImage | None, renderer=None) -> None:
        """Show a new image with its default window, upright, without a heat-map."""
        self.image, self.renderer = image, renderer
        self.voi = image.default_voi() if image is not None else None
        self.voi_name = "Default"
        self.user_invert = False
        self.rotation, self.flip_h, self.flip_v = 0, False, False
        self.heatmap, self.heatmap_class = None, ""
        self.imageChanged.emit()

    # ------------------------------------------------------------------ window
    def set_voi(self, voi: Window | VoiLut, name: str = "") -> None:
        if voi == self.voi and name == self.voi_name:
            return
        self.voi, self.voi_name = voi, name
        self.windowChanged.emit()

    def set_user_invert(self, invert: bool) -> None:
        if invert != self.user_invert:
            self.user_invert = invert
            self.windowChanged.emit()

    def render(self) -> np.ndarray | None:
        """uint8 pixels for the current window and polarity (the engine's renderer does the work)."""
        if self.renderer is None:
            return None
        return self.renderer.render(self.voi, self.display_inverted)

    # ------------------------------------------------------------------ orientation
    def rotate(self, degrees: int = 90) -> None:
        """Turn clockwise on screen by ``degrees`` (a multiple of 90)."""
        self.rotation = (self.rotation + degrees) % 360
        self.orientationChanged.emit()

    def set_flip(self, horizontal: bool | None = None, vertical: bool | None = None) -> None:
        new_h = self.flip_h if horizontal is None else horizontal
        new_v = self.flip_v if vertical is None else vertical
        if (new_h, new_v) != (self.flip_h, self.flip_v):
            self.flip_h, self.flip_v = new_h, new_v
            self.orientationChanged.emit()

    def reset_display(self) -> None:
        """Default window, original polarity, upright (zoom is the view's own)."""
        if self.image is None:
            return
        self.set_voi(self.image.default_voi(), "Default")
        self.set_user_invert(False)
        if (self.rotation, self.flip_h, self.flip_v) != (0, False, False):
            self.rotation, self.flip_h, self.flip_v = 0, False, False
            self.orientationChanged.emit()

    # ------------------------------------------------------------------ overlays
    def set_corner_overlay(self, visible: bool) -> None:
        if visible != self.corner_overlay:
            self.corner_overlay = visible
            self.cornerOverlayChanged.emit(visible)

    def set_heatmap(self, heatmap: np.ndarray | None, target_class: str = "", probability: float = 1.0) -> None:
        """The Grad-CAM map for the current image (image geometry, [0, 1], min-max within the image) or
        None; ``probability`` is the model's probability of ``target_class``, by which the map is
        scaled when shown (``cxr_engine.pixels.overlay.shown_heat``)."""
        if heatmap is not None and self.image is not None and heatmap.shape != self.image.shape:
            raise ValueError(f"heat-map {heatmap.shape} does not match the image {self.image.shape}")
        self.heatmap, self.heatmap_class, self.heatmap_probability = heatmap, target_class, float(probability)
        self.heatmapChanged.emit()

    def set_heatmap_style(self, style: str) -> None:
        """``HEATMAP_COLOUR`` (a colour wash) or ``HEATMAP_OUTLINE`` (one contour at a stated level)."""
        if style not in HEATMAP_STYLES:
            raise ValueError(f"unknown heat-map style {style!r}; known: {', '.join(HEATMAP_STYLES)}")
        if style != self.heatmap_style:
            self.heatmap_style = style
            self.heatmapStyleChanged.emit(style)

    def set_heatmap_visible(self, visible: bool) -> None:
        if visible != self.heatmap_visible:
            self.heatmap_visible = visible
            self.heatmapVisibleChanged.emit(visible)

    def set_heatmap_opacity(self, opacity: float) -> None:
        opacity = min(max(float(opacity), 0.0), 1.0)
        if abs(opacity - self.heatmap_opacity) > 1e-6:
            self.heatmap_opacity = opacity
            self.heatmapOpacityChanged.emit(opacity)
