"""Issue 15, pixel pipeline: each kind of fault from ../shared/bugcases, fixed as a kind.

Every test here failed on the code before the fix. Cases read from ``../shared/bugcases`` (skipped
with a reason when absent) are checked against their twins; the rest build their own files.
"""
from __future__ import annotations

import io
import os
import sys
from pathlib import Path

import numpy as np
import pytest

from cxr_engine.errors import ImageReadError, UnsupportedImageError
from cxr_engine.reading.read import read_image
from cxr_engine.pixels.rendering import render

BUGCASES = Path(os.environ.get("CXR_BUGCASES", Path(__file__).resolve().parents[2] / "shared" / "bugcases"))


def bugcase(name: str) -> Path:
    path = BUGCASES / name
    if not path.exists():
        pytest.skip(f"bug case not found at {path} (set CXR_BUGCASES to the shared bugcases folder)")
    return path


def pydicom_file(name: str) -> Path:
    from pydicom.data import get_testdata_file

    path = Path(get_testdata_file(name, download=False) or "")
    if not path.is_file():
        pytest.skip(f"pydicom test file {name} is not installed")
    return path


def write_dicom(path: Path, pixels: np.ndarray | bytes, *, bits_allocated: int, bits_stored: int, signed: bool = False,
                photometric: str = "MONOCHROME2", little_endian: bool = True, rows: int | None = None,
                cols: int | None = None, samples: int = 1, **attributes) -> Path:
    """A minimal Secondary Capture file with ``pixels`` written as given (native encoding)."""
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import ExplicitVRBigEndian, ExplicitVRLittleEndian, generate_uid

    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian if little_endian else ExplicitVRBigEndian
    ds.file_meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.7"
    ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
    ds.SOPClassUID = "1.2.840.10008.5.1.4.1.1.7"
    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID
    ds.Modality = "OT"
    if isinstance(pixels, np.ndarray):
        rows, cols = pixels.shape[:2]
        order = "<" if little_endian else ">"
        data = pixels.astype(pixels.dtype.newbyteorder(order)).tobytes() if pixels.dtype.itemsize > 1 else pixels.tobytes()
    else:
        data = pixels
    ds.Rows, ds.Columns = rows, cols
    ds.SamplesPerPixel = samples
    if samples > 1:
        ds.PlanarConfiguration = 0
    ds.PhotometricInterpretation = photometric
    ds.BitsAllocated, ds.BitsStored, ds.HighBit = bits_allocated, bits_stored, bits_stored - 1
    ds.PixelRepresentation = int(signed)
    for keyword, value in attributes.items():
        setattr(ds, keyword, value)
    ds.PixelData = data + (b"\0" if len(data) % 2 else b"")
    ds["PixelData"].VR = "OB" if bits_allocated <= 8 else "OW"
    ds.save_as(path, enforce_file_format=True, little_endian=little_endian, implicit_vr=False)
    return path


# ------------------------------------------------------------------ 1. VOI LUT range from its data

def test_voi_lut_declaring_more_bits_than_its_entries_use_shows_like_its_twin():
    twin = read_image(bugcase("voilut-littleendian-ref.dcm"))
    image = read_image(bugcase("voilut-declared16-data12.dcm"))
    shown, expected = render(image), render(twin)
    assert abs(float(shown.mean()) - 139) < 3, "full contrast like the twin, not near-white"
    assert np.abs(shown.astype(int) - expected.astype(int)).max() <= 2
    assert any("output range was taken from the data" in w for w in image.warnings)
    assert not any("VOI LUT" in w for w in twin.warnings)


def test_voi_lut_range_from_data_is_a_rule_not_a_special_case(tmp_path):
    """Any declared width the entries cannot fill is narrowed to what they need (never below 8 bits)."""
    from pydicom.dataset import Dataset

    ramp = np.arange(256, dtype=np.uint16).reshape(16, 16)
    results = {}
    for declared, top in ((16, 1023), (14, 1023), (12, 255), (8, 200), (16, 65535)):
        item = Dataset()
        item.LUTDescriptor = [256, 0, declared]
        item.LUTData = [int(v) for v in np.linspace(0, top, 256).round()]
        item["LUTData"].VR = "US"
        path = write_dicom(tmp_path / f"lut{declared}_{top}.dcm", ramp, bits_allocated=16, bits_stored=8,
                           VOILUTSequence=[item])
        image = read_image(path)
        results[(declared, top)] = (image.voi_luts[0].bits, bool(image.warnings))
        assert float(image.display()[-1, -1]) == pytest.approx(top / (2 ** image.voi_luts[0].bits - 1))
    assert results == {(16, 1023): (10, True), (14, 1023): (10, True), (12, 255): (8, True),
                       (8, 200): (8, False), (16, 65535): (16, False)}


# ------------------------------------------------------------------ 2. OW/OB in the dataset's byte order

def test_big_endian_ow_voi_lut_reads_like_its_little_endian_twin():
    twin = read_image(bugcase("voilut-littleendian-ref.dcm"))
    image = read_image(bugcase("voilut-bigendian-ow.dcm"))
    np.testing.assert_array_equal(image.voi_luts[0].table, twin.voi_luts[0].table)
    np.testing.assert_array_equal(render(image), render(twin))
    np.testing.assert_array_equal(image.display(), twin.display())


def _lut_item(table: np.ndarray, first: int, bits: int, little_endian: bool, vr: str):
    from pydicom.dataset import Dataset

    item = Dataset()
    item.LUTDescriptor = [len(table) if bits > 8 or vr != "OW" else len(table), first, bits]
    if vr == "OW":
        if bits > 8:
            item.LUTData = table.astype("<u2" if little_endian else ">u2").tobytes()
        else:  # two 8-bit entries per 16-bit word, first in the low byte
            words = (table[0::2].astype(np.uint16) | (table[1::2].astype(np.uint16) << 8))
            item.LUTData = words.astype("<u2" if little_endian else ">u2").tobytes()
    else:
        item.LUTData = [int(v) for v in table]
    item["LUTData"].VR = vr
    return item


@pytest.mark.parametrize("bits", [16, 12, 8])
def test_every_ow_lut_is_read_in_the_files_byte_order(tmp_path, bits):
    """Modality and VOI LUT Data as OW (16- and 8-bit entries) and palettes: big and little endian agree."""
    stored = np.arange(64, dtype=np.uint16).reshape(8, 8)
    table = (np.arange(64) * 37 % (2**bits)).astype(np.int64)
    outcomes = []
    for little in (True, False):
        for vr in ("OW", "US"):
            path = write_dicom(
                tmp_path / f"lut_{little}_{vr}.dcm", stored, bits_allocated=16, bits_stored=6, little_endian=little,
                ModalityLUTSequence=[_lut_item(table, 0, bits, little, vr)],
                VOILUTSequence=[_lut_item(table[::-1].copy(), 0, bits, little, vr)],
            )
            image = read_image(path)
            np.testing.assert_array_equal(image.modality, table.reshape(8, 8), err_msg=f"little={little} {vr}")
            np.testing.assert_array_equal(image.voi_luts[0].table, table[::-1])
            outcomes.append(image.display())
    for other in outcomes[1:]:
        np.testing.assert_array_equal(other, outcomes[0])


def test_palette_colour_is_read_in_the_files_byte_order(tmp_path):
    indices = np.arange(16, dtype=np.uint8).reshape(4, 4)
    lut = {c: (np.arange(16) * k * 4096 % 65536).astype(np.uint16) for c, k in (("Red", 1), ("Green", 3), ("Blue", 5))}
    greys = []
    for little in (True, False):
        attributes = {}
        for colour, values in lut.items():
            attributes[f"{colour}PaletteColorLookupTableDescriptor"] = [16, 0, 16]
            attributes[f"{colour}PaletteColorLookupTableData"] = values.astype("<u2" if little else ">u2").tobytes()
        path = write_dicom(tmp_path / f"pal_{little}.dcm", indices, bits_allocated=8, bits_stored=8,
                           photometric="PALETTE COLOR", little_endian=little, **attributes)
        image = read_image(path)
        greys.append(image.stored)
    expected = np.rint(0.299 * lut["Red"] + 0.587 * lut["Green"] + 0.114 * lut["Blue"]).astype(np.uint16).reshape(4, 4)
    np.testing.assert_array_equal(greys[0], expected)
    np.testing.assert_array_equal(greys[1], expected)


# ------------------------------------------------------------------ 3. bits above Bits Stored

def test_jpeg2000_with_an_overlay_in_the_high_bits_reads_like_its_native_twin():
    twin = read_image(bugcase("overlay-highbits-ref-native-clean.dcm"))
    image = read_image(bugcase("j2k-overlay-highbits.dcm"))
    assert int(image.stored.max()) == 3916
    np.testing.assert_array_equal(image.stored, twin.stored)
    np.testing.assert_array_equal(render(image), render(twin))


@pytest.mark.parametrize("signed", [False, True])
def test_every_frame_is_masked_and_sign_extended_to_bits_stored(signed):
    from pydicom.dataset import Dataset

    from cxr_engine.reading.dicom_io import mask_to_bits_stored

    ds = Dataset()
    ds.BitsAllocated, ds.BitsStored, ds.PixelRepresentation = 16, 12, int(signed)
    true = np.array([[-2000, -1, 0, 2047]] if signed else [[0, 1, 2048, 4095]], dtype=np.int64)
    garbage = np.array([[0xF000, 0x8000, 0x7000, 0x1000]], dtype=np.int64)
    raw = ((true & 0xFFF) | garbage).astype(np.uint16).view(np.int16 if signed else np.uint16)
    frames = np.stack([raw, raw[:, ::-1]])  # every frame, not just the first
    masked = mask_to_bits_stored(frames, ds)
    assert masked.dtype == frames.dtype
    np.testing.assert_array_equal(masked, np.stack([true, true[:, ::-1]]))


def test_native_signed_file_with_garbage_high_bits(tmp_path):
    true = np.array([[-2000, -1], [0, 2047]], dtype=np.int16)
    raw = ((true.astype(np.int64) & 0xFFF) | 0x5000).astype(np.uint16)
    image = read_image(write_dicom(tmp_path / "s12.dcm", raw, bits_allocated=16, bits_stored=12, signed=True))
    np.testing.assert_array_equal(image.stored, true)


# ------------------------------------------------------------------ 4. Pixel Padding Value / Range Limit

def _padded(tmp_path: Path, photometric: str) -> Path:
    import pydicom

    ds = pydicom.dcmread(bugcase("padding-autowindow.dcm"))
    ds.PhotometricInterpretation = photometric
    path = tmp_path / f"padded-{photometric}.dcm"
    ds.save_as(path)
    return path


@pytest.mark.parametrize("photometric", ["MONOCHROME2", "MONOCHROME1"])
def test_padding_is_left_out_of_auto_window_full_range_presets_and_model_stretch(tmp_path, photometric):
    from cxr_desktop.presets import Auto, FullRange, PercentileBand
    from cxr_engine.pixels.preprocessing import resize_and_stretch

    image = read_image(_padded(tmp_path, photometric))
    assert image.padding is not None and image.padding.any()
    window = image.default_voi()
    assert abs(window.low - 1760) < 20 and abs(window.high - 2305) < 20, window
    assert Auto().voi_for(image) == image.auto_window() == window
    low, high = image.value_range
    assert low >= 1400 and high <= 2600, "statistics ignore the padding"
    assert FullRange().voi_for(image).low >= 1400
    assert PercentileBand("Lung", 0.5, 90).voi_for(image).low >= 1400
    # Model input: the anatomy is stretched over the full range; padding does not take one end.
    grey = resize_and_stretch(image.display(), 64, image.padding)
    import cv2

    anatomy = cv2.resize(image.padding.astype(np.float32), (64, 64), interpolation=cv2.INTER_AREA) == 0
    values = grey[anatomy]
    assert (values <= 0.0).mean() > 0.002 and (values >= 1.0).mean() > 0.002


def test_pixel_padding_range_limit_and_signed_padding(tmp_path):
    rng = np.random.default_rng(0)
    pixels = rng.integers(1500, 2500, size=(64, 64)).astype(np.int16)
    pixels[:, :12] = rng.integers(-1000, -900, size=(64, 12))
    path = write_dicom(tmp_path / "range.dcm", pixels, bits_allocated=16, bits_stored=16, signed=True,
                       PixelPaddingValue=-900, PixelPaddingRangeLimit=-1000)
    image = read_image(path)
    np.testing.assert_array_equal(image.padding, pixels < 0)
    assert image.value_range[0] >= 1500


def test_padding_mask_crosses_the_worker(tmp_path):
    from cxr_engine.reading.isolation import IsolatedReader

    with IsolatedReader() as reader:
        image = reader.read(bugcase("padding-autowindow.dcm"))
    np.testing.assert_array_equal(image.padding, read_image(bugcase("padding-autowindow.dcm")).padding)


# ------------------------------------------------------------------ 5. non-square pixels

def test_non_square_pixels_expose_their_physical_aspect():
    from cxr_engine.outputs.report import ReportPage
    from cxr_engine.pixels.rendering import to_square_pixels
    from cxr_engine.models.suitability import assess

    image = read_image(bugcase("nonsquare-pixels.dcm"))
    assert image.shape == (220, 440)
    assert image.pixel_aspect == pytest.approx(2.0)
    assert image.display_shape == (440, 440)
    assert not any("smaller than the model input" in w for w in assess(image, 300))
    assert to_square_pixels(render(image), image.pixel_aspect).shape == (440, 440)
    assert ReportPage.for_image(image, render(image)).pixel_aspect == pytest.approx(2.0)


def test_pixel_aspect_ratio_is_used_without_spacing(tmp_path):
    pixels = np.zeros((10, 30), dtype=np.uint8)
    pixels[5] = 255
    wide = read_image(write_dicom(tmp_path / "par.dcm", pixels, bits_allocated=8, bits_stored=8, PixelAspectRatio=[3, 1]))
    assert wide.pixel_aspect == pytest.approx(3.0) and wide.display_shape == (30, 30)
    tall = read_image(write_dicom(tmp_path / "par2.dcm", pixels, bits_allocated=8, bits_stored=8, PixelAspectRatio=[1, 2]))
    assert tall.display_shape == (10, 60)
    square = read_image(write_dicom(tmp_path / "sq.dcm", pixels, bits_allocated=8, bits_stored=8))
    assert square.pixel_aspect == 1.0 and square.display_shape == square.shape


def test_pdf_panels_keep_the_physical_aspect():
    """100 x 200 pixels twice as tall as wide are drawn square in the PDF (read from its content stream)."""
    import re

    pypdf = pytest.importorskip("pypdf")
    from cxr_engine.outputs.report import ReportPage, build_report_pdf

    page = ReportPage(displayed=np.zeros((100, 200), np.uint8), pixel_aspect=2.0)
    pdf = pypdf.PdfReader(io.BytesIO(build_report_pdf([page], model_card=None, deidentify=False)))
    stream = pdf.pages[0].get_contents().get_data().decode("latin-1")
    (width, height), = [tuple(map(float, m)) for m in re.findall(r"([\d.]+) 0 0 ([\d.]+) [-\d.]+ [-\d.]+ cm\s*/\S+ Do",
                                                                 stream)]
    assert height == pytest.approx(width)


# ------------------------------------------------------------------ 6. EXIF orientation

def _orientation_png(orientation: int) -> tuple[bytes, np.ndarray]:
    from PIL import Image

    upright = (np.arange(3 * 5, dtype=np.uint8).reshape(3, 5) * 17)
    exif = Image.Exif()
    exif[0x0112] = orientation
    buffer = io.BytesIO()
    Image.fromarray(upright).save(buffer, "PNG", exif=exif)
    return buffer.getvalue(), upright


@pytest.mark.parametrize("orientation", range(1, 9))
def test_all_eight_exif_orientations_read_as_pillow_shows_them(tmp_path, orientation):
    from PIL import Image, ImageOps

    data, _ = _orientation_png(orientation)
    for suffix in (".png", ".jpg"):
        path = tmp_path / f"o{orientation}{suffix}"
        if suffix == ".png":
            path.write_bytes(data)
        else:
            with Image.open(io.BytesIO(data)) as source:
                source.save(path, "JPEG", quality=100, exif=source.getexif())
        with Image.open(path) as opened:
            expected = np.asarray(ImageOps.exif_transpose(opened).convert("L")).astype(int)
        got = read_image(path).stored.astype(int)
        assert got.shape == expected.shape, (orientation, suffix)
        assert np.abs(got - expected).max() <= (0 if suffix == ".png" else 2), (orientation, suffix)


def test_exif_rotated_jpeg_reads_like_its_upright_twin():
    image = read_image(bugcase("exif-rotated.jpg"))
    twin = read_image(bugcase("upright-ref.jpg"))
    assert image.shape == twin.shape
    difference = np.abs(image.stored.astype(int) - twin.stored.astype(int))
    assert difference.mean() < 1.0  # only JPEG re-encoding noise


# ------------------------------------------------------------------ 7. byte order across the worker

def test_big_endian_arrays_cross_the_worker_unchanged():
    from cxr_engine.reading.isolation import IsolatedReader

    path = pydicom_file("MR_small_expb.dcm")
    direct = read_image(path)
    assert direct.stored.dtype.isnative and int(direct.stored.min()) == 127 and int(direct.stored.max()) == 2145
    with IsolatedReader() as reader:
        isolated = reader.read(path)
    for name in ("stored", "modality"):
        a, b = getattr(direct, name), getattr(isolated, name)
        assert a.dtype == b.dtype and b.dtype.isnative
        np.testing.assert_array_equal(a, b)


def test_wire_keeps_byte_order_of_every_array():
    from cxr_engine.pixels.image import CxrImage
    from cxr_engine.reading.image_wire import decode_image, encode_image
    from cxr_engine.pixels.windowing import VoiLut

    values = np.array([[127, 2145], [-32767, 32518]], dtype=">i2")
    image = CxrImage(path=Path("x.dcm"), stored=values, modality=values.astype(">f8"),
                     voi_luts=(VoiLut(0, np.array([1, 2, 70000], dtype=">i8"), 16),),
                     padding=np.array([[True, False], [False, False]]))
    back = decode_image(*encode_image(image))
    np.testing.assert_array_equal(back.stored, values)
    np.testing.assert_array_equal(back.modality, values.astype(float))
    np.testing.assert_array_equal(back.voi_luts[0].table, [1, 2, 70000])
    np.testing.assert_array_equal(back.padding, image.padding)
    assert all(a.dtype.isnative for a in (back.stored, back.modality, back.voi_luts[0].table))


# ------------------------------------------------------------------ 8. integer overflow

def _extremes(bits: int, signed: bool) -> np.ndarray:
    low, high = (-(2 ** (bits - 1)), 2 ** (bits - 1) - 1) if signed else (0, 2**bits - 1)
    return np.array([[low, high], [low + (high - low) // 3, high - (high - low) // 3]], dtype=np.int64)


@pytest.mark.parametrize("signed", [False, True])
@pytest.mark.parametrize("bits", range(1, 33))
def test_grey_values_rescale_and_window_at_every_depth(tmp_path, bits, signed):
    if signed and bits == 1:
        pytest.skip("1-bit data is unsigned by definition (PS3.5 8.1.1, Bits Allocated 1)")
    allocated = 1 if bits == 1 else 8 if bits <= 8 else 16 if bits <= 16 else 32
    true = _extremes(bits, signed)
    if allocated == 1:
        pixels = np.packbits(true.astype(np.uint8).ravel(), bitorder="little").tobytes()
        path = write_dicom(tmp_path / "b1.dcm", pixels, bits_allocated=1, bits_stored=1, rows=2, cols=2)
    else:
        unsigned = np.dtype(f"u{allocated // 8}")
        raw = (true & (2**bits - 1)).astype(unsigned)
        path = write_dicom(tmp_path / "g.dcm", raw, bits_allocated=allocated, bits_stored=bits, signed=signed,
                           RescaleSlope=3, RescaleIntercept=-7, WindowCenter=0, WindowWidth=2)
    image = read_image(path)
    np.testing.assert_array_equal(image.stored.astype(np.int64), true)
    if allocated > 1:
        expected = true.astype(np.float64) * 3 - 7
        np.testing.assert_array_equal(np.asarray(image.modality, dtype=np.float64), expected)
    display = image.display(image.full_range_window())
    assert display.min() == 0.0 and display.max() == 1.0
    assert display[0, 0] == 0.0 and display[0, 1] == 1.0


@pytest.mark.parametrize("bits", [8, 16, 32])
def test_colour_white_stays_white_at_every_depth(tmp_path, bits):
    top = 2**bits - 1
    rgb = np.array([[[top, top, top], [0, 0, 0]], [[top, 0, 0], [0, top, top]]], dtype=np.int64)
    path = write_dicom(tmp_path / "rgb.dcm", rgb.astype(f"u{bits // 8}"), bits_allocated=bits, bits_stored=bits,
                       photometric="RGB", samples=3)
    image = read_image(path)
    assert int(image.stored[0, 0]) == top and int(image.stored[0, 1]) == 0
    assert int(image.stored[1, 0]) == round(0.299 * top)


@pytest.mark.parametrize("name", ["SC_rgb_32bit.dcm", "SC_rgb_rle_32bit.dcm"])
def test_pydicom_32bit_colour_files_keep_white(name):
    import pydicom

    path = pydicom_file(name)
    reference = pydicom.dcmread(path).pixel_array.astype(np.float64)
    expected = np.clip(np.rint(reference[..., :3] @ np.array([0.299, 0.587, 0.114])), 0, 2**32 - 1)
    image = read_image(path)
    np.testing.assert_array_equal(image.stored.astype(np.float64), expected)
    assert int(image.stored.max()) == 2**32 - 1


# ------------------------------------------------------------------ 9. 12-bit JPEG Extended

@pytest.mark.parametrize("name", ["JPGExtended.dcm", "JPEG-lossy.dcm"])
def test_12bit_jpeg_extended_decodes_to_pydicoms_reference_values(name):
    pytest.importorskip("imagecodecs")
    from cxr_engine.reading.isolation import IsolatedReader

    path = pydicom_file(name)
    image = read_image(path)
    # pydicom's own reference (tests/pixels/pixels_reference.py, JPGE_16_12_1_0_1F_M2).
    assert image.stored.shape == (1024, 256) and image.stored.dtype == np.uint16
    assert int(image.stored[420, 140]) == 244 and int(image.stored[230, 120]) == 95
    assert int(image.stored.max()) < 4096
    with IsolatedReader() as reader:
        np.testing.assert_array_equal(reader.read(path).stored, image.stored)


def test_12bit_jpeg_without_imagecodecs_is_refused_naming_syntax_and_reason(monkeypatch):
    path = pydicom_file("JPGExtended.dcm")
    monkeypatch.setitem(sys.modules, "imagecodecs", None)
    with pytest.raises(UnsupportedImageError) as caught:
        read_image(path)
    message = str(caught.value)
    assert "JPGExtended.dcm" in message and "JPEG Extended" in message and "12-bit" in message
    assert isinstance(caught.value, ImageReadError)
