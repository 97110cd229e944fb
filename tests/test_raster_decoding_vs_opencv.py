"""PNG/JPEG reading (Pillow) gives the stored values OpenCV's decoder gave, on real films and on
every PNG colour type and bit depth; the lite bundle has no OpenCV, so the comparison is skipped there."""
from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from cxr_engine.reading.raster_io import _ORIENTATIONS, apply_exif_orientation, read_raster, rgb_to_grey

cv2 = pytest.importorskip("cv2", reason="OpenCV is not installed (lite bundle): nothing to compare against")

SHARED = Path(__file__).resolve().parents[2] / "shared"
BUGCASES = SHARED / "bugcases"


def opencv_read(path: Path) -> np.ndarray:
    """The reader before Pillow: cv2.imdecode(IMREAD_UNCHANGED), EXIF orientation, BGR(A)→grey."""
    from cxr_engine.reading.raster_io import _check_header_size

    data = np.fromfile(path, dtype=np.uint8)
    orientation = _check_header_size(path, data, 10**9)
    image = np.ascontiguousarray(apply_exif_orientation(cv2.imdecode(data, cv2.IMREAD_UNCHANGED), orientation))
    if image.ndim == 3:
        code = cv2.COLOR_BGRA2GRAY if image.shape[2] == 4 else cv2.COLOR_BGR2GRAY
        image = cv2.cvtColor(image, code)
    return image


def _real_films() -> list[Path]:
    films = sorted((SHARED / "data" / "cxr3" / "images").rglob("*.jpg"))[::400]
    films += sorted((SHARED / "data" / "cxr_other" / "images").glob("*.jp*g"))[:20]
    films += sorted(BUGCASES.glob("*.jpg"))
    return films


def test_real_jpeg_films_read_bit_exact_as_opencv():
    films = _real_films()
    if len(films) < 10:
        pytest.skip(f"real films not found under {SHARED} (shared data folder absent)")
    for film in films:
        ours = read_raster(film).stored
        theirs = opencv_read(film)
        assert ours.dtype == theirs.dtype and ours.shape == theirs.shape, film
        assert ours.flags.writeable and ours.flags.c_contiguous, film
        assert np.array_equal(ours, theirs), f"{film}: {np.abs(ours.astype(int) - theirs).max()} max difference"


def test_exif_rotated_bugcase_reads_upright_as_before():
    if not (BUGCASES / "exif-rotated.jpg").exists():
        pytest.skip(f"bug cases not found at {BUGCASES}")
    rotated = read_raster(BUGCASES / "exif-rotated.jpg").stored
    assert np.array_equal(rotated, opencv_read(BUGCASES / "exif-rotated.jpg"))
    assert rotated.shape == read_raster(BUGCASES / "upright-ref.jpg").stored.shape


def _film_crop() -> np.ndarray:
    films = _real_films()
    if not films:
        pytest.skip("real films not found (shared data folder absent)")
    return np.asarray(Image.open(films[0]).convert("L"))[:300, :200]


@pytest.mark.parametrize("mode, bits", [("L", 8), ("I;16", 16), ("RGB", 8), ("RGBA", 8), ("LA", 8),
                                        ("P", 8), ("1", 1), ("L;4", 4), ("colour", 8)])
def test_png_kinds_read_as_opencv(tmp_path, mode, bits):
    grey = _film_crop()
    if mode == "I;16":
        image = Image.fromarray((grey.astype(np.uint16) * 257 + 3).astype(np.uint16))
    elif mode == "L;4":
        image = Image.fromarray(grey)
    elif mode == "colour":
        rgb = np.stack([grey, np.roll(grey, 7, axis=1), 255 - grey], axis=-1)
        image = Image.fromarray(rgb)
    else:
        image = Image.fromarray(grey).convert(mode)
    path = tmp_path / f"film_{mode.replace(';', '')}.png"
    image.save(path, bits=4) if mode == "L;4" else image.save(path)
    ours = read_raster(path)
    assert np.array_equal(ours.stored, opencv_read(path)), mode
    assert ours.stored.dtype == (np.uint16 if bits == 16 else np.uint8)
    assert ("colour image converted to greyscale" in ours.warnings) == (mode == "colour")


@pytest.mark.parametrize("orientation", sorted(_ORIENTATIONS))
def test_exif_orientations_as_opencv(tmp_path, orientation):
    grey = _film_crop()
    exif = Image.Exif()
    exif[0x0112] = orientation
    path = tmp_path / f"o{orientation}.jpg"
    Image.fromarray(grey).save(path, exif=exif, quality=95)
    assert np.array_equal(read_raster(path).stored, opencv_read(path))


def test_rgb_to_grey_is_opencvs_conversion():
    rng = np.random.default_rng(16)
    for dtype, top in ((np.uint8, 255), (np.uint16, 65535)):
        rgb = rng.integers(0, top + 1, size=(64, 64, 3), dtype=dtype)
        rgb[0, :3] = [[0, 0, 0], [top, top, top], [top, 0, top]]
        assert np.array_equal(rgb_to_grey(rgb), cv2.cvtColor(np.ascontiguousarray(rgb[..., ::-1]), cv2.COLOR_BGR2GRAY))


def test_batch_pngs_decode_as_opencvs_did():
    """The *_cam.png (RGB), *_heatmap.png (16-bit grey) and *_lungs.png (8-bit grey) outputs, written
    with Pillow, hold the same pixels, channel order and bit depth as cv2.imencode wrote."""
    from cxr_engine.batch import _png_bytes, heatmap_png_array

    grey = _film_crop()
    heatmap = grey.astype(np.float64) / 255.0
    rgb = np.stack([grey, np.roll(grey, 5, axis=0), 255 - grey], axis=-1)
    mask = np.where(grey > 128, 255, 0).astype(np.uint8)
    for ours_input, opencv_input in ((rgb, rgb[..., ::-1]), (heatmap_png_array(heatmap),) * 2, (mask, mask)):
        ours = _png_bytes(ours_input)
        ok, theirs = cv2.imencode(".png", np.ascontiguousarray(opencv_input))
        assert ok
        theirs = theirs.tobytes()
        assert ours[24:26] == theirs[24:26]  # IHDR bit depth and colour type
        decoded = cv2.imdecode(np.frombuffer(ours, np.uint8), cv2.IMREAD_UNCHANGED)
        assert np.array_equal(decoded, cv2.imdecode(np.frombuffer(theirs, np.uint8), cv2.IMREAD_UNCHANGED))
    with pytest.raises(ValueError, match="float64"):
        _png_bytes(heatmap)


def test_16_bit_colour_png_is_read_at_8_bits_with_a_warning(tmp_path):
    """Pillow has no 16-bit RGB mode: such a PNG (rare for a radiograph) is read at 8 bits per channel,
    said in a warning; the grey values stay within 1.5 of OpenCV's 16-bit reading divided by 257."""
    rng = np.random.default_rng(16)
    bgr = rng.integers(0, 65536, size=(40, 50, 3), dtype=np.uint16)
    path = tmp_path / "colour16.png"
    assert cv2.imwrite(str(path), bgr)
    image = read_raster(path)
    assert image.stored.dtype == np.uint8
    assert "16-bit colour PNG read at 8 bits per channel" in image.warnings
    assert np.abs(image.stored.astype(float) - opencv_read(path) / 257.0).max() < 1.5
