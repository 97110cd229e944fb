"""Framing-shift test: does the call survive the way another hospital frames the same chest?

cxr3's adult normals come from one hospital; other places crop tightly to the thorax, leave
wide black or grey borders, position the patient off-centre or slightly rotated and burn in
markers, and a model that learned the one framing calls such normal films COVID-19. Each
shift below is applied, with fixed settings, to the unnormalised model input of each test image, which is then
contrast-stretched again (as ``resize_and_stretch`` stretches a film framed that way) and goes through
``Classifier.predict``. The measure is the share of calls that change: a film's diagnosis does
not depend on its framing. ``training.data.FramingShift`` draws from the same steps in training,
so this shows whether that invariance was learned.
"""
from __future__ import annotations

from typing import Callable

import numpy as np

from cxr_engine.pixels.preprocessing import contrast_stretch

from .degradation import cropped, repositioned, with_markers, zoomed_out
from .processing_shift import shifts_over, shifts_table, whole_film_unnormalised_input
from .report_sections import section_lines

#: Largest share of test calls that any single framing shift may change.
FRAMING_CHANGE_MARGIN = 0.05


def thorax_crop(grey: np.ndarray) -> np.ndarray:
    return cropped(grey, 0.08, 0.92, 0.10, 0.90)


def zoom_out_black(grey: np.ndarray) -> np.ndarray:
    return zoomed_out(grey, 0.8, 0.8, 0.0)


def zoom_out_grey(grey: np.ndarray) -> np.ndarray:
    return zoomed_out(grey, 0.8, 0.8, 0.5)


def shifted_rotated(grey: np.ndarray) -> np.ndarray:
    return repositioned(grey, 5.0, 0.05, 0.05, 0.0)


def markers(grey: np.ndarray) -> np.ndarray:
    return with_markers(grey, (("L", 0.14, 0.05, 0.07, 1.0), ("PORTABLE AP", 0.96, 0.40, 0.045, 1.0),
                               ("ERECT", 0.10, 0.72, 0.045, 1.0)))


#: name -> (what it does, function of the unnormalised model input).
FRAMING_SHIFTS: dict[str, tuple[str, Callable[[np.ndarray], np.ndarray]]] = {
    "thorax crop": ("rows 8–92 %, columns 10–90 % kept and resized back (a tight crop to the thorax)", thorax_crop),
    "zoom out, black border": ("film shrunk to 80 % of each side, centred on black", zoom_out_black),
    "zoom out, grey border": ("film shrunk to 80 % of each side, centred on mid-grey", zoom_out_grey),
    "shifted and rotated": ("rotated 5°, shifted 5 % down and right, black corners", shifted_rotated),
    "burned-in markers": ("'L', 'PORTABLE AP' and 'ERECT' burned in, white, one on a black box", markers),
}


def framed_display(path: str, size: int, name: str) -> np.ndarray:
    """``processing_shift.whole_film_unnormalised_input`` of ``path`` after framing shift ``name``, stretched
    again, in [0, 1]."""
    return contrast_stretch(np.clip(FRAMING_SHIFTS[name][1](whole_film_unnormalised_input(path, size)), 0.0, 1.0))


def check_framing(section: dict | None) -> list[str]:
    """A failure line for every framing shift that changes more than ``FRAMING_CHANGE_MARGIN`` of the calls."""
    return shifts_over(section, "changed", FRAMING_CHANGE_MARGIN,
                       lambda name, changed: f"'{name}' changes {changed:.3f} of the test calls > "
                                             f"{FRAMING_CHANGE_MARGIN:.2f}: the model reads the framing")


def framing_lines(section: dict | None, table: Callable) -> list[str]:
    """The report's section (``table`` is the report's markdown table helper)."""
    def body(section: dict) -> list[str]:
        return ["Each framing was applied with fixed settings to every test image's unnormalised model input, "
                "which was contrast-stretched again and classified. A diagnosis does not depend on framing, so the "
                f"measure is the share of calls that change (allowed: {section['margin']:.2f}). "
                f"Plain test accuracy {section['plain_accuracy']:.3f}.", ""
                ] + shifts_table(section, table, before_recall=[("calls changed", "changed")])
    return section_lines("Framing-shift test", section, "Not run (`--no-shift-test`).", body)
