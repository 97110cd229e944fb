"""VOI transforms as pure functions: window centre/width (PS3.3 C.11.2.1.2) and VOI LUT tables.

Every function takes values after the modality LUT and returns float32 in [0, 1] (0 = the
darkest displayed value before any MONOCHROME1 / Presentation LUT inversion). They never
mutate their input. Callers that render 8-bit images build a lookup table with these same
functions (see ``cxr_engine.pixels.rendering``) so that there is one definition of the maths.

What is pydicom's and what stays here:

- The window (LINEAR, LINEAR_EXACT, SIGMOID) is ``pydicom.pixels.apply_windowing``
  (:func:`apply_window`); pydicom scales its output to the dataset's stored range, and a
  one-bit unsigned range asks it for [0, 1].
- The VOI LUT table lookup (:func:`apply_voi_lut_table`) stays hand-written. pydicom's
  ``apply_voi`` reads the table from the dataset and types it by the descriptor's third value,
  which real files get wrong both ways (``cxr_engine.reading.dicom_io._voi_lut``: 12-bit entries
  under a 16-bit descriptor show near-black, 12-bit entries under an 8-bit one overflow uint8) and
  which pydicom refuses for 9 bits; here the table arrives already read and judged by the reader
  (in its decoding worker process), and the lookup is the same clamp-and-gather.
- The fast 8-bit rendering LUT and interactive window/level (``cxr_engine.pixels.rendering``) and
  the window choice (:func:`percentile_window`, :func:`window_fits`) have no pydicom counterpart.

``tests/test_windowing_pydicom.py`` compares both with pydicom on the bug cases and on pydicom's own
test files.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

LINEAR = "LINEAR"
LINEAR_EXACT = "LINEAR_EXACT"
SIGMOID = "SIGMOID"
VOI_FUNCTIONS = (LINEAR, LINEAR_EXACT, SIGMOID)


@dataclass(frozen=True)
class Window:
    """A window centre/width in modality units, with its VOI LUT Function (0028,1056)."""

    center: float
    width: float
    function: str = LINEAR
    explanation: str = ""

    def __post_init__(self):
        if self.function not in VOI_FUNCTIONS:
            raise ValueError(f"VOI LUT Function (0028,1056) {self.function!r} is not one of {VOI_FUNCTIONS}")
        minimum = 1.0 if self.function == LINEAR else 0.0
        if not (self.width >= minimum if self.function == LINEAR else self.width > minimum):
            raise ValueError(f"Window Width (0028,1051) {self.width} is invalid for {self.function}")

    @property
    def low(self) -> float:
        """Lowest value shown brighter than black."""
        return self.center - self.width / 2

    @property
    def high(self) -> float:
        """Highest value shown darker than white."""
        return self.center + self.width / 2

    @classmethod
    def from_range(cls, low: float, high: float, explanation: str = "full range") -> "Window":
        """The LINEAR_EXACT window that maps ``low`` to 0 and ``high`` to 1."""
        width = max(float(high) - float(low), 1e-6)
        return cls(float(low) + width / 2, width, LINEAR_EXACT, explanation)


@dataclass(frozen=True)
class VoiLut:
    """A VOI LUT Sequence item (0028,3010): descriptor and table, PS3.3 C.11.2.1.1."""

    first_mapped: int
    table: np.ndarray  # integer LUT entries
    bits: int
    explanation: str = ""

    @property
    def output_max(self) -> float:
        # Some writers put 8 in the descriptor but store 12-bit entries; trust the data then.
        return float(max(2**self.bits - 1, int(self.table.max(initial=1))))


def percentile_window(values: np.ndarray, low_pct: float = 0.5, high_pct: float = 99.5) -> Window:
    """An automatic window spanning the given percentiles of the values (every 4th pixel sampled)."""
    sample = np.asarray(values)[::4, ::4] if np.ndim(values) == 2 else np.asarray(values)
    low, high = np.percentile(sample, [low_pct, high_pct])
    if high <= low:
        low, high = float(np.min(values)), float(np.max(values))
    return Window.from_range(low, high, f"auto ({low_pct:g}–{high_pct:g} percentile)")


def window_fits(values: np.ndarray, window: Window, min_fraction: float = 0.01) -> bool:
    """True when at least ``min_fraction`` of the pixels fall inside the window (not all clipped)."""
    sample = np.asarray(values)[::4, ::4] if np.ndim(values) == 2 else np.asarray(values)
    inside = np.count_nonzero((sample > window.low) & (sample < window.high))
    return inside >= min_fraction * sample.size


def apply_window(values: np.ndarray, window: Window) -> np.ndarray:
    """Map modality values through ``window``; float32 in [0, 1].

    The three functions of PS3.3 C.11.2.1.2.1 / C.11.2.1.3.2 with y_min = 0 and y_max = 1, computed
    by ``pydicom.pixels.apply_windowing``.
    """
    from pydicom.pixels import apply_windowing

    return apply_windowing(np.asarray(values), _window_dataset(window)).astype(np.float32)


def _window_dataset(window: Window):
    """A dataset holding only what ``apply_windowing`` reads: ``window`` and a one-bit unsigned
    stored range, so that its output range is [0, 1]. Centre and width go in as FD, not DS, so
    that no digit is lost to DS's 16 characters."""
    from pydicom.dataset import Dataset

    ds = Dataset()
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.BitsStored = 1
    ds.PixelRepresentation = 0
    ds.add_new("WindowCenter", "FD", float(window.center))
    ds.add_new("WindowWidth", "FD", float(window.width))
    ds.VOILUTFunction = window.function
    return ds


def apply_voi_lut_table(values: np.ndarray, lut: VoiLut) -> np.ndarray:
    """Map integer modality values through a VOI LUT table; float32 in [0, 1].

    Values below the first mapped value take the first entry, values past the end take
    the last entry (PS3.3 C.11.2.1.1).
    """
    index = np.asarray(values).astype(np.int64) - lut.first_mapped
    np.clip(index, 0, len(lut.table) - 1, out=index)
    return (lut.table[index] / lut.output_max).astype(np.float32)
