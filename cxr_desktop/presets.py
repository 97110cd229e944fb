"""Window presets as small policy objects, and the window/level drag rule. No Qt here.

CR and DX values are unitless (no Hounsfield scale), so the chest presets are not absolute
centre/width pairs as in CT: each is a band of the image's own value *distribution*, given as
percentiles counted from the darkest displayed pixel (air, lung) towards the brightest (bone,
metal), so "Lung" means the same thing for MONOCHROME1 and MONOCHROME2 files and adapts to
each exposure. Percentiles were chosen over fractions of the value range because a few
very dark or very bright pixels (collimation, direct exposure, markers) stretch the range
and push the lungs to one end of it.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np

from cxr_engine.pixels.image import CxrImage
from cxr_engine.pixels.windowing import LINEAR, VoiLut, Window, window_fits

#: Dragging this many screen pixels changes the width (or centre) by one auto-window width.
DRAG_PIXELS_PER_AUTO_WIDTH = 500.0
#: The narrowest window a drag can reach, as a fraction of the auto-window width.
MIN_WIDTH_FRACTION = 0.005


class WindowPreset(Protocol):
    """Anything that names itself and gives a VOI for an image."""

    name: str

    def voi_for(self, image: CxrImage) -> Window | VoiLut: ...


@dataclass(frozen=True)
class FromFile:
    """The file's own window or VOI LUT, by position in the file."""

    index: int
    name: str
    use_lut: bool = False

    def voi_for(self, image: CxrImage) -> Window | VoiLut:
        return image.voi_luts[self.index] if self.use_lut else image.windows[self.index]


@dataclass(frozen=True)
class Default:
    """What the engine shows first (the file's own VOI, or an automatic one when it is unusable)."""

    name: str = "Default"

    def voi_for(self, image: CxrImage) -> Window | VoiLut:
        return image.default_voi()


@dataclass(frozen=True)
class FullRange:
    """Every value present, linearly."""

    name: str = "Full range"

    def voi_for(self, image: CxrImage) -> Window:
        return image.full_range_window()


@dataclass(frozen=True)
class Auto:
    """The 0.5–99.5 percentile window."""

    name: str = "Auto"

    def voi_for(self, image: CxrImage) -> Window:
        return image.auto_window()


@dataclass(frozen=True)
class PercentileBand:
    """The values between two percentiles of the image (0–100), counted from the darkest displayed pixel.

    Raises ``ValueError`` naming the preset unless 0 ≤ ``low`` ≤ ``high`` ≤ 100, so that a bad band
    (a hand-edited settings file) is refused where it is made, not when the reader picks it.
    """

    name: str
    low: float
    high: float

    def __post_init__(self) -> None:
        if not 0.0 <= self.low <= self.high <= 100.0:
            raise ValueError(f"window preset {self.name!r}: percentiles {self.low:g} to {self.high:g} are not "
                             "0 <= low <= high <= 100")

    def voi_for(self, image: CxrImage) -> Window:
        low, high = (100.0 - self.high, 100.0 - self.low) if image.invert else (self.low, self.high)
        values = np.percentile(_sample(image), [low, high])
        return Window.from_range(float(values[0]), float(max(values[1], values[0] + 1e-6)), self.name)


#: Chest bands, tuned by eye on the shared CR/DX files (MONOCHROME1 and 2, 8 to 16 bits): the
#: lung band shows the lung fields mid-grey with the mediastinum bright; the mediastinum band
#: blacks out the lungs to show the heart, spine, retrocardiac area and lines through them.
CHEST_PRESETS: tuple[PercentileBand, ...] = (
    PercentileBand("Lung", 0.5, 90.0),
    PercentileBand("Mediastinum", 30.0, 99.5),
)


def _sample(image: CxrImage) -> np.ndarray:
    """Every 4th pixel each way (padding left out): percentiles within a fraction of a grey level, 16× faster."""
    return np.asarray(image.image_values(4))


def presets_for(image: CxrImage, extra: tuple[PercentileBand, ...] = ()) -> list[WindowPreset]:
    """Every preset offered for ``image``, in the order of the keys 2–9: the ones every film has first (Default,
    Auto, Full range, the chest bands, the reader's own ``extra``), so a key means the same on every film (a
    reading radiologist's finding: with the file's own windows first, key 5 was Lung on one film and Auto on
    the next), then the file's own VOI LUTs and windows."""
    presets: list[WindowPreset] = [Default(), Auto(), FullRange(), *CHEST_PRESETS, *extra]
    for i, lut in enumerate(image.voi_luts):
        presets.append(FromFile(i, f"File LUT {i + 1}" + (f": {lut.explanation}" if lut.explanation else ""), True))
    sample = _sample(image) if image.windows else None
    for i, window in enumerate(image.windows):
        label = window.explanation or f"{window.center:g}/{window.width:g}"
        # A file's window outside its own pixel values renders one flat grey (a 16-bit film's 12-bit window):
        # still offered, but marked, so a key press does not leave the reader looking at nothing.
        dead = "" if window_fits(sample, window) else " (outside this film's values: shows nothing)"
        presets.append(FromFile(i, f"File window {i + 1}: {label}{dead}"))
    return presets


def carries_over(preset: WindowPreset) -> bool:
    """Whether ``preset`` means the same on the next film (every one but the file's own and Default): chosen on
    one film, it is applied to the films shown after it, as a reader reading a series expects."""
    return not isinstance(preset, (FromFile, Default))


def drag_start_window(image: CxrImage, voi: Window | VoiLut) -> Window:
    """The centre/width a drag starts from; a VOI LUT has none, so the auto window stands in."""
    return voi if isinstance(voi, Window) else image.auto_window()


def drag_step(image: CxrImage) -> float:
    """Modality units per screen pixel of window/level drag."""
    return image.auto_window().width / DRAG_PIXELS_PER_AUTO_WIDTH


def drag_window(start: Window, dx: float, dy: float, step: float, invert: bool) -> Window:
    """The window after dragging ``dx``, ``dy`` screen pixels from ``start``.

    Right widens the window (less contrast); down darkens the image on screen. Because a
    MONOCHROME1 (``invert``) image shows high values dark, "darker" lowers its centre.
    """
    minimum = max(step * DRAG_PIXELS_PER_AUTO_WIDTH * MIN_WIDTH_FRACTION, 1.0 if start.function == LINEAR else 1e-3)
    width = max(start.width + dx * step, minimum)
    center = start.center + (-dy if invert else dy) * step
    return Window(center, width, start.function, "manual")


def percentile_band(image: CxrImage, window: Window, name: str) -> PercentileBand:
    """The percentile band that ``window`` covers on ``image``, so it can be saved as a preset."""
    sample = np.sort(_sample(image), axis=None)
    low, high = (100.0 * np.searchsorted(sample, v) / max(sample.size, 1) for v in (window.low, window.high))
    if image.invert:
        low, high = 100.0 - high, 100.0 - low
    return PercentileBand(name, round(float(low), 2), round(float(high), 2))
