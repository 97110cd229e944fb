"""Reduced-resolution decoding (cxr_engine.reading.reduced_decode): the same pipeline at a smaller size,
on every real DICOM file, and the model input it gives."""
from __future__ import annotations

import math
import os
import re
from pathlib import Path

import numpy as np
import pydicom
import pytest

from cxr_engine.reading.read import read_image
from cxr_engine.reading.isolation import IsolatedReader, ReadTask
from cxr_engine.pixels.preprocessing import resize_and_stretch
from cxr_engine.reading.reduced_decode import FULL, DecodeRequest, j2k_header, reduction_factor, without_fragment_padding
from cxr_engine.reading.reduced_decode import _first_frame, _pillow_sizes_level

MODEL_REQUEST = DecodeRequest.for_model(224)
#: Files of ../shared/data/dicom a reduced decode must shrink (JPEG 2000 lossless and lossy, JPEG
#: baseline), with the factor; the other syntaxes there (native, JPEG-LS) have no cheaper path.
#: JPEG2KLossless_1s_1f_u_16_16.dcm's code stream is followed by a padding byte, which Pillow's OpenJPEG
#: refused before it was cut off (``without_fragment_padding``).
REDUCED = {"966_fixed.dcm": 4, "RG1_J2KI.dcm": 2, "Fake_MONOHR1.dcm": 2, "JPEG2KLossless_1s_1f_u_16_16.dcm": 2,
           "1.2.276.0.7230010.3.1.4.8323329.6904.1517875201.850819.dcm": 2}


def _dicom_files(folder: Path) -> list[Path]:
    return sorted(folder.glob("*.dcm"))


def _block_means(values: np.ndarray, factor: int) -> np.ndarray:
    rows, cols = (n // factor for n in values.shape)
    block = values[: rows * factor, : cols * factor].astype(np.float64)
    return block.reshape(rows, factor, cols, factor).mean(axis=(1, 3))


class TestRequest:
    def test_full_and_model_requests(self):
        assert FULL.full and not MODEL_REQUEST.full
        assert MODEL_REQUEST.min_side == 448
        assert DecodeRequest.for_model(224, "cxr-pre-1") == MODEL_REQUEST
        assert DecodeRequest.for_model(224, "cxr-pre-2").full  # the lung box crops: full resolution

    def test_a_nonpositive_size_is_refused(self):
        with pytest.raises(ValueError, match="min_side"):
            DecodeRequest(0)

    def test_largest_factor_keeping_the_short_side(self):
        assert reduction_factor(2128, 2000, 448, (1, 2, 4, 8, 16)) == 4  # 532 × 500
        assert reduction_factor(2128, 2000, 501, (1, 2, 4, 8)) == 2
        assert reduction_factor(400, 400, 448, (1, 2, 4)) == 1

    def test_levels_pillow_would_size_wrongly_are_skipped(self):
        assert _pillow_sizes_level(1955, 1841, 1)
        assert not _pillow_sizes_level(1955, 1841, 2)  # 461 columns decoded, 460 allocated
        assert _pillow_sizes_level(2128, 2000, 2)


def test_j2k_header_of_a_real_code_stream(dicom_dir):
    header = j2k_header(_first_frame(pydicom.dcmread(dicom_dir / "966_fixed.dcm")))
    assert (header.width, header.height, header.components, header.precision, header.signed) == (2000, 2128, 1, 12, False)
    assert header.levels == 5


@pytest.mark.parametrize("name", sorted(REDUCED) + ["RG1_JLSN.dcm", "CR-MONO1-10-chest.dcm"])
def test_one_pipeline_whatever_the_size(dicom_dir, name):
    """Same photometric, inversion, bits, windows and metadata; stored values the block means of the
    full decode's (a wrong bit shift would be 16× off); spacing that of the decoded pixels."""
    full, reduced = read_image(dicom_dir / name), read_image(dicom_dir / name, MODEL_REQUEST)
    factor = REDUCED.get(name, 1)
    assert reduced.reduction == factor
    assert reduced.shape == tuple(math.ceil(n / factor) for n in full.shape)
    for attribute in ("photometric", "invert", "bits_stored", "windows", "metadata", "source_format"):
        assert getattr(reduced, attribute) == getattr(full, attribute), attribute
    # The same warnings; one may quote the decoded values' range, which block averages narrow slightly.
    assert [re.sub(r"\d+", "#", w) for w in reduced.warnings] == [re.sub(r"\d+", "#", w) for w in full.warnings]
    assert reduced.stored.dtype == full.stored.dtype and reduced.modality.dtype == full.modality.dtype
    if full.spacing_mm:
        assert reduced.spacing_mm == pytest.approx(tuple(s * factor for s in full.spacing_mm))
    if factor == 1:
        assert np.array_equal(reduced.stored, full.stored)
        return
    means = _block_means(full.stored, factor)
    rows, cols = means.shape
    difference = np.abs(reduced.stored[:rows, :cols].astype(np.float64) - means)
    span = float(full.stored.max()) - float(full.stored.min())
    assert np.median(difference) < 0.01 * span
    assert reduced.display().shape == reduced.shape


def test_the_model_input_from_a_reduced_decode_is_the_model_input(dicom_dir):
    for name in REDUCED:
        full, reduced = read_image(dicom_dir / name), read_image(dicom_dir / name, MODEL_REQUEST)
        a = resize_and_stretch(full.display(), 224, full.padding)
        b = resize_and_stretch(reduced.display(), 224, reduced.padding)
        assert np.abs(a - b).mean() < 0.01, name


class TestWithoutFragmentPadding:
    def test_zero_bytes_after_eoc_are_cut(self):
        assert without_fragment_padding(b"\xff\x4f...\xff\xd9\x00") == b"\xff\x4f...\xff\xd9"
        assert without_fragment_padding(b"\xff\x4f...\xff\xd9\x00\x00") == b"\xff\x4f...\xff\xd9"

    def test_a_stream_ending_with_eoc_or_followed_by_data_is_left_alone(self):
        for stream in (b"\xff\x4f...\xff\xd9", b"\xff\x4f...\xff\xd9\x00\x01", b"\xff\x4f...", b""):
            assert without_fragment_padding(stream) == stream

    def test_the_padded_real_stream_decodes_at_every_level(self, dicom_dir):
        """JPEG2KLossless_1s_1f_u_16_16.dcm's frame ends EOC + one zero byte (an odd-length stream in an
        even-length fragment); the thumbnail's and the model's sizes both come from its levels."""
        path = dicom_dir / "JPEG2KLossless_1s_1f_u_16_16.dcm"
        if not path.exists():
            pytest.skip(f"{path.name} not in ../shared/data/dicom")
        assert _first_frame(pydicom.dcmread(path)).endswith(b"\xff\xd9\x00")
        assert read_image(path, DecodeRequest.thumbnail(96)).reduction == 8
        assert read_image(path, MODEL_REQUEST).reduction == 2


def test_a_request_larger_than_the_image_decodes_in_full(dicom_dir):
    image = read_image(dicom_dir / "966_fixed.dcm", DecodeRequest(3000))
    assert image.reduction == 1 and image.shape == (2128, 2000)


def test_padding_and_bits_stored_masking_apply_to_a_reduced_decode(tmp_path):
    """A J2K copy of the padded film keeps its padding mask at the reduced size, and the J2K
    film with an overlay in its high bits is masked to Bits Stored, as the full decode does."""
    from pydicom.uid import JPEG2000Lossless

    bugcases = Path(os.environ.get("CXR_BUGCASES", Path(__file__).resolve().parents[2] / "shared" / "bugcases"))
    if not bugcases.exists():
        pytest.skip(f"bug cases not found at {bugcases} (set CXR_BUGCASES to the shared bugcases folder)")
    ds = pydicom.dcmread(bugcases / "padding-autowindow.dcm")
    ds.compress(JPEG2000Lossless, encoding_plugin="pylibjpeg")
    copy = tmp_path / "padding-j2k.dcm"
    ds.save_as(copy)
    full, reduced = read_image(copy), read_image(copy, DecodeRequest(110))
    assert reduced.reduction == 4 and full.padding is not None and reduced.padding is not None
    assert reduced.padding.mean() == pytest.approx(full.padding.mean(), abs=0.05)
    overlay = read_image(bugcases / "j2k-overlay-highbits.dcm", DecodeRequest(110))
    assert overlay.reduction == 4
    assert int(overlay.stored.max()) < 2**overlay.bits_stored


def test_reduced_decode_through_the_isolated_worker(dicom_dir):
    path = dicom_dir / "966_fixed.dcm"
    with IsolatedReader(task=ReadTask(MODEL_REQUEST.min_side)) as reader:
        isolated = reader.read(path)
        full = reader.read(path, ReadTask(None))
    local = read_image(path, MODEL_REQUEST)
    assert isolated.reduction == 4 and np.array_equal(isolated.stored, local.stored)
    assert full.reduction == 1 and full.shape == (2128, 2000)


def test_signed_j2k_is_read_back_as_signed_stored_values(tmp_path):
    """pydicom's signed 16-bit MR_small.dcm as J2K lossless: Pillow offsets signed samples by
    2**(precision-1); undone, the reduced values are the full decode's block means to within the
    wavelet's low-pass (an offset error would be 32,768 off)."""
    from pydicom.data import get_testdata_file
    from pydicom.uid import JPEG2000Lossless

    ds = pydicom.dcmread(get_testdata_file("MR_small.dcm"))
    assert ds.PixelRepresentation == 1
    ds.compress(JPEG2000Lossless, encoding_plugin="pylibjpeg")
    ds.save_as(tmp_path / "mr_j2k.dcm")
    full, reduced = read_image(tmp_path / "mr_j2k.dcm"), read_image(tmp_path / "mr_j2k.dcm", DecodeRequest(16))
    assert reduced.reduction == 4 and reduced.stored.dtype == full.stored.dtype == np.int16
    difference = np.abs(reduced.stored.astype(np.float64) - _block_means(full.stored, 4))
    assert np.median(difference) < 0.05 * (int(full.stored.max()) - int(full.stored.min()))
