"""A caption strip under an exported image: what a heat-map PNG shows, said on the PNG itself.

A ``*_cam.png`` opened on its own (a file browser, a PACS import, an e-mail) showed a red area over a lung
with nothing saying it was the *Normal* score's map at 90 % (a reading radiologist's finding): the caption
names the class and its probability and says what the colour means, as the app's legend and the PDF do.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

from .band_text import ascii_text, band_font, wrap_to_width

#: Caption text and background, RGB.
TEXT_RGB = (255, 255, 255)
STRIP_RGB = (24, 24, 24)
#: Text height as a fraction of the image width, and its bounds in pixels.
FONT_FRACTION = 1 / 48
FONT_MIN_PX, FONT_MAX_PX = 11, 40


def with_caption(rgb: np.ndarray, paragraphs: Sequence[str]) -> np.ndarray:
    """``rgb`` (H, W, 3) uint8 with a dark strip appended below holding ``paragraphs`` of white text, each
    starting on a new line and wrapped at the image's width (every word kept), in ASCII
    (``band_text.ascii_text``) in the font chain of the DICOM capture's band; the image's own rows are
    unchanged. Returns a new (H + strip, W, 3) uint8 array; ``rgb`` itself when ``paragraphs`` is empty.
    ``ValueError`` for an array that is not (H, W, 3) uint8."""
    from PIL import Image, ImageDraw

    rgb = np.asarray(rgb)
    if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
        raise ValueError(f"with_caption needs an (H, W, 3) uint8 image, got {rgb.shape} {rgb.dtype}")
    paragraphs = [ascii_text(text) for text in paragraphs if text]
    if not paragraphs:
        return rgb
    width = rgb.shape[1]
    margin = max(3, width // 100)
    size = int(np.clip(round(width * FONT_FRACTION), FONT_MIN_PX, FONT_MAX_PX))
    font = band_font(size)
    lines = [line for text in paragraphs for line in wrap_to_width(text, font, max(width - 2 * margin, 1))]
    line_h = int(round(size * 1.3))
    strip = Image.new("RGB", (width, 2 * margin + line_h * len(lines)), STRIP_RGB)
    draw = ImageDraw.Draw(strip)
    for i, line in enumerate(lines):
        draw.text((margin, margin + i * line_h), line, fill=TEXT_RGB, font=font)
    return np.concatenate([rgb, np.asarray(strip, dtype=np.uint8)], axis=0)
