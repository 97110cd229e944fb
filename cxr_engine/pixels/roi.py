"""Region-of-interest statistics and angles on a ``CxrImage``, in image pixel coordinates. No Qt.

Coordinates are (x, y) = (column, row) with pixel (r, c) covering [c, c + 1) × [r, r + 1), as the
viewer's scene uses them. A pixel belongs to a region when its centre (c + 0.5, r + 0.5) lies
inside the rectangle or ellipse spanned by two opposite corners.

Values are the image's modality values (``CxrImage.modality``: the stored values through the
modality LUT / Rescale Slope and Intercept, PS3.3 C.11.1, in the file's units); pixels that are not image
data (``CxrImage.padding``) are left out and counted, as padding (Pixel Padding Value, PS3.3 C.7.5.1.1.2) or as
outside the display shutter (``CxrImage.shutter``, PS3.3 C.7.6.11), so the label says which. The SD is the population
standard deviation (numpy's default, ddof=0), as viewers such as OsiriX and RadiAnt report.
Areas are the drawn shape's geometric area (π/4 · width · height for an ellipse) in mm² from
``spacing_mm`` (row, column), else in px²; the label names it "area" and, on a line of its own, the count of
pixels measured "n = … pixels", so the two close numbers are not read as one.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .image import CxrImage

RECTANGLE, ELLIPSE = "rectangle", "ellipse"

Point = tuple[float, float]


def roi_mask(shape: tuple[int, int], kind: str, corner_a: Point, corner_b: Point) -> tuple[slice, slice, np.ndarray]:
    """The region's pixels as (row slice, column slice, bool mask of that box); the box is clipped to
    ``shape`` (rows, columns) and may be empty. ``ValueError`` for a kind other than rectangle or ellipse."""
    if kind not in (RECTANGLE, ELLIPSE):
        raise ValueError(f"ROI kind must be {RECTANGLE!r} or {ELLIPSE!r}, got {kind!r}")
    (xa, ya), (xb, yb) = corner_a, corner_b
    x0, x1, y0, y1 = min(xa, xb), max(xa, xb), min(ya, yb), max(ya, yb)
    rows, cols = shape
    # Pixels whose centre can lie inside: c + 0.5 in [x0, x1]  ->  c in [ceil(x0 - 0.5), floor(x1 - 0.5)].
    c0, c1 = max(math.ceil(x0 - 0.5), 0), min(math.floor(x1 - 0.5), cols - 1)
    r0, r1 = max(math.ceil(y0 - 0.5), 0), min(math.floor(y1 - 0.5), rows - 1)
    rs, cs = slice(r0, max(r1 + 1, r0)), slice(c0, max(c1 + 1, c0))
    height, width = rs.stop - rs.start, cs.stop - cs.start
    if kind == RECTANGLE or height <= 0 or width <= 0:
        return rs, cs, np.ones((max(height, 0), max(width, 0)), dtype=bool)
    cy, cx = (y0 + y1) / 2.0, (x0 + x1) / 2.0
    ry, rx = max((y1 - y0) / 2.0, 1e-9), max((x1 - x0) / 2.0, 1e-9)
    yy = (np.arange(rs.start, rs.stop) + 0.5 - cy)[:, None] / ry
    xx = (np.arange(cs.start, cs.stop) + 0.5 - cx)[None, :] / rx
    return rs, cs, (yy * yy + xx * xx) <= 1.0


@dataclass(frozen=True)
class RoiStats:
    """Statistics of the modality values inside a region (``pixels`` of them; ``padding`` more were
    padding and ``outside_shutter`` more lay outside the display shutter, both left out; a pixel outside the
    shutter counts there whatever its value). ``mean``, ``sd``, ``minimum``, ``maximum`` are None for an empty region.
    ``area`` is in ``area_unit`` (``mm²`` with pixel spacing, else ``px²``)."""

    pixels: int
    padding: int
    mean: float | None
    sd: float | None
    minimum: float | None
    maximum: float | None
    area: float
    area_unit: str
    detector: bool = False  # the spacing is ImagerPixelSpacing (at the detector, not the patient)
    outside_shutter: int = 0

    def lines(self) -> list[str]:
        """Short lines for a label next to the region: mean and SD, min and max (all in the modality values'
        units), the drawn shape's area (``area 18,561 px²``) and, on a line of its own, the number of pixels
        measured (``n = 18,559 pixels``): an area in px² and a pixel count are close numbers that mean different
        things (the geometric area of the shape and the pixels whose centre lies inside it), and on one line
        the label grew wider than a 1×2 viewport. The pixels left out follow the count, named for what they are:
        ``(12 padding pixels left out)``, ``(1,204 pixels outside the display shutter left out)`` or both
        (``(12 padding pixels and 1,204 pixels outside the display shutter left out)``). One line when the region
        holds no image pixels."""
        area = f"area {self.area:,.1f} {self.area_unit}" if self.area_unit == "mm²" else \
            f"area {self.area:,.0f} {self.area_unit}"
        area += " (detector)" if self.detector else ""
        if self.mean is None:
            return [f"no image pixels · {area}"]
        lines = [f"mean {_value(self.mean)}  SD {_value(self.sd)}",
                 f"min {_value(self.minimum)}  max {_value(self.maximum)}",
                 area, f"n = {self.pixels:,} {'pixel' if self.pixels == 1 else 'pixels'}"]
        left_out = []
        if self.padding:
            left_out.append(f"{self.padding:,} padding {'pixel' if self.padding == 1 else 'pixels'}")
        if self.outside_shutter:
            left_out.append(f"{self.outside_shutter:,} {'pixel' if self.outside_shutter == 1 else 'pixels'} "
                            "outside the display shutter")
        if left_out:
            lines[-1] += f" ({' and '.join(left_out)} left out)"
        return lines


def _value(value: float) -> str:
    return f"{value:.1f}" if abs(value) < 1e5 else f"{value:.4g}"


def roi_stats(image: CxrImage, kind: str, corner_a: Point, corner_b: Point) -> RoiStats:
    """Statistics of ``image``'s modality values in the rectangle or ellipse spanned by the corners."""
    rs, cs, mask = roi_mask(image.shape, kind, corner_a, corner_b)
    values = image.modality[rs, cs][mask] if mask.size else np.zeros(0, dtype=np.float64)
    padding = outside_shutter = 0
    if image.padding is not None and mask.size:
        pad = image.padding[rs, cs][mask]  # padding and the pixels outside the shutter
        if image.shutter is not None:
            outside = image.shutter[rs, cs][mask]
            outside_shutter = int(outside.sum())
            padding = int((pad & ~outside).sum())
        else:
            padding = int(pad.sum())
        values = values[~pad]
    (xa, ya), (xb, yb) = corner_a, corner_b
    width, height = abs(xb - xa), abs(yb - ya)
    area_px = width * height * (math.pi / 4.0 if kind == ELLIPSE else 1.0)
    if image.spacing_mm:
        row_mm, col_mm = image.spacing_mm
        area, unit = area_px * row_mm * col_mm, "mm²"
    else:
        area, unit = area_px, "px²"
    detector = bool(image.spacing_mm) and image.spacing_source == "ImagerPixelSpacing"
    if values.size == 0:
        return RoiStats(0, padding, None, None, None, None, area, unit, detector, outside_shutter)
    v = values.astype(np.float64)
    return RoiStats(int(v.size), padding, float(v.mean()), float(v.std()), float(v.min()), float(v.max()),
                    area, unit, detector, outside_shutter)


def angle_degrees(end_a: Point, vertex: Point, end_b: Point, row_col_scale: tuple[float, float] = (1.0, 1.0)) -> float:
    """The angle at ``vertex`` between the arms to ``end_a`` and ``end_b``, in degrees [0, 180], measured
    in physical space: ``row_col_scale`` is the (row, column) pixel spacing or any pair in its ratio
    (``CxrImage.spacing_mm``, else (``pixel_aspect``, 1)). 0 when an arm has no length."""
    row_s, col_s = row_col_scale
    ax, ay = (end_a[0] - vertex[0]) * col_s, (end_a[1] - vertex[1]) * row_s
    bx, by = (end_b[0] - vertex[0]) * col_s, (end_b[1] - vertex[1]) * row_s
    if math.hypot(ax, ay) == 0 or math.hypot(bx, by) == 0:
        return 0.0
    return abs(math.degrees(math.atan2(ax * by - ay * bx, ax * bx + ay * by)))
