"""Image processing steps that sources differ in, on [0, 1] greyscale float32 images.

Torch-free, so the evaluation's processing-shift test runs where the training stack is absent;
``training.data.AcquisitionShift`` draws its random chain from the same steps.
"""
from __future__ import annotations

import cv2
import numpy as np


def resampled(grey: np.ndarray, factor: float) -> np.ndarray:
    """Down-sampled by ``factor`` (area) and back to the same shape (bilinear): a resolution loss."""
    height, width = grey.shape
    small = cv2.resize(grey, (max(8, round(width / factor)), max(8, round(height / factor))),
                       interpolation=cv2.INTER_AREA)
    return cv2.resize(small, (width, height), interpolation=cv2.INTER_LINEAR)


def sharpened(grey: np.ndarray, sigma: float, amount: float) -> np.ndarray:
    """Unsharp mask: ``amount`` times the detail above a Gaussian blur of ``sigma`` px added back (unclipped)."""
    return grey + amount * (grey - cv2.GaussianBlur(grey, (0, 0), sigma))


def recompressed(grey: np.ndarray, quality: int) -> np.ndarray:
    """Encoded as an 8-bit JPEG at ``quality`` and decoded again (``grey`` itself if encoding fails)."""
    ok, encoded = cv2.imencode(".jpg", np.round(grey * 255.0).astype(np.uint8), [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        return grey
    return cv2.imdecode(encoded, cv2.IMREAD_GRAYSCALE).astype(np.float32) / 255.0


# ----------------------------------------------------------------------------- framing
# Hospitals frame the same chest differently: tight crops to the thorax, films zoomed out with a
# black or grey border, shifted or slightly rotated positioning, burned-in markers and text.

def cropped(grey: np.ndarray, top: float, bottom: float, left: float, right: float) -> np.ndarray:
    """The box rows ``top..bottom`` x columns ``left..right`` (fractions of the side) resized back to the shape."""
    height, width = grey.shape
    r0, r1 = int(round(top * height)), max(int(round(top * height)) + 2, int(round(bottom * height)))
    c0, c1 = int(round(left * width)), max(int(round(left * width)) + 2, int(round(right * width)))
    box = grey[max(0, r0):min(height, r1), max(0, c0):min(width, c1)]
    return cv2.resize(box, (width, height), interpolation=cv2.INTER_LINEAR)


def zoomed_out(grey: np.ndarray, scale_y: float, scale_x: float, fill: float,
               offset_y: float = 0.5, offset_x: float = 0.5) -> np.ndarray:
    """The image shrunk by ``scale_y`` x ``scale_x`` (< 1) and placed on a ``fill``-valued canvas of the same shape.

    ``offset_*`` in [0, 1] place it (0.5: centred). A film taken or scanned with the patient small in
    a large field, or a film photographed on a light box.
    """
    height, width = grey.shape
    h, w = max(2, int(round(height * scale_y))), max(2, int(round(width * scale_x)))
    small = cv2.resize(grey, (w, h), interpolation=cv2.INTER_AREA)
    out = np.full_like(grey, fill, dtype=np.float32)
    top, left = int(round((height - h) * offset_y)), int(round((width - w) * offset_x))
    out[top:top + h, left:left + w] = small
    return out


def repositioned(grey: np.ndarray, angle: float, shift_y: float, shift_x: float, fill: float = 0.0) -> np.ndarray:
    """Rotated by ``angle`` degrees and shifted by ``shift_*`` (fractions of the side); uncovered corners get ``fill``."""
    height, width = grey.shape
    matrix = cv2.getRotationMatrix2D((width / 2.0, height / 2.0), angle, 1.0)
    matrix[0, 2] += shift_x * width
    matrix[1, 2] += shift_y * height
    return cv2.warpAffine(grey, matrix, (width, height), flags=cv2.INTER_LINEAR,
                          borderMode=cv2.BORDER_CONSTANT, borderValue=float(fill))


MARKER_TEXTS = ("L", "R", "AP", "PA", "PORTABLE", "SUPINE", "ERECT", "UPRIGHT", "1", "2", "14:32", "CR", "DX")


def with_markers(grey: np.ndarray, texts: tuple[tuple[str, float, float, float, float], ...]) -> np.ndarray:
    """Burned-in text as a technologist's marker: each (text, row, column, height, value), fractions of the side.

    ``value`` is the text's grey level (1.0 white, 0.0 black); a dark or white box sits behind
    every second one, as lead markers and scanner labels do.
    """
    out = np.array(grey, dtype=np.float32, copy=True)
    side = min(out.shape)
    for i, (text, row, col, height, value) in enumerate(texts):
        scale = max(0.2, height * side / 22.0)
        thickness = max(1, int(round(scale * 1.5)))
        (tw, th), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, thickness)
        x, y = int(col * out.shape[1]), int(row * out.shape[0])
        if i % 2:
            box = np.zeros(out.shape, np.uint8)
            cv2.rectangle(box, (x - 2, y - th - 2), (x + tw + 2, y + base + 2), 255, -1)
            out[box > 0] = 1.0 - value
        # OpenCV draws text on 8-bit images only: draw an anti-aliased coverage mask and blend.
        ink = np.zeros(out.shape, np.uint8)
        cv2.putText(ink, text, (x, y), cv2.FONT_HERSHEY_SIMPLEX, scale, 255, thickness, cv2.LINE_AA)
        alpha = ink.astype(np.float32) / 255.0
        out = out * (1.0 - alpha) + float(value) * alpha
    return out.astype(np.float32)
