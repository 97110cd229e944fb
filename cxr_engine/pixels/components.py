"""Connected components of a binary mask in numpy (no OpenCV, no scipy: the lite bundle has neither).

Run-based two-pass labelling (Rosenfeld & Pfaltz 1966, on row runs): each row's runs of set pixels are
found with numpy, runs touching a run of the row above are merged with a union-find over runs, and the
components are numbered in the raster order of their first pixel. Areas, centroids, boxes equal
``cv2.connectedComponentsWithStats``' (``tests/test_components.py`` compares on real masks); the
numbering may differ from OpenCV's block-scan order, so callers order components by area, not label.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Components:
    """The connected components of a mask.

    ``labels``: int32 (rows, cols), 0 = background, 1..count = components numbered in the raster order
    of their first pixel. ``areas``: int64 (count + 1,) pixels per label (``areas[0]`` = background).
    ``centroids``: float64 (count + 1, 2) mean (x, y) = (column, row) per label (row 0 = background's).
    ``boxes``: int64 (count + 1, 4) bounding box (x, y, width, height) per label, in pixels
    (OpenCV's ``CC_STAT_LEFT``, ``TOP``, ``WIDTH``, ``HEIGHT``). ``first_pixels``: int64 (count + 1,)
    flat (row-major) index of each component's first pixel in raster order (``[0]`` unused, 0).
    """

    labels: np.ndarray
    areas: np.ndarray
    centroids: np.ndarray
    boxes: np.ndarray
    first_pixels: np.ndarray

    @property
    def count(self) -> int:
        """Number of components, background not counted."""
        return len(self.areas) - 1

    def largest_first(self) -> np.ndarray:
        """Component labels (1..count) by decreasing area; equal areas in label order."""
        return np.argsort(-self.areas[1:], kind="stable") + 1


def _runs(mask: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Row, first column and one-past-last column of every run of set pixels, in raster order."""
    padded = np.zeros((mask.shape[0], mask.shape[1] + 2), dtype=np.int8)
    padded[:, 1:-1] = mask
    step = np.diff(padded, axis=1)
    # In each row starts and ends alternate, so the changes in raster order are start, end, start, ...
    changes = np.flatnonzero(step)
    rows, columns = np.divmod(changes, step.shape[1])
    return rows[0::2], columns[0::2], columns[1::2]


def _touching_pairs(rows: np.ndarray, starts: np.ndarray, ends: np.ndarray, reach: int) -> tuple[np.ndarray, np.ndarray]:
    """Index pairs (run, run in the row above) that touch: columns overlap, widened by ``reach``
    (1 for 8-connectivity: diagonal neighbours touch; 0 for 4-connectivity)."""
    stride = int(ends.max(initial=0)) + 4
    # Keys place every row in its own band of ``stride`` columns; the runs above are shifted one band down.
    above_start = (rows + 1) * stride + starts + 2
    above_end = (rows + 1) * stride + ends + 2
    here_start = rows * stride + starts + 2
    here_end = rows * stride + ends + 2
    first = np.searchsorted(above_end, here_start - reach, side="right")
    past = np.searchsorted(above_start, here_end + reach, side="left")
    counts = np.maximum(past - first, 0)
    here = np.repeat(np.arange(len(rows)), counts)
    offsets = np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts, counts)
    return here, np.repeat(first, counts) + offsets


def _roots(size: int, here: np.ndarray, above: np.ndarray) -> np.ndarray:
    """Union-find over ``size`` runs joined by the pairs; each run's root is its component's first run."""
    parent = list(range(size))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for a, b in zip(here.tolist(), above.tolist()):
        ra, rb = find(a), find(b)
        if ra != rb:
            parent[max(ra, rb)] = min(ra, rb)
    return np.fromiter((find(i) for i in range(size)), dtype=np.int64, count=size)


def connected_components(mask: np.ndarray, connectivity: int = 8) -> Components:
    """The connected components of ``mask`` (2-D; non-zero = set), ``connectivity`` 8 (diagonal
    neighbours join) or 4. Raises ``ValueError`` for another connectivity or a mask that is not 2-D."""
    if connectivity not in (4, 8):
        raise ValueError(f"connectivity must be 4 or 8, got {connectivity!r}")
    mask = np.asarray(mask)
    if mask.ndim != 2:
        raise ValueError(f"expected a 2-D mask, got shape {mask.shape}")
    rows, starts, ends = _runs(mask != 0)
    here, above = _touching_pairs(rows, starts, ends, reach=1 if connectivity == 8 else 0)
    roots = _roots(len(rows), here, above)
    # Roots are first runs, and runs are in raster order: numbering unique roots in order numbers the
    # components by their first pixel.
    _, first_run, run_label = np.unique(roots, return_index=True, return_inverse=True)
    run_label = run_label.reshape(-1) + 1
    count = int(run_label.max(initial=0))
    lengths = ends - starts
    labels = np.zeros(mask.shape, dtype=np.int32)
    flat = np.repeat(rows * mask.shape[1] + starts, lengths) + (
        np.arange(lengths.sum()) - np.repeat(np.cumsum(lengths) - lengths, lengths))
    labels.reshape(-1)[flat] = np.repeat(run_label, lengths)
    areas = np.bincount(run_label, weights=lengths, minlength=count + 1).astype(np.int64)
    areas[0] = mask.size - areas[1:].sum()
    sum_x = np.bincount(run_label, weights=(starts + ends - 1) * lengths / 2.0, minlength=count + 1)
    sum_y = np.bincount(run_label, weights=rows * lengths.astype(np.float64), minlength=count + 1)
    centroids = np.zeros((count + 1, 2), dtype=np.float64)
    centroids[1:, 0] = sum_x[1:] / areas[1:]
    centroids[1:, 1] = sum_y[1:] / areas[1:]
    left = np.full(count + 1, mask.shape[1], dtype=np.int64)
    top = np.full(count + 1, mask.shape[0], dtype=np.int64)
    right = np.zeros(count + 1, dtype=np.int64)
    bottom = np.zeros(count + 1, dtype=np.int64)
    np.minimum.at(left, run_label, starts)
    np.minimum.at(top, run_label, rows)
    np.maximum.at(right, run_label, ends)
    np.maximum.at(bottom, run_label, rows + 1)
    left[0] = top[0] = right[0] = bottom[0] = 0
    if areas[0]:
        height, width = mask.shape
        centroids[0] = ((height * width * (width - 1) / 2.0 - sum_x[1:].sum()) / areas[0],
                        (width * height * (height - 1) / 2.0 - sum_y[1:].sum()) / areas[0])
        background = labels == 0
        bg_rows, bg_cols = np.flatnonzero(background.any(axis=1)), np.flatnonzero(background.any(axis=0))
        left[0], top[0], right[0], bottom[0] = bg_cols[0], bg_rows[0], bg_cols[-1] + 1, bg_rows[-1] + 1
    boxes = np.stack([left, top, right - left, bottom - top], axis=1)
    first_pixels = np.zeros(count + 1, dtype=np.int64)
    first_pixels[1:] = rows[first_run] * mask.shape[1] + starts[first_run]
    return Components(labels, areas, centroids, boxes, first_pixels)
