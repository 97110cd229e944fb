"""cxr_engine.pixels.filters: the image checks' Sobel and Laplacian in numpy, bit for bit OpenCV's on
the thumbnails of real films (the trained image-check MLP reads features built from them)."""
from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from cxr_engine import read_image
from cxr_engine.models.image_checks import thumbnail
from cxr_engine.pixels.filters import gaussian_blur, gaussian_kernel, laplacian, sobel_x, sobel_y


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


def test_gaussian_kernel_and_flat_image():
    kernel = gaussian_kernel(2.0)
    assert kernel.dtype == np.float32 and len(kernel) == 17 and abs(float(kernel.sum()) - 1) < 1e-6
    assert np.array_equal(kernel, kernel[::-1]) and kernel.argmax() == 8
    flat = np.full((9, 13), 7.0, dtype=np.float32)
    np.testing.assert_allclose(gaussian_blur(flat, 3.0, 20.0), flat, rtol=1e-6)
    with pytest.raises(ValueError, match="sigma"):
        gaussian_kernel(0.0)


def real_films(cxr3_dir, count=10):
    pairs = []
    for image_path in sorted((cxr3_dir / "images" / "covid").glob("*.jpg")):
        mask_path = cxr3_dir / "lung_masks" / f"{image_path.stem}.png"
        if mask_path.exists():
            pairs.append((np.asarray(Image.open(image_path).convert("L")),
                          np.asarray(Image.open(mask_path).convert("L")) > 127))
        if len(pairs) == count:
            break
    if not pairs:
        pytest.skip(f"no cxr3 films with lung masks in {cxr3_dir}")
    return pairs


def test_gaussian_blur_within_float_rounding_of_opencv_on_real_films(cxr3_dir):
    """Within 1e-3 of a grey level (of 255) for sigmas as small and large as the CTR's smoothing uses."""
    cv2 = pytest.importorskip("cv2", reason="OpenCV is not installed (the lite bundle has none)")
    for image, _ in real_films(cxr3_dir, 5):
        small = image[::6, ::6].astype(np.float32)
        for sigma_x, sigma_y in [(0.5, 1.0), (3.0, 7.5), (10.0, 3.0), (60.0, 90.0)]:
            theirs = cv2.GaussianBlur(small, (0, 0), sigmaX=sigma_x, sigmaY=sigma_y, borderType=cv2.BORDER_REFLECT)
            assert np.abs(gaussian_blur(small, sigma_x, sigma_y) - theirs).max() < 1e-3


def test_ctr_lines_as_with_opencv_blur_on_real_films(cxr3_dir, monkeypatch):
    """The proposed CTR lines are the same with OpenCV's blur as with ours."""
    cv2 = pytest.importorskip("cv2", reason="OpenCV is not installed (the lite bundle has none)")
    from cxr_engine.models import cardiothoracic

    def opencv_blur(image, sigma_x, sigma_y):
        return cv2.GaussianBlur(image, (0, 0), sigmaX=sigma_x, sigmaY=sigma_y, borderType=cv2.BORDER_REFLECT)

    for image, mask in real_films(cxr3_dir):
        ours = cardiothoracic.propose_ctr(mask, image)
        with monkeypatch.context() as patch:
            patch.setattr(cardiothoracic, "gaussian_blur", opencv_blur)
            theirs = cardiothoracic.propose_ctr(mask, image)
        assert (ours.cardiac, ours.thoracic) == (theirs.cardiac, theirs.thoracic)
