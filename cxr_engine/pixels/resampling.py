"""Resizing an image: the area average (shrinking) and bilinear interpolation, in numpy.

Both follow OpenCV's ``cv2.resize`` conventions, which the bundled models were trained with (model
input, preprocessing step 2), so that the engine needs no OpenCV:

- :func:`resize_area` is ``INTER_AREA`` when shrinking: each output pixel is the mean of the input
  over its footprint, a partly covered input pixel weighed by the covered fraction, with OpenCV's
  float32 weights and summing order, so that the model input is OpenCV's bit for bit.
- :func:`resize_bilinear` is ``INTER_LINEAR``: pixel centres at half-integers, output pixel ``x``
  samples the input at ``(x + 0.5) * in / out - 0.5``, coordinates outside clamp to the edge
  pixel (border replicate), no anti-aliasing when shrinking.

Why not ``PIL.Image.resize``: Pillow's ``BOX`` filter weighs each input pixel by the filter's value at
the pixel's centre (a partly covered pixel counts fully or not at all), and its ``BILINEAR`` widens the
kernel when shrinking; at 224 × 224 from the RSNA films both differ from OpenCV's area average by up
to 0.07 (BOX) and 0.10 (BILINEAR) of the range at edges, a different model input. The area average
here equals OpenCV's bit for bit when shrinking (float32 and uint8), the bilinear one to float32 rounding
(about 1e-7; ``tests/test_resampling.py``).

Arrays are (H, W) or (H, W, C). Float input gives float32; integer input is rounded and clipped to its
own dtype (OpenCV's uint8 bilinear path works in fixed point and can differ by one grey level).
"""
from __future__ import annotations

import numpy as np


def resize_area(pixels: np.ndarray, rows: int, cols: int) -> np.ndarray:
    """``pixels`` shrunk to (``rows``, ``cols``) by the area average (``cv2.INTER_AREA``).

    An axis that grows is interpolated bilinearly instead (OpenCV's area mode enlarges with a rule
    of its own; nothing here enlarges a film through this function where that matters).
    Raises ``ValueError`` for a target size that is not positive or an empty input.
    """
    array = _checked(pixels, rows, cols)
    out = array.astype(np.float32, copy=False)
    height, width = out.shape[:2]
    if (height, width) == (2 * rows, 2 * cols) and np.issubdtype(array.dtype, np.integer):
        # OpenCV halves integer images in integers, rounding half up.
        quad = array[0::2, 0::2].astype(np.int64) + array[0::2, 1::2] + array[1::2, 0::2] + array[1::2, 1::2]
        return ((quad + 2) // 4).astype(array.dtype)
    if rows <= height and cols <= width:
        if height % rows == 0 and width % cols == 0 and (height // rows, width // cols) != (2, 2):
            out = _block_mean(out, height // rows, width // cols)
        else:  # OpenCV sums each row across first, then the rows (the same float32 order)
            out = _area_axis(_area_axis(out, cols, axis=1), rows, axis=0)
    else:
        for axis, size in ((1, cols), (0, rows)):
            out = (_area_axis if size <= out.shape[axis] else _bilinear_axis)(out, size, axis)
    return _as_dtype(out, array.dtype)


def resize_bilinear(pixels: np.ndarray, rows: int, cols: int) -> np.ndarray:
    """``pixels`` resized to (``rows``, ``cols``) by bilinear interpolation (``cv2.INTER_LINEAR``).

    Raises ``ValueError`` for a target size that is not positive or an empty input.
    """
    array = _checked(pixels, rows, cols)
    out = _bilinear_axis(array.astype(np.float32, copy=False), rows, axis=0)
    out = _bilinear_axis(out, cols, axis=1)
    return _as_dtype(out, array.dtype)


def _checked(pixels: np.ndarray, rows: int, cols: int) -> np.ndarray:
    array = np.asarray(pixels)
    if array.ndim not in (2, 3) or array.shape[0] < 1 or array.shape[1] < 1:
        raise ValueError(f"expected a non-empty (H, W) or (H, W, C) image, got shape {array.shape}")
    if int(rows) < 1 or int(cols) < 1:
        raise ValueError(f"target size must be positive, got {(rows, cols)}")
    if array.dtype == bool:
        raise ValueError("resize a bool mask as float32 and threshold the result")
    return array


def _area_axis(values: np.ndarray, size: int, axis: int) -> np.ndarray:
    """Box integration along ``axis``: output pixel k covers input [k, k + 1) × scale; each input pixel
    weighs the share of the span it covers. The weights are OpenCV's (``computeResizeAreaTab``): float32,
    a partly covered pixel's weight dropped when it covers 1e-3 of a pixel or less, the last span cut at
    the edge."""
    length = values.shape[axis]
    if size == length:
        return values
    scale = length / size
    start = np.arange(size, dtype=np.float64) * scale
    end = start + scale
    cell = np.minimum(scale, length - start)
    last = np.minimum(np.floor(end).astype(np.int64), length - 1)
    first = np.minimum(np.ceil(start).astype(np.int64), last)
    index = (first - 1)[None, :] + np.arange(int(np.ceil(scale)) + 2)[:, None]
    weight = np.where((index >= first) & (index < last), 1.0 / cell, 0.0)
    lead = first - start
    weight = np.where((index == first - 1) & (lead > 1e-3), lead / cell, weight)
    tail = end - last
    weight = np.where((index == last) & (tail > 1e-3), np.minimum(np.minimum(tail, 1.0), cell) / cell, weight)
    return _weighted_sum(values, np.clip(index, 0, length - 1), weight, axis)


def _block_mean(values: np.ndarray, down_rows: int, down_cols: int) -> np.ndarray:
    """Mean of each ``down_rows`` × ``down_cols`` block, summed in OpenCV's order for whole-number
    factors (``resizeAreaFast``: the block's pixels row by row, four at a time) and times 1 / area."""
    rows, cols = values.shape[0] // down_rows, values.shape[1] // down_cols
    parts = [values[i:rows * down_rows:down_rows, j:cols * down_cols:down_cols]
             for i in range(down_rows) for j in range(down_cols)]
    total = np.zeros_like(parts[0])
    whole = len(parts) - len(parts) % 4
    for k in range(0, whole, 4):
        total = total + (((parts[k] + parts[k + 1]) + parts[k + 2]) + parts[k + 3])
    for part in parts[whole:]:
        total = total + part
    return total * np.float32(1.0 / (down_rows * down_cols))


def _bilinear_axis(values: np.ndarray, size: int, axis: int) -> np.ndarray:
    length = values.shape[axis]
    if size == length:
        return values
    source = (np.arange(size, dtype=np.float64) + 0.5) * (length / size) - 0.5
    lower = np.floor(source)
    fraction = source - lower
    lower = lower.astype(np.int64)
    # Outside the first or last pixel centre the edge pixel is repeated (OpenCV's clamp).
    fraction[lower < 0] = 0.0
    lower = np.clip(lower, 0, length - 1)
    upper = np.minimum(lower + 1, length - 1)
    return _weighted_sum(values, np.stack([lower, upper]), np.stack([1.0 - fraction, fraction]), axis)


def _weighted_sum(values: np.ndarray, index: np.ndarray, weight: np.ndarray, axis: int) -> np.ndarray:
    """Sum over taps t of ``weight[t]`` × ``values`` gathered at ``index[t]`` along ``axis`` (both
    (taps, size)); float32. One gather per tap keeps the work proportional to the output."""
    out = None
    for tap_index, tap_weight in zip(index, weight.astype(np.float32)):
        if out is not None and not tap_weight.any():
            continue
        term = np.take(values, tap_index, axis=axis) * _along(tap_weight, axis, values.ndim)
        out = term if out is None else out + term
    return out


def _along(vector: np.ndarray, axis: int, ndim: int) -> np.ndarray:
    shape = [1] * ndim
    shape[axis] = vector.size
    return vector.reshape(shape)


def _as_dtype(values: np.ndarray, dtype: np.dtype) -> np.ndarray:
    """``values`` in ``dtype`` (float32 for a float dtype), always a new array: an unchanged size
    must not hand the caller its own input back."""
    if np.issubdtype(dtype, np.integer):
        info = np.iinfo(dtype)
        return np.clip(np.rint(values), info.min, info.max).astype(dtype)
    return np.array(values, dtype=np.float32, order="C", copy=True)
