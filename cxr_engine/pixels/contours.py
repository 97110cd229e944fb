"""Outer contours of a binary mask in numpy and Python (no OpenCV: the lite bundle has none).

Border following (Suzuki & Abe 1985, "Topological structural analysis of digitized binary images by
border following", CVGIP 30(1)), outer borders only, with OpenCV's conventions: 8-connected regions,
each traced from its first pixel in raster order, and only the corner points kept (runs of the same
step direction shortened to their ends). A region inside a hole of another is not traced. The same
points as ``cv2.findContours(mask, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)`` (``tests/test_contours.py``
compares on real masks); the list's order is raster order of the start points, not OpenCV's.
"""
from __future__ import annotations

import numpy as np

from .components import connected_components

# Step directions 0..7: right, up-right, up, up-left, left, down-left, down, down-right (y down).
_STEP_X = (1, 1, 0, -1, -1, -1, 0, 1)
_STEP_Y = (0, -1, -1, -1, 0, 1, 1, 1)


def _trace(pixels: bytes, width: int, start: int) -> list[tuple[int, int]]:
    """Corner points (x, y) of the outer border through ``start`` (a flat index into the zero-padded
    mask ``pixels`` of row length ``width``), in padded coordinates."""
    offsets = [dx + dy * width for dx, dy in zip(_STEP_X, _STEP_Y)] * 2
    x, y = start % width, start // width
    # The neighbour before ``start`` going round the border: search clockwise from the left pixel.
    direction = 4
    while True:
        direction = (direction - 1) & 7
        last = start + offsets[direction]
        if pixels[last] or direction == 4:
            break
    if not pixels[last]:
        return [(x, y)]  # a single pixel
    points = []
    here, previous_step = start, direction ^ 4
    while True:
        # Counter-clockwise from the pixel we came from to the next border pixel.
        while True:
            direction += 1
            ahead = here + offsets[direction]
            if pixels[ahead]:
                break
        direction &= 7
        if direction != previous_step:
            points.append((x, y))
            previous_step = direction
        x += _STEP_X[direction]
        y += _STEP_Y[direction]
        if ahead == start and here == last:
            return points
        here = ahead
        direction = (direction + 4) & 7


def outer_contours(mask: np.ndarray) -> list[np.ndarray]:
    """The outer border of each 8-connected region of ``mask`` (2-D; non-zero = set) that is not inside
    a hole of another region: int32 (N, 2) arrays of (x, y) = (column, row) pixel coordinates, the
    corner points only, in raster order of each region's first pixel. Raises ``ValueError`` unless 2-D."""
    mask = np.asarray(mask)
    if mask.ndim != 2:
        raise ValueError(f"expected a 2-D mask, got shape {mask.shape}")
    padded = np.pad(mask != 0, 1).astype(np.uint8)
    regions = connected_components(padded, connectivity=8)
    if regions.count == 0:
        return []
    # A region is outermost when the background left of its first pixel is the background that reaches
    # the image's edge (background is 4-connected when regions are 8-connected).
    background = connected_components(1 - padded, connectivity=4).labels
    outside = background[0, 0]
    width = padded.shape[1]
    pixels = padded.tobytes()
    contours = []
    for start in regions.first_pixels[1:].tolist():
        if background.ravel()[start - 1] != outside:
            continue
        points = np.array(_trace(pixels, width, start), dtype=np.int32) - 1
        contours.append(points.reshape(-1, 2))
    return contours


def polygon_area(points: np.ndarray) -> float:
    """Area (pixels², non-negative) enclosed by a closed polygon of (x, y) points, N × 2 (shoelace
    formula); ``cv2.contourArea``'s value for a contour."""
    xy = np.asarray(points, dtype=np.float64).reshape(-1, 2)
    if len(xy) < 3:
        return 0.0
    x, y = xy[:, 0], xy[:, 1]
    return abs(float(np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1)))) / 2.0
