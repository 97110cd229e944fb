"""Text burned into exported pixels (the Secondary Capture's band, the ``*_cam.png`` caption): one font chain
and one ASCII spelling, so the words read the same whatever fonts the reading-room PC has.
"""
from __future__ import annotations

import unicodedata
from functools import lru_cache

#: TrueType fonts tried in order (DejaVu Sans Bold, as the PDF report uses DejaVu); without any, Pillow's
#: built-in scalable font (Aileron, Pillow >= 10.1) is used, so the lite bundle needs no font file.
BAND_FONTS: tuple[str, ...] = (
    "/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf",
    "/usr/share/fonts/dejavu/DejaVuSans-Bold.ttf",
    "C:/Windows/Fonts/arialbd.ttf",
)
#: Characters spelled in ASCII (the rest go through NFKD, then "?"), so text reads the same with every font
#: in ``BAND_FONTS`` (Aileron has no glyph for most accented letters).
ASCII_SPELLING = {"\u2013": "-", "\u2014": "-", "\u2212": "-", "\u00b0": " deg", "\u2026": "...",
                  "\u2018": "'", "\u2019": "'", "\u201c": '"', "\u201d": '"', "\u00d7": "x"}


@lru_cache(maxsize=64)
def band_font(size: int):
    """The first font of ``BAND_FONTS`` found (Pillow ``FreeTypeFont``) at ``size`` pixels, else Pillow's own."""
    from PIL import ImageFont

    for candidate in BAND_FONTS:
        try:
            return ImageFont.truetype(candidate, size)
        except OSError:
            continue
    return ImageFont.load_default(size=size)


def ascii_text(text: str) -> str:
    """``text`` in printable ASCII: ``ASCII_SPELLING``, accents dropped (NFKD), control and separator
    characters as spaces, anything else as "?"."""
    spelled = "".join(ASCII_SPELLING.get(char, char) for char in text)
    spelled = "".join(" " if unicodedata.category(char)[0] in "CZ" else char
                      for char in unicodedata.normalize("NFKD", spelled) if not unicodedata.combining(char))
    return spelled.encode("ascii", "replace").decode("ascii")


def wrap_to_width(text: str, font, width: float) -> list[str]:
    """``text`` split at spaces into lines no wider than ``width`` pixels in ``font``; every word kept, in
    order (a word wider than ``width`` alone, a long path, is cut into pieces that fit)."""
    lines: list[str] = []
    current = ""
    for word in text.split():
        for piece in _pieces(word, font, width):
            joined = f"{current} {piece}" if current else piece
            if current and font.getlength(joined) > width:
                lines.append(current)
                joined = piece
            current = joined
    return lines + ([current] if current else [])


def _pieces(word: str, font, width: float) -> list[str]:
    pieces = []
    while len(word) > 1 and font.getlength(word) > width:
        cut = next((i for i in range(len(word) - 1, 0, -1) if font.getlength(word[:i]) <= width), 1)
        pieces.append(word[:cut])
        word = word[cut:]
    return pieces + [word]
