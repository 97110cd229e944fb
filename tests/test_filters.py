"""cxr_engine.pixels.filters: the image checks' Sobel and Laplacian in numpy, bit for bit OpenCV's on
the thumbnails of real films (the trained image-check MLP reads features built from them)."""
from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from cxr_engine import read_image
from cxr_engine.models.image_checks import thumbnail
from cxr_engine.pixels.filters import laplacian, sobel_x, sobel_y


def test_known_values_and_reflected_border():
    ramp = np.tile(np.arange(5, dtype=np.float32) ** 2, (4, 1))  # x² along the columns
    # Interior: (x+1)² - (x-1)² = 4x, times the [1, 2, 1] smoothing (4); border 0: reflected 1 - 1.
    assert sobel_x(ramp)[0].tolist() == [0.0, 16.0, 32.0, 48.0, 0.0]
    assert not sobel_y(ramp).any()
    # Second difference of x² is 2 inside and at column 0 (1 reflected); at column 4, 9 + 9 - 2·16.
    assert laplacian(ramp)[1].tolist() == [2.0, 2.0, 2.0, 2.0, -14.0]
    with pytest.raises(ValueError, match="2-D"):
        laplacian(np.zeros((2, 2, 3)))


def real_thumbnails(shared_data) -> list[np.ndarray]:
    thumbs = [thumbnail(np.asarray(Image.open(path).convert("L")))
              for path in sorted((shared_data / "cxr3" / "images").glob("*/*.jpg"))[::40][:25]]
    thumbs += [thumbnail(read_image(path)) for path in sorted((shared_data / "dicom").glob("*.dcm"))]
    if not thumbs:
        pytest.skip(f"no films found under {shared_data}")
    return thumbs


def test_bit_exact_with_opencv_on_real_films(shared_data):
    cv2 = pytest.importorskip("cv2", reason="OpenCV is not installed (the lite bundle has none)")
    for thumb in real_thumbnails(shared_data):
        grey = thumb.astype(np.float32)
        assert np.array_equal(sobel_x(grey), cv2.Sobel(grey, cv2.CV_32F, 1, 0, ksize=3))
        assert np.array_equal(sobel_y(grey), cv2.Sobel(grey, cv2.CV_32F, 0, 1, ksize=3))
        assert np.array_equal(laplacian(grey), cv2.Laplacian(grey, cv2.CV_32F))
