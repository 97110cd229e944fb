"""One film, one warning text (new-user test, finding 4): the real 16-bit JPEG 2000 film whose window
(2725/5310) lies below all its values gave "pixel values (32744–65535)" in the app (full decode) and
"(32784–65535)" in the CSV (the model's 2× reduced decode). The warning now states the window's own
range and the side the values lie on, the same at every resolution the decoders give."""
from __future__ import annotations


import numpy as np
import pytest

from cxr_engine.pixels.windowing import Window
from cxr_engine.reading.dicom_io import window_outside_warning
from cxr_engine.reading.read import read_image
from cxr_engine.reading.reduced_decode import DecodeRequest

from model_factory import classify_one_to_csv

J2K16 = "JPEG2KLossless_1s_1f_u_16_16.dcm"
EXPECTED = ("the file's window 2725/5310 (values 70–5380) lies outside the pixel values, which lie above it "
            "(under 1 % inside); showing an automatic window instead")


def _window_warnings(image) -> list[str]:
    return [w for w in image.warnings if w.startswith("the file's window")]


@pytest.fixture()
def j2k16(dicom_dir):
    path = dicom_dir / J2K16
    if not path.exists():
        pytest.skip(f"{path} not found")
    return path


def test_every_decode_resolution_gives_the_same_words(j2k16):
    requests = (DecodeRequest(), DecodeRequest.for_model(224), DecodeRequest.thumbnail(64))
    images = [read_image(j2k16, request) for request in requests]
    assert len({image.stored.shape for image in images}) == 3, "the decodes must differ in resolution"
    assert len({int(image.modality.min()) for image in images}) > 1, "their lowest values differ"
    for image in images:
        assert _window_warnings(image) == [EXPECTED]


def test_the_csv_says_what_the_app_says(j2k16, tmp_path):
    row = classify_one_to_csv(j2k16, tmp_path / "out.csv")
    viewer = read_image(j2k16)  # the app's viewer decodes at full resolution; its panel lists these warnings
    assert viewer.reduction == 1 and _window_warnings(viewer)[0] in row["warnings"]


class TestWindowOutsideWarning:
    def test_sides(self):
        window = Window(100.0, 50.0)
        assert "which lie above it" in window_outside_warning(window, np.array([500, 600, 700]))
        assert "which lie below it" in window_outside_warning(window, np.array([-5, 0, 10]))
        assert "on both sides of it" in window_outside_warning(window, np.array([0, 100, 300]))
        assert "(values 75–125)" in window_outside_warning(window, np.array([0]))
