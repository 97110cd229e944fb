"""A caption strip under an exported image: what a heat-map PNG shows, said on the PNG itself.

A ``*_cam.png`` opened on its own (a file browser, a PACS import, an e-mail) showed a red area over a lung
with nothing saying it was the *Normal* score's map at 90 % (a reading radiologist's finding): the caption
names the class and its probability and says what the colour means, as the app's legend and the PDF do.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

#: Caption text and background, RGB.
TEXT_RGB = (255, 255, 255)
STRIP_RGB = (24, 24, 24)
#: Text height as a fraction of the image width, and its bounds in pixels.
FONT_FRACTION = 1 / 48
FONT_MIN_PX, FONT_MAX_PX = 11, 40


def with_caption(rgb: np.ndarray, lines: Sequence[str]) -> np.ndarray:
    """``rgb`` (H, W, 3) uint8 with a dark strip appended below holding ``lines`` of white text, one a line,
    left-aligned; the image's own rows are unchanged. Text too wide for the image is set smaller, down to
    ``FONT_MIN_PX``, then cut with "…". Returns a new (H + strip, W, 3) uint8 array; ``rgb`` itself when
    ``lines`` is empty. ``ValueError`` for an array that is not (H, W, 3) uint8."""
    from PIL import Image, ImageDraw, ImageFont

    rgb = np.asarray(rgb)
    if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
        raise ValueError(f"with_caption needs an (H, W, 3) uint8 image, got {rgb.shape} {rgb.dtype}")
    lines = [line for line in lines if line]
    if not lines:
        return rgb
    width = rgb.shape[1]
    margin = max(4, width // 100)
    size = int(np.clip(round(width * FONT_FRACTION), FONT_MIN_PX, FONT_MAX_PX))
    font = ImageFont.load_default(size=size)
    while size > FONT_MIN_PX and max(font.getlength(line) for line in lines) > width - 2 * margin:
        size -= 1
        font = ImageFont.load_default(size=size)
    lines = [_fit(line, font, width - 2 * margin) for line in lines]
    line_h = int(round(size * 1.35))
    strip = Image.new("RGB", (width, 2 * margin + line_h * len(lines)), STRIP_RGB)
    draw = ImageDraw.Draw(strip)
    for i, line in enumerate(lines):
        draw.text((margin, margin + i * line_h), line, fill=TEXT_RGB, font=font)
    return np.concatenate([rgb, np.asarray(strip, dtype=np.uint8)], axis=0)


def _fit(line: str, font, room: float) -> str:
    if font.getlength(line) <= room:
        return line
    while line and font.getlength(line + "…") > room:
        line = line[:-1]
    return line + "…"
