"""The Display Shutter (PS3.3 C.7.6.11, part of the DX, CR, MG, XA and RF images' display): which pixels of a
film are shown, and the grey the others are shown at.

A shutter is one to three shapes (0018,1600) Shutter Shape: RECTANGULAR (Left / Right Vertical Edge,
Upper / Lower Horizontal Edge: 1-based column / row numbers, the edges inclusive), CIRCULAR (Center of
Circular Shutter, row\\column, and its Radius in pixels along a row) and POLYGONAL (Vertices of the Polygonal
Shutter, row\\column pairs, closed from the last vertex to the first). The area shown is the intersection of
the shapes' openings; every pixel outside it is shown at (0018,1622) Shutter Presentation Value, a P-value
0..0xFFFF (0 black, 0xFFFF white, after the Presentation LUT: whatever the window and MONOCHROME1/2), black
when absent. The shutter applies to every frame.

Pixels outside the shutter are not image data (a collimated border): the reader adds them to the image's
padding mask (``CxrImage.padding``), so the automatic window, the full range, the value statistics and the
model input leave them out as they leave padding out, and keeps them apart (``CxrImage.shutter``) for
rendering (``cxr_engine.pixels.rendering``). A shutter that cannot be read, whose opening lies entirely
outside the image or that would hide every pixel is ignored with a film warning; BITMAP shutters (an overlay,
C.7.6.15) are not supported: they are left out with a warning, the other shapes still apply.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .. import messages
from .header_checks import multi_values

RECTANGULAR, CIRCULAR, POLYGONAL, BITMAP = "RECTANGULAR", "CIRCULAR", "POLYGONAL", "BITMAP"

#: The largest P-value (PS3.3 C.11.6: P-values are 16-bit, 0 black, 0xFFFF white).
MAX_P_VALUE = 0xFFFF

#: What a malformed shutter attribute raises when read or converted (a bad IS, a missing value).
_UNREADABLE = (ArithmeticError, LookupError, TypeError, ValueError, AttributeError)

#: Coordinates closer than this are the same point (the opening's boundary is part of it).
_EPS = 1e-9


@dataclass(frozen=True, eq=False)
class DisplayShutter:
    """A film's shutter at its decoded pixel grid: ``mask`` bool (rows, columns), True outside the opening
    (not shown, not image data); ``presentation_value`` the P-value (0..0xFFFF) those pixels are shown at."""

    mask: np.ndarray
    presentation_value: int = 0


def read_shutter(ds, shape: tuple[int, int], reduction: int = 1,
                 pixel_aspect: float = 1.0) -> tuple[DisplayShutter | None, list[str]]:
    """The Display Shutter of the film ``ds`` describes at its decoded pixel grid, and film warnings.

    ``shape`` is the decoded (rows, columns); ``reduction`` the factor each way by which the file's pixel grid
    was subsampled (``CxrImage.reduction``): the shutter, in the file's pixel numbers, is sampled at each
    decoded pixel's centre. ``pixel_aspect`` is a stored pixel's height / width (``dicom_io.stored_pixel_aspect``)
    for a circle's radius, given in pixels along a row. None when there is no shutter, it hides no pixel, or
    it is ignored (then with a warning).
    """
    try:
        value = ds.get("ShutterShape")
        shapes = [str(s).strip().upper() for s in ([value] if isinstance(value, str) else multi_values(value))]
    except _UNREADABLE as exc:
        return None, [_ignored(f"Shutter Shape (0018,1600) cannot be read: {messages.printable(exc, 200)}")]
    shapes = [s for i, s in enumerate(shapes) if s and s not in shapes[:i]]
    if not shapes:
        return None, []
    warnings = []
    if BITMAP in shapes:
        warnings.append("Display Shutter BITMAP (an overlay, PS3.3 C.7.6.15) is not supported: that shutter is not "
                        "applied" + (", the film's other shutter shapes are" if len(shapes) > 1 else ""))
        shapes.remove(BITMAP)
    if not shapes:
        return None, warnings
    rows, cols = _pixel_centres(shape, reduction)
    opening = np.ones(shape[:2], dtype=bool)
    for name in shapes:
        try:
            shape_opening = _opening(name, ds, rows, cols, pixel_aspect)
        except _UNREADABLE as exc:
            return None, warnings + [_ignored(f"its {messages.printable(name)} shape cannot be read: "
                                              f"{messages.printable(exc, 200)}")]
        if not shape_opening.any():
            return None, warnings + [_ignored(f"its {name} opening lies entirely outside the image")]
        opening &= shape_opening
    if not opening.any():
        return None, warnings + [_ignored(f"its shapes ({', '.join(shapes)}) leave no pixel of the image shown")]
    if opening.all():
        return None, warnings
    value, value_warning = presentation_value(ds)
    return DisplayShutter(~opening, value), warnings + ([value_warning] if value_warning else [])


def not_image_data(padding: np.ndarray | None, shutter: DisplayShutter | None) -> np.ndarray | None:
    """The pixels that are not image data: ``padding`` (``dicom_io._padding_mask``, bool (rows, columns) or None)
    and the pixels outside ``shutter``; None when neither has any. A new array when both are given."""
    if shutter is None:
        return padding
    if padding is None:
        return shutter.mask
    return padding | shutter.mask


def presentation_value(ds) -> tuple[int, str]:
    """(P-value 0..0xFFFF the pixels outside the shutter are shown at, a warning or ""): (0018,1622) Shutter
    Presentation Value; else the L* of (0018,1624) Shutter Presentation Color CIELab Value (0..0xFFFF for
    L* 0..100, PS3.3 C.10.7.1.1) on a greyscale display, the nearest to a grey; else 0, black."""
    try:
        if ds.get("ShutterPresentationValue") not in (None, ""):
            value = int(multi_values(ds.ShutterPresentationValue)[0])
        elif ds.get("ShutterPresentationColorCIELabValue") not in (None, ""):
            value = int(multi_values(ds.ShutterPresentationColorCIELabValue)[0])
        else:
            return 0, ""
    except _UNREADABLE as exc:
        return 0, (f"unreadable Shutter Presentation Value (0018,1622) ({messages.printable(exc, 200)}): "
                   "shutter shown black")
    if not 0 <= value <= MAX_P_VALUE:
        return 0, f"Shutter Presentation Value (0018,1622) {value} is not a P-value (0–65535): shutter shown black"
    return value, ""


def _ignored(reason: str) -> str:
    return f"Display Shutter (0018,1600) ignored, the whole image is shown: {reason}"


def _pixel_centres(shape: tuple[int, int], reduction: int) -> tuple[np.ndarray, np.ndarray]:
    """(rows (R,), columns (C,)) float64: the file's 1-based row and column numbers of each decoded pixel's
    centre (decoded pixel i covers the file's pixels i × reduction … (i + 1) × reduction − 1, 0-based)."""
    factor = max(int(reduction), 1)
    offset = (factor + 1) / 2
    return (np.arange(shape[0], dtype=np.float64) * factor + offset,
            np.arange(shape[1], dtype=np.float64) * factor + offset)


def _opening(name: str, ds, rows: np.ndarray, cols: np.ndarray, pixel_aspect: float) -> np.ndarray:
    """bool (R, C), True inside shape ``name``'s opening; raises ``ValueError`` for an unknown or invalid shape."""
    if name == RECTANGULAR:
        return _rectangle(ds, rows, cols)
    if name == CIRCULAR:
        return _circle(ds, rows, cols, pixel_aspect)
    if name == POLYGONAL:
        return _polygon(ds, rows, cols)
    raise ValueError(f"unknown Shutter Shape {name!r}")


def _integers(ds, keyword: str, count: int | None = None) -> list[int]:
    """The IS attribute ``keyword`` as integers; ``ValueError`` when absent or not ``count`` values."""
    values = [int(v) for v in multi_values(ds.get(keyword)) if str(v).strip() != ""]
    if not values or (count is not None and len(values) != count):
        raise ValueError(f"{_named(keyword)} is {'absent' if not values else f'{len(values)} values, not {count}'}")
    return values


def _named(keyword: str) -> str:
    """An attribute's name and tag as the standard writes them: ``Shutter Left Vertical Edge (0018,1602)``."""
    from pydicom.datadict import dictionary_description, tag_for_keyword

    tag = tag_for_keyword(keyword)
    return f"{dictionary_description(tag)} ({tag >> 16:04X},{tag & 0xFFFF:04X})"


def _rectangle(ds, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """RECTANGULAR (PS3.3 C.7.6.11.1.1): columns Left..Right and rows Upper..Lower Vertical / Horizontal Edge."""
    (left,), (right,) = _integers(ds, "ShutterLeftVerticalEdge", 1), _integers(ds, "ShutterRightVerticalEdge", 1)
    (upper,), (lower,) = (_integers(ds, "ShutterUpperHorizontalEdge", 1),
                          _integers(ds, "ShutterLowerHorizontalEdge", 1))
    if left > right or upper > lower:
        raise ValueError(f"edges left {left} right {right} upper {upper} lower {lower} enclose nothing")
    return ((rows >= upper) & (rows <= lower))[:, None] & ((cols >= left) & (cols <= right))[None, :]


def _circle(ds, rows: np.ndarray, cols: np.ndarray, pixel_aspect: float) -> np.ndarray:
    """CIRCULAR: within Radius of Circular Shutter of its Center (row\\column). The radius counts pixels along
    a row, so on non-square pixels the circle spans radius / ``pixel_aspect`` rows each way."""
    centre_row, centre_col = _integers(ds, "CenterOfCircularShutter", 2)
    (radius,) = _integers(ds, "RadiusOfCircularShutter", 1)
    if radius <= 0:
        raise ValueError(f"Radius of Circular Shutter {radius} is not positive")
    rise = (rows - centre_row) * pixel_aspect  # in column pixels
    half_chord = np.sqrt(np.maximum(float(radius) ** 2 - rise**2, 0.0))
    half_chord[np.abs(rise) > radius] = -1.0  # rows the circle does not reach
    return np.abs(cols - centre_col)[None, :] <= half_chord[:, None] + _EPS


def _polygon(ds, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """POLYGONAL: inside or on the polygon of Vertices of the Polygonal Shutter (row\\column pairs, at least 3).

    Scanline parity: on each row the edges crossing it (half-open in rows, so a vertex counts once) toggle
    inside / outside; a pixel exactly on a crossing, on a horizontal edge or at a vertex is inside."""
    values = _integers(ds, "VerticesOfThePolygonalShutter")
    if len(values) % 2 or len(values) < 6:
        raise ValueError(f"{_named('VerticesOfThePolygonalShutter')} holds {len(values)} values, "
                         "not 3 or more row\\column pairs")
    vertices = np.asarray(values, dtype=np.float64).reshape(-1, 2)
    y1, x1 = vertices[:, 0], vertices[:, 1]
    y2, x2 = np.roll(y1, -1), np.roll(x1, -1)
    y = rows[:, None]
    crossing = ((y1 <= y) & (y < y2)) | ((y2 <= y) & (y < y1))  # (R, E)
    r_index, e_index = np.nonzero(crossing)
    ends = y2[e_index] - y1[e_index]  # never 0: a horizontal edge crosses no row
    at = x1[e_index] + (rows[r_index] - y1[e_index]) * (x2[e_index] - x1[e_index]) / ends
    inside = _parity(r_index, at, rows.size, cols, "left") | _parity(r_index, at, rows.size, cols, "right")
    for (ya, xa), (yb, xb) in zip(vertices, np.roll(vertices, -1, axis=0)):
        if ya == yb:  # a horizontal edge: its pixels are on the boundary
            on_row = np.abs(rows - ya) < _EPS
            inside[np.ix_(on_row, (cols >= min(xa, xb) - _EPS) & (cols <= max(xa, xb) + _EPS))] = True
        inside[np.ix_(np.abs(rows - ya) < _EPS, np.abs(cols - xa) < _EPS)] = True  # the vertex itself
    return inside


def _parity(r_index: np.ndarray, at: np.ndarray, n_rows: int, cols: np.ndarray, side: str) -> np.ndarray:
    """bool (R, C): an odd number of crossings (row ``r_index``, column position ``at``) lie left of the pixel;
    ``side`` "left" counts a crossing exactly at a pixel's centre as left of it, "right" as right of it."""
    toggles = np.zeros((n_rows, cols.size + 1), dtype=np.uint8)
    np.add.at(toggles, (r_index, np.searchsorted(cols, at, side=side)), 1)
    return np.bitwise_xor.accumulate(toggles & 1, axis=1)[:, :-1].astype(bool)
