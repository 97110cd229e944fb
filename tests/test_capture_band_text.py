"""The Secondary Capture's burned-in band is drawn with Pillow (no OpenCV, as in the lite bundle),
with the system DejaVu font or Pillow's built-in one, each line inside its own rows and colour."""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

from cxr_engine.outputs import band_text
from cxr_engine.outputs.dicom_outputs import secondary_capture
from cxr_engine.outputs.dicom_outputs.secondary_capture import capture_pixels, line_height
from cxr_engine.reading.raster_io import read_raster

FILM = Path(__file__).resolve().parents[2] / "shared" / "bugcases" / "upright-ref.jpg"
LINES = ["AI result: Pneumonia 87% (Normal 9%, COVID-19 4%)", "Model: effnet-b0 \u2013 heat-map: Grad-CAM"]
WARNING = "image check: upside down (turned 180\u00b0): outside what the model was trained for"


@pytest.fixture()
def film() -> np.ndarray:
    if not FILM.exists():
        pytest.skip(f"real film not found at {FILM} (shared bug cases absent)")
    return np.stack([read_raster(FILM).stored] * 3, axis=-1)


@pytest.mark.parametrize("fonts", [band_text.BAND_FONTS, ()], ids=["system-font", "pillow-built-in"])
def test_band_is_drawn_without_opencv(film, monkeypatch, fonts):
    monkeypatch.setitem(sys.modules, "cv2", None)  # import cv2 now raises ImportError
    monkeypatch.setattr(band_text, "BAND_FONTS", fonts)
    band_text.band_font.cache_clear()
    try:
        pixels = capture_pixels(film, LINES, warnings=(WARNING,))
    finally:
        band_text.band_font.cache_clear()
    rows, cols = film.shape[:2]
    height = line_height(cols)
    assert np.array_equal(pixels[:rows], film)
    band = pixels[rows:]
    assert band.shape[0] % height == 0
    expected = ([(255, 255, 255)] * len(LINES) + [rgb for _, rgb in secondary_capture.band_warning_lines((WARNING,))]
                + [secondary_capture._NOTICE_RGB])
    assert band.shape[0] // height == len(expected)
    for number, rgb in enumerate(expected):
        line = band[number * height:(number + 1) * height].astype(int)
        lit = line.max(axis=2) > 200
        assert lit.sum() > 100, f"line {number} holds no text"
        assert line[:2].max() == 0 and line[-2:].max() == 0, f"line {number} bleeds into its neighbour"
        assert line[:, -2:].max() == 0, f"line {number} runs off the right edge"
        colour = line[lit].mean(axis=0)
        assert np.abs(colour - np.asarray(rgb) * colour.max() / max(rgb)).max() < 30, (number, colour, rgb)
