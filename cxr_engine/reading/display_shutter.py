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

The shapes' attributes are Integer Strings (IS, PS3.5 6.2). A value that is a number but not an integer (``61.5``,
or ``379.99999`` from a writer's float formatting) is read as the nearest integer, halves up, with a film warning
naming the attribute and both values; ``DisplayShutter.values`` holds the integers applied, which a presentation
state restates (``outputs.dicom_outputs.presentation_state``). A value stored under another VR (LO, SH, DS: a
misencoded file) is read by its text, as one value (``header_checks.multi_values``).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

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

#: The most values not integers a warning quotes (a polygon may hold hundreds).
_ROUNDED_SHOWN = 4

#: The attributes of each shape this reader applies (PS3.3 C.7.6.11.1), with how many values each holds (None: the
#: polygon's vertices, checked by :func:`_polygon`).
SHAPE_ATTRIBUTES: dict[str, dict[str, int | None]] = {
    RECTANGULAR: {"ShutterLeftVerticalEdge": 1, "ShutterRightVerticalEdge": 1, "ShutterUpperHorizontalEdge": 1,
                  "ShutterLowerHorizontalEdge": 1},
    CIRCULAR: {"CenterOfCircularShutter": 2, "RadiusOfCircularShutter": 1},
    POLYGONAL: {"VerticesOfThePolygonalShutter": None},
}


@dataclass(frozen=True, eq=False)
class DisplayShutter:
    """A film's shutter at its decoded pixel grid: ``mask`` bool (rows, columns), True outside the opening
    (not shown, not image data); ``presentation_value`` the P-value (0..0xFFFF) those pixels are shown at;
    ``shapes`` the shapes applied (BITMAP left out) and ``values`` their attributes' integers as applied, keyword →
    values, in the file's pixel numbers (``SHAPE_ATTRIBUTES``)."""

    mask: np.ndarray
    presentation_value: int = 0
    shapes: tuple[str, ...] = ()
    values: dict[str, tuple[int, ...]] = field(default_factory=dict)


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
        shapes = shutter_shapes(ds)
    except _UNREADABLE as exc:
        return None, [_ignored(f"Shutter Shape (0018,1600) cannot be read: {messages.printable(exc, 200)}")]
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
    applied, rounded = {}, []
    for name in shapes:
        try:
            values, not_integers = shape_values(ds, name)
            shape_opening = _opening(name, values, rows, cols, pixel_aspect)
        except _UNREADABLE as exc:
            return None, warnings + [_ignored(f"its {messages.printable(name)} shape cannot be read: "
                                              f"{messages.printable(exc, 200)}")]
        if not shape_opening.any():
            return None, warnings + [_ignored(f"its {name} opening lies entirely outside the image")]
        opening &= shape_opening
        applied.update(values)
        rounded += not_integers
    if not opening.any():
        return None, warnings + [_ignored(f"its shapes ({', '.join(shapes)}) leave no pixel of the image shown")]
    if opening.all():
        return None, warnings
    value, value_warning = presentation_value(ds)
    return (DisplayShutter(~opening, value, tuple(shapes), applied),
            warnings + rounded + ([value_warning] if value_warning else []))


def shutter_shapes(ds) -> list[str]:
    """The shapes (0018,1600) Shutter Shape names, upper case, each once, in the file's order (BITMAP included);
    raises what a malformed value raises (``_UNREADABLE``)."""
    shapes = [str(s).strip().upper() for s in multi_values(ds.get("ShutterShape"))]
    return [s for i, s in enumerate(shapes) if s and s not in shapes[:i]]


def shape_values(ds, name: str) -> tuple[dict[str, tuple[int, ...]], list[str]]:
    """(keyword → the integers the reader applies, a film warning per attribute holding a number that is not an
    integer) for the attributes of shape ``name`` (``SHAPE_ATTRIBUTES``). ``ValueError`` for an unknown shape, an
    absent attribute, a value that is not a number or a wrong count of values."""
    if name not in SHAPE_ATTRIBUTES:
        raise ValueError(f"unknown Shutter Shape {name!r}")
    values, warnings = {}, []
    for keyword, count in SHAPE_ATTRIBUTES[name].items():
        values[keyword], warning = _integers(ds, keyword, count)
        warnings += [warning] if warning else []
    return values, warnings


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
            value = _integer(multi_values(ds.ShutterPresentationValue)[0], "ShutterPresentationValue")[0]
        elif ds.get("ShutterPresentationColorCIELabValue") not in (None, ""):
            value = _integer(multi_values(ds.ShutterPresentationColorCIELabValue)[0],
                             "ShutterPresentationColorCIELabValue")[0]
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


def _opening(name: str, values: dict[str, tuple[int, ...]], rows: np.ndarray, cols: np.ndarray,
             pixel_aspect: float) -> np.ndarray:
    """bool (R, C), True inside shape ``name``'s opening, its attributes' ``values`` (:func:`shape_values`); raises
    ``ValueError`` for an unknown or invalid shape."""
    if name == RECTANGULAR:
        return _rectangle(values, rows, cols)
    if name == CIRCULAR:
        return _circle(values, rows, cols, pixel_aspect)
    if name == POLYGONAL:
        return _polygon(values, rows, cols)
    raise ValueError(f"unknown Shutter Shape {name!r}")


def _integers(ds, keyword: str, count: int | None = None) -> tuple[tuple[int, ...], str]:
    """(the IS attribute ``keyword`` as integers, a film warning when a value was not an integer, else "");
    ``ValueError`` when absent, not a number or not ``count`` values."""
    given = [str(v).strip() for v in multi_values(ds.get(keyword)) if str(v).strip() != ""]
    read = [_integer(v, keyword) for v in given]
    if not read or (count is not None and len(read) != count):
        raise ValueError(f"{_named(keyword)} is {'absent' if not read else f'{len(read)} values, not {count}'}")
    rounded = [(text, number) for text, (number, exact) in zip(given, read) if not exact]
    values = tuple(number for number, _ in read)
    if not rounded:
        return values, ""
    shown = rounded[:_ROUNDED_SHOWN]
    more = ", …" if len(rounded) > len(shown) else ""
    return values, (f"Display Shutter: {_named(keyword)} "
                    f"{', '.join(repr(messages.printable(text, 40)) for text, _ in shown)}{more} "
                    f"{'is not an integer' if len(rounded) == 1 else 'are not integers'} (IS, PS3.5 6.2): applied as "
                    f"{', '.join(str(number) for _, number in shown)}{more}, the nearest pixel number")


def _integer(value, keyword: str) -> tuple[int, bool]:
    """(``value``, one value of an IS attribute read from its text, as the nearest integer, halves up; whether it
    was an integer already). ``ValueError`` naming ``keyword`` when it is not a finite number."""
    text = str(value).strip()
    try:
        number = float(text)
    except ValueError:
        number = math.nan
    if not math.isfinite(number):
        raise ValueError(f"{_named(keyword)} '{messages.printable(text, 40)}' is not a number")
    nearest = math.floor(number + 0.5)
    return nearest, nearest == number


def _named(keyword: str) -> str:
    """An attribute's name and tag as the standard writes them: ``Shutter Left Vertical Edge (0018,1602)``."""
    from pydicom.datadict import dictionary_description, tag_for_keyword

    tag = tag_for_keyword(keyword)
    return f"{dictionary_description(tag)} ({tag >> 16:04X},{tag & 0xFFFF:04X})"


def _rectangle(values: dict[str, tuple[int, ...]], rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """RECTANGULAR (PS3.3 C.7.6.11.1.1): columns Left..Right and rows Upper..Lower Vertical / Horizontal Edge."""
    (left,), (right,) = values["ShutterLeftVerticalEdge"], values["ShutterRightVerticalEdge"]
    (upper,), (lower,) = values["ShutterUpperHorizontalEdge"], values["ShutterLowerHorizontalEdge"]
    if left > right or upper > lower:
        raise ValueError(f"edges left {left} right {right} upper {upper} lower {lower} enclose nothing")
    return ((rows >= upper) & (rows <= lower))[:, None] & ((cols >= left) & (cols <= right))[None, :]


def _circle(values: dict[str, tuple[int, ...]], rows: np.ndarray, cols: np.ndarray,
            pixel_aspect: float) -> np.ndarray:
    """CIRCULAR: within Radius of Circular Shutter of its Center (row\\column). The radius counts pixels along
    a row, so on non-square pixels the circle spans radius / ``pixel_aspect`` rows each way."""
    centre_row, centre_col = values["CenterOfCircularShutter"]
    (radius,) = values["RadiusOfCircularShutter"]
    if radius <= 0:
        raise ValueError(f"Radius of Circular Shutter {radius} is not positive")
    rise = (rows - centre_row) * pixel_aspect  # in column pixels
    half_chord = np.sqrt(np.maximum(float(radius) ** 2 - rise**2, 0.0))
    half_chord[np.abs(rise) > radius] = -1.0  # rows the circle does not reach
    return np.abs(cols - centre_col)[None, :] <= half_chord[:, None] + _EPS


def _polygon(values: dict[str, tuple[int, ...]], rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """POLYGONAL: inside or on the polygon of Vertices of the Polygonal Shutter (row\\column pairs, at least 3).

    Scanline parity: on each row the edges crossing it (half-open in rows, so a vertex counts once) toggle
    inside / outside; a pixel exactly on a crossing, on a horizontal edge or at a vertex is inside."""
    numbers = values["VerticesOfThePolygonalShutter"]
    if len(numbers) % 2 or len(numbers) < 6:
        raise ValueError(f"{_named('VerticesOfThePolygonalShutter')} holds {len(numbers)} values, "
                         "not 3 or more row\\column pairs")
    vertices = np.asarray(numbers, dtype=np.float64).reshape(-1, 2)
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
