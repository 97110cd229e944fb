"""The pixel data layout check (``cxr_engine.reading.pixel_layout``) on two kinds of file it once refused.

A. Uncompressed YBR_FULL_422 (PS3.3 C.7.6.3.1.2): two Y samples then one Cb and one Cr for each two
   pixels of a row, Rows × Columns × 2 samples, not × 3. It was refused as "pixel data truncated: the
   file holds 387,200 of the 580,800 bytes". It now reads as its grey twin; a file cut short is still
   refused with the byte counts.
B. Deflated Explicit VR Little Endian (PS3.5 A.5): the data set after the file meta is one deflate
   stream. It was refused as "truncated DICOM file: it ends at byte …, before its pixel data": the
   layout was read on the deflated bytes. It is now judged on the inflated bytes, and one that
   inflates beyond the bound (a deflate bomb) is refused before pydicom inflates it.

The films are built from the real ``../shared/data/dicom/CR-MONO1-10-chest.dcm`` (skipped with a reason
when absent) and pydicom's bundled ``SC_ybr_full_422_uncompressed.dcm``.
"""
from __future__ import annotations

import copy
import csv
import zlib
from pathlib import Path

import numpy as np
import pydicom
import pytest
from pydicom.data import get_testdata_file
from pydicom.dataset import FileMetaDataset
from pydicom.filewriter import write_dataset, write_file_meta_info
from pydicom.uid import DeflatedExplicitVRLittleEndian, ExplicitVRLittleEndian, generate_uid

from cxr_engine.cli import main
from cxr_engine.errors import ImageReadError
from cxr_engine.reading.dicom_io import to_grey
from cxr_engine.reading.pixel_layout import max_inflated_bytes, pixel_data_problem
from cxr_engine.reading.read import read_image
from cxr_engine.reading.scanning import scan

from model_factory import make_random_model

FILM = "CR-MONO1-10-chest.dcm"  # 440 × 440, 10 bits stored in 16, MONOCHROME1, implicit VR without file meta
SECONDARY_CAPTURE = "1.2.840.10008.5.1.4.1.1.7"


# ======================================================================= building the films


def _film(dicom_dir: Path) -> pydicom.Dataset:
    """The real film with a file meta group (explicit VR little endian) and without group lengths."""
    ds = pydicom.dcmread(dicom_dir / FILM, force=True)
    for element in list(ds):
        if element.tag.element == 0:
            del ds[element.tag]
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.file_meta.MediaStorageSOPClassUID = ds.SOPClassUID
    ds.preamble = b"\0" * 128
    return ds


def _grey8(ds: pydicom.Dataset) -> np.ndarray:
    """The film's stored values as 8-bit MONOCHROME2 grey (air dark)."""
    values = ds.pixel_array.astype(np.int64)
    return (255 - values * 255 // values.max()).astype(np.uint8)


def _save(ds: pydicom.Dataset, path: Path, pixels: np.ndarray | None = None) -> Path:
    """``ds`` written to ``path`` in its file meta's transfer syntax (pydicom deflates a deflated one)."""
    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = generate_uid(entropy_srcs=[path.name])
    if pixels is not None:
        ds.PixelData = pixels.tobytes()
    ds.save_as(path, enforce_file_format=False)
    return path


def _eight_bit(ds: pydicom.Dataset, photometric: str, samples: int) -> pydicom.Dataset:
    """``ds`` described as 8-bit ``photometric`` with ``samples`` samples, without its windows (set for 10 bits)."""
    ds.PhotometricInterpretation = photometric
    ds.SamplesPerPixel = samples
    ds.BitsAllocated, ds.BitsStored, ds.HighBit = 8, 8, 7
    for keyword in ("WindowCenter", "WindowWidth"):
        if keyword in ds:
            del ds[keyword]
    if samples == 3:
        ds.PlanarConfiguration = 0  # PS3.3 C.7.6.3.1.2: the only one YBR_FULL_422 allows
        ds.SOPClassUID = ds.file_meta.MediaStorageSOPClassUID = SECONDARY_CAPTURE
    return ds


def _ybr_full_422_pixels(grey: np.ndarray) -> np.ndarray:
    """``grey`` as native YBR_FULL_422: Y0 Y1 Cb Cr for each two pixels of a row, no colour (Cb = Cr = 128)."""
    rows, columns = grey.shape
    pairs = grey.reshape(rows, columns // 2, 2)
    chroma = np.full((rows, columns // 2, 1), 128, np.uint8)
    return np.concatenate([pairs, chroma, chroma], axis=-1)


@pytest.fixture(scope="module")
def chest(dicom_dir) -> pydicom.Dataset:
    return _film(dicom_dir)


@pytest.fixture()
def grey_twin(chest, tmp_path) -> Path:
    """The film as 8-bit MONOCHROME2."""
    ds = _eight_bit(copy.deepcopy(chest), "MONOCHROME2", 1)
    return _save(ds, tmp_path / "grey8_twin.dcm", _grey8(chest))


@pytest.fixture()
def ybr_422(chest, tmp_path) -> Path:
    """The film's 8-bit grey as uncompressed YBR_FULL_422: 440 × 440 × 2 = 387,200 bytes of pixel data."""
    ds = _eight_bit(copy.deepcopy(chest), "YBR_FULL_422", 3)
    return _save(ds, tmp_path / "ybr_full_422.dcm", _ybr_full_422_pixels(_grey8(chest)))


@pytest.fixture()
def plain(chest, tmp_path) -> Path:
    """The film in Explicit VR Little Endian."""
    return _save(copy.deepcopy(chest), tmp_path / "plain.dcm")


@pytest.fixture()
def deflated(chest, tmp_path) -> Path:
    """The same film in Deflated Explicit VR Little Endian (PS3.5 A.5)."""
    ds = copy.deepcopy(chest)
    ds.file_meta = FileMetaDataset(chest.file_meta)
    ds.file_meta.TransferSyntaxUID = DeflatedExplicitVRLittleEndian
    return _save(ds, tmp_path / "deflated.dcm")


def _refused(path: Path) -> str:
    """The reason ``read_image`` refuses ``path`` with, naming the file."""
    with pytest.raises(ImageReadError) as info:
        read_image(path)
    assert info.value.path == path and str(path) in str(info.value)
    return info.value.reason


# ======================================================================= A. YBR_FULL_422


class TestYbrFull422:
    def test_pydicom_test_file_reads_as_pydicom_decodes_it_in_grey(self):
        path = Path(get_testdata_file("SC_ybr_full_422_uncompressed.dcm"))
        ds = pydicom.dcmread(path)
        assert (ds.Rows, ds.Columns, len(ds.PixelData)) == (100, 100, 20_000)  # 100 × 100 × 2, not × 3
        assert pixel_data_problem(path) is None
        image = read_image(path)
        assert np.array_equal(image.stored, to_grey(ds.pixel_array))  # pydicom's RGB, grey as the product does
        assert "colour image (YBR_FULL_422) converted to greyscale" in image.warnings

    def test_film_reads_as_its_grey_twin(self, ybr_422, grey_twin):
        assert pixel_data_problem(ybr_422) is None
        image, twin = read_image(ybr_422), read_image(grey_twin)
        assert image.stored.shape == (440, 440) and image.photometric == "MONOCHROME2"
        assert np.array_equal(image.stored, twin.stored)
        assert float(image.stored.mean()) == pytest.approx(124.78, abs=0.01)  # the DICOM expert's measure

    def test_file_cut_in_its_pixel_data_is_refused_with_the_byte_counts(self, ybr_422, tmp_path):
        data = ybr_422.read_bytes()
        cut = tmp_path / "cut_422.dcm"
        cut.write_bytes(data[:-100_000])
        reason = "pixel data truncated: the file holds 287,200 of the 387,200 bytes of pixel data"
        assert pixel_data_problem(cut) == reason
        assert _refused(cut) == reason

    def test_pixel_data_shorter_than_the_pairs_call_for_is_refused(self, chest, tmp_path):
        ds = _eight_bit(copy.deepcopy(chest), "YBR_FULL_422", 3)
        pixels = _ybr_full_422_pixels(_grey8(chest))[:-1]  # a whole element, one row short
        path = _save(ds, tmp_path / "short_422.dcm", pixels)
        reason = "pixel data truncated: the file holds 386,320 of the 387,200 bytes of pixel data"
        assert pixel_data_problem(path) == reason
        assert _refused(path) == reason

    def test_odd_columns_are_not_refused_where_pydicom_decodes_them(self, tmp_path):
        """PS3.3 C.7.6.3.1.2 pairs pixels; for an odd Columns the check counts Rows × Columns × 2, as pydicom does."""
        ds = pydicom.dcmread(get_testdata_file("SC_ybr_full_422_uncompressed.dcm"))
        ds.Columns = 99
        ds.PixelData = bytes(ds.PixelData[: 100 * 99 * 2])
        path = tmp_path / "odd_422.dcm"
        ds.save_as(path)
        assert pixel_data_problem(path) is None
        assert read_image(path).stored.shape == (100, 99)


# ======================================================================= B. Deflated Explicit VR Little Endian


class TestDeflated:
    def test_deflated_copy_reads_as_the_plain_file(self, plain, deflated):
        assert deflated.stat().st_size < plain.stat().st_size  # truly deflated
        assert pydicom.dcmread(deflated).file_meta.TransferSyntaxUID == DeflatedExplicitVRLittleEndian
        assert pixel_data_problem(deflated) is None
        image, reference = read_image(deflated), read_image(plain)
        assert np.array_equal(image.stored, reference.stored)
        assert np.array_equal(image.modality, reference.modality)
        assert np.array_equal(image.stored, pydicom.dcmread(deflated).pixel_array)
        assert (image.photometric, image.invert, image.windows, image.spacing_mm, image.warnings) == (
            reference.photometric, reference.invert, reference.windows, reference.spacing_mm, reference.warnings)

    def test_the_scan_lists_a_deflated_film(self, deflated):
        result = scan(deflated)
        assert result.errors == ()
        assert result.image_files() == [deflated]

    def test_cut_deflated_file_is_refused_with_the_byte_counts(self, deflated, tmp_path):
        cut = tmp_path / "cut_deflated.dcm"
        cut.write_bytes(deflated.read_bytes()[: deflated.stat().st_size // 2])
        reason = pixel_data_problem(cut)
        assert reason is not None and reason.startswith("pixel data truncated: the file holds ")
        assert reason.endswith(" of the 387,200 bytes of pixel data")  # 440 × 440 × 2, counted inflated
        assert _refused(cut) == reason
        assert [error.reason for error in scan(cut).errors] == [reason]  # pydicom cannot read a cut stream

    def test_deflated_header_without_pixel_data_says_so(self, chest, tmp_path):
        ds = copy.deepcopy(chest)
        del ds.PixelData
        ds.file_meta = FileMetaDataset(chest.file_meta)
        ds.file_meta.TransferSyntaxUID = DeflatedExplicitVRLittleEndian
        path = _save(ds, tmp_path / "header_only.dcm")
        reason = ("no pixel data: the header describes a 440 × 440 image but the file has no Pixel Data element "
                  "(a header-only export?)")
        assert _refused(path) == reason
        assert [error.reason for error in scan(path).errors] == [reason]

    @pytest.mark.slow
    def test_cli_classifies_deflated_and_ybr_full_422_as_their_twins(self, plain, deflated, ybr_422, grey_twin,
                                                                     tmp_path_factory):
        card = make_random_model(tmp_path_factory.mktemp("model"))
        out = tmp_path_factory.mktemp("results") / "results.csv"  # never in an input's folder
        films = [plain, deflated, ybr_422, grey_twin]
        assert main([*map(str, films), "--model", str(card.path), "--csv", str(out), "--device", "cpu", "-q"]) == 0
        with open(out, newline="") as handle:
            rows = {Path(row["path"]).name: row for row in csv.DictReader(handle)}
        columns = ("status", "prediction", "p_normal", "p_pneumonia", "p_covid", "message")
        assert rows["deflated.dcm"]["status"] == rows["ybr_full_422.dcm"]["status"] == "ok"
        assert [rows["deflated.dcm"][c] for c in columns] == [rows["plain.dcm"][c] for c in columns]
        assert [rows["ybr_full_422.dcm"][c] for c in columns] == [rows["grey8_twin.dcm"][c] for c in columns]


# ======================================================================= a deflate bomb


def _deflate_bomb(chest: pydicom.Dataset, path: Path, rows: int = 16_384, columns: int = 16_384) -> Path:
    """The film's header as a deflated file (PS3.5 A.5) whose 16-bit pixel data, ``rows`` × ``columns`` of
    zeros, inflates to 512 MiB from about half a megabyte: built stream-wise, never held inflated."""
    ds = copy.deepcopy(chest)
    del ds.PixelData
    ds.Rows, ds.Columns = rows, columns
    meta = FileMetaDataset(chest.file_meta)
    meta.TransferSyntaxUID = DeflatedExplicitVRLittleEndian
    meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    header = pydicom.filebase.DicomBytesIO()
    header.is_little_endian, header.is_implicit_VR = True, False
    write_dataset(header, ds)
    length = rows * columns * 2
    element = b"\xe0\x7f\x10\x00OW\x00\x00" + length.to_bytes(4, "little")  # (7FE0,0010) OW, explicit VR LE
    deflater = zlib.compressobj(6, zlib.DEFLATED, -zlib.MAX_WBITS)
    body = [deflater.compress(header.getvalue() + element)]
    zeros = bytes(2**24)
    body += [deflater.compress(zeros) for _ in range(length // len(zeros))]
    body.append(deflater.flush())
    with open(path, "wb") as fh:
        fh.write(b"\0" * 128 + b"DICM")
        write_file_meta_info(fh, meta, enforce_standard=True)
        fh.write(b"".join(body))
    return path


@pytest.mark.slow
def test_deflate_bomb_is_refused_before_it_is_inflated_whole(chest, tmp_path):
    """A file of about half a megabyte that inflates to 512 MiB: refused once past the bound, which the message
    names, by the layout check, the reader and the scan (pydicom would inflate it whole, unbounded)."""
    path = _deflate_bomb(chest, tmp_path / "bomb.dcm")
    limit = max_inflated_bytes()
    assert path.stat().st_size < 4 * 2**20 and limit < 512 * 2**20
    reason = (f"deflated DICOM data set too large: it inflates to more than {limit:,} bytes, more than the "
              "largest image this program reads (a damaged file or a deflate bomb?)")
    assert pixel_data_problem(path) == reason
    assert _refused(path) == reason
    assert [error.reason for error in scan(path).errors] == [reason]


def test_the_deflate_check_reads_a_plain_file_once_and_does_not_parse_it(dicom_dir, tmp_path, monkeypatch):
    """A reviewer's finding: the deflate check opened and parsed every scanned file a second time. A plain file is
    now told from its first bytes, through the handle the scan already has."""
    import io

    from cxr_engine.reading import pixel_layout

    plain = (dicom_dir / "CR-MONO1-10-chest.dcm").read_bytes()
    assert not pixel_layout.may_be_deflated(io.BytesIO(plain))
    assert not pixel_layout.may_be_deflated(io.BytesIO(b"\0" * 200))  # no DICM: no file meta, never deflated
    deflated = tmp_path / "deflated.dcm"
    ds = pydicom.dcmread(io.BytesIO(plain), force=True)
    ds.file_meta.TransferSyntaxUID = pydicom.uid.DeflatedExplicitVRLittleEndian
    ds.save_as(deflated, enforce_file_format=True)
    assert pixel_layout.may_be_deflated(io.BytesIO(deflated.read_bytes()))

    def no_parse(fh):
        raise AssertionError("the meta group was parsed for a plain file")

    monkeypatch.setattr(pixel_layout, "_deflated_meta", no_parse)
    with open(dicom_dir / "CR-MONO1-10-chest.dcm", "rb") as fh:
        assert pixel_layout.deflated_problem(dicom_dir / "CR-MONO1-10-chest.dcm", fh) is None
