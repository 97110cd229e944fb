"""Pixel-pipeline faults a DICOM expert found, on films built into ``tmp_path`` from the real CR film
``CR-MONO1-10-chest.dcm`` and on the real sample and RSNA files (skipped with a reason when ``../shared`` is
absent). Each test failed before its fix; dcmtk (``dcmj2pnm``) shows the VOI LUT and High Bit films as the fixed
reader does.

1. A VOI LUT Descriptor's first mapped value was read signed only for Pixel Representation 1, the Modality LUT's
   rule (PS3.3 C.11.1.1.1). A VOI LUT maps the modality output (C.11.2.1.1): unsigned pixels with an intercept of
   −1000 and a first value stored as 64536 (−1000) showed all black; signed pixels with an intercept of +40000 and
   a first value of 39488 (read −26048) all white.
2. High Bit above Bits Stored − 1 (the legacy layout older editions of PS3.5 8.1.1 allowed: Bits Stored 12, High
   Bit 15, the samples in bits 4–15) was ignored: bits 0–11 were kept, banded noise, without a word.
3. Lossy compression (Lossy Image Compression 01, or a lossy transfer syntax; C.7.6.1.1.5) was never shown to the
   reader, and the Secondary Capture derived from such a film did not carry 01. (A reviewer's findings on this, a
   malformed ratio and the reversible JPEG 2000 wavelet, are ``test_dicom_review_findings``.)
4. The Representative Frame Number (0028,6010) of a multi-frame film was ignored: frame 1 was always shown.
"""
from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
import pydicom
import pytest
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.encaps import encapsulate
from pydicom.uid import (ExplicitVRLittleEndian, ImplicitVRLittleEndian, JPEG2000, JPEG2000Lossless, JPEGBaseline8Bit,
                         JPEGLSLossless, JPEGLSNearLossless, RLELossless)

from cxr_engine.errors import ImageReadError
from cxr_engine.pixels.rendering import render
from cxr_engine.reading.header_checks import multi_values
from cxr_engine.reading.read import read_image
from cxr_engine.reading.reduced_decode import DecodeRequest
from conftest import set_attributes

FILM = "CR-MONO1-10-chest.dcm"  # 440 x 440, 10-bit, MONOCHROME1, no file meta
RSNA = "0004cfab-14fd-4e49-80ba-63a80b6bddd6.dcm"  # JPEG Baseline, Lossy Image Compression 01, no ratio


@pytest.fixture(scope="module")
def cr(dicom_dir) -> tuple[Dataset, np.ndarray]:
    """The real CR film as a MONOCHROME2 dataset with file meta and its 10-bit values, (440, 440) int64."""
    ds = pydicom.dcmread(dicom_dir / FILM, force=True)
    values = np.frombuffer(ds.PixelData, "<u2").reshape(ds.Rows, ds.Columns).astype(np.int64)
    for element in list(ds):
        if element.tag.element == 0:  # group lengths
            del ds[element.tag]
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.file_meta.MediaStorageSOPClassUID = ds.SOPClassUID
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    ds.PhotometricInterpretation = "MONOCHROME2"
    values = 1023 - values
    ds.WindowCenter, ds.WindowWidth = 474, 1024
    return ds, values


@pytest.fixture
def build(tmp_path, cr):
    """``build(name, values=None, dtype=np.uint16, syntax=None, frame=None, **attributes)``: a copy of the CR film
    with ``values`` as native pixel data (or the encapsulated code stream ``frame`` in ``syntax``) and
    ``attributes`` set (None deletes one); saved in ``tmp_path / "films"``."""
    base, film_values = cr

    def _build(name: str, values=None, dtype=np.uint16, syntax=None, frame: bytes | None = None,
               **attributes) -> Path:
        ds = copy.deepcopy(base)
        if frame is not None:
            ds.PixelData = encapsulate([frame])
            ds["PixelData"].VR = "OB"
            ds.file_meta.TransferSyntaxUID = syntax
        else:
            pixels = np.ascontiguousarray((film_values if values is None else values).astype(dtype))
            ds.PixelData = pixels.tobytes()
            ds["PixelData"].VR = "OW" if pixels.dtype.itemsize > 1 else "OB"
            ds.BitsAllocated = pixels.dtype.itemsize * 8
            if syntax is not None:
                ds.file_meta.TransferSyntaxUID = syntax
        set_attributes(ds, attributes)
        path = tmp_path / "films" / name  # outputs go elsewhere: a source folder is never written
        path.parent.mkdir(exist_ok=True)
        ds.save_as(path, enforce_file_format=True)
        return path
    return _build


def lossy_compression_text(metadata) -> str:
    """``lossy_compression.lossy_compression_text`` (imported here so that each test fails alone without it)."""
    from cxr_engine.reading.lossy_compression import lossy_compression_text as text

    return text(metadata)


def _voi_lut(descriptor_vr: str, descriptor: list[int], table) -> Dataset:
    item = Dataset()
    item.add_new("LUTDescriptor", descriptor_vr, descriptor)
    item.add_new("LUTData", "US", [int(v) for v in table])
    item.LUTExplanation = "LINEAR"
    return item


# ------------------------------------------------------------------ 1. VOI LUT first mapped value

class TestVoiLutFirstMappedValue:
    """Its sign follows the modality output's range (C.11.2.1.1), not Pixel Representation."""

    TABLE = np.clip(np.arange(2048) * 2, 0, 4095)

    @pytest.fixture
    def negative_modality(self, build):
        """Unsigned 10-bit pixels, slope 2 and intercept −1000 (modality −1000..1046), a VOI LUT from −1000 written
        as the file says: ``film(vr, first, syntax)``."""
        def film(vr: str, first: int, syntax=ExplicitVRLittleEndian) -> Path:
            return build(f"rescaled_{vr}_{first}_{syntax.name}.dcm", syntax=syntax, BitsStored=10, HighBit=9,
                         RescaleSlope=2, RescaleIntercept=-1000, RescaleType="US", WindowCenter=None,
                         WindowWidth=None, VOILUTSequence=[_voi_lut(vr, [2048, first, 12], self.TABLE)])
        return film

    @pytest.mark.parametrize("vr, first, syntax", [
        ("US", 64536, ExplicitVRLittleEndian),  # −1000 written unsigned: was read 64536, all black
        ("US", 64536, ImplicitVRLittleEndian),  # implicit VR: pydicom reads it US for unsigned pixels
        ("SS", -1000, ExplicitVRLittleEndian),  # the SS case, right before and after
    ])
    def test_unsigned_pixels_with_a_negative_intercept(self, negative_modality, vr, first, syntax, cr):
        image = read_image(negative_modality(vr, first, syntax))
        assert image.voi_luts[0].first_mapped == -1000
        modality = cr[1] * 2 - 1000
        expected = self.TABLE[np.clip(modality + 1000, 0, 2047)] / 4095
        np.testing.assert_allclose(image.display(), expected, atol=1e-6)
        assert image.display().std() > 0.1, "the film must not be flat (it was all black)"

    def test_signed_pixels_with_a_large_positive_intercept(self, build, cr):
        """Signed 10-bit pixels, intercept +40000 (modality 39488..40511), a VOI LUT from 39488: read as it is, not
        as −26048 (all white before), and the film shows as its unsigned twin with the same modality values."""
        table = np.arange(1024) * 4
        lut = [_voi_lut("US", [1024, 39488, 12], table)]
        common = dict(BitsStored=10, HighBit=9, RescaleSlope=1, RescaleType="US", WindowCenter=None,
                      WindowWidth=None, VOILUTSequence=lut)
        signed = read_image(build("signed.dcm", cr[1] - 512, np.int16, PixelRepresentation=1, RescaleIntercept=40000,
                                  **common))
        twin = read_image(build("unsigned.dcm", cr[1], PixelRepresentation=0, RescaleIntercept=39488, **common))
        np.testing.assert_array_equal(signed.modality, twin.modality)
        assert signed.voi_luts[0].first_mapped == twin.voi_luts[0].first_mapped == 39488
        np.testing.assert_allclose(signed.display(), table[cr[1]] / 4095, atol=1e-6)
        np.testing.assert_array_equal(render(signed), render(twin))

    def test_signed_pixels_without_rescale_keep_the_signed_reading(self, build, cr):
        """The Pixel Representation 1 case that was right before: a first value of 65024 is −512."""
        table = np.arange(1024) * 4
        image = read_image(build("signed_plain.dcm", cr[1] - 512, np.int16, PixelRepresentation=1, BitsStored=10,
                                 HighBit=9, WindowCenter=None, WindowWidth=None,
                                 VOILUTSequence=[_voi_lut("US", [1024, 65024, 12], table)]))
        assert image.voi_luts[0].first_mapped == -512
        np.testing.assert_allclose(image.display(), table[cr[1]] / 4095, atol=1e-6)

    @pytest.mark.parametrize("value, entries, inputs, first", [
        (64536, 2048, (-1000.0, 1046.0), -1000),  # inputs can be negative: two's complement
        (39488, 1024, (39488.0, 40511.0), 39488),  # inputs cannot be: as written
        (-1000, 2048, (0.0, 4095.0), -1000),  # an SS value that maps some unsigned inputs stays negative
        (40000, 1024, (-1000.0, 50000.0), 40000),  # only the unsigned reading maps any input: unsigned
        (1000, 256, (-1000.0, 1000.0), 1000),  # below 2**15: the same either way
    ])
    def test_first_mapped_value_rule(self, value, entries, inputs, first):
        from cxr_engine.reading.dicom_io import first_mapped_value

        assert first_mapped_value(value, entries, inputs) == first


# ------------------------------------------------------------------ 2. High Bit above Bits Stored − 1

class TestLegacyHighBit:
    @pytest.fixture
    def twins(self, build, cr):
        """(legacy film's path builder, its twin's image): 12-bit samples in bits 4–15, garbage in bits 0–3."""
        samples = cr[1] * 4
        twin = read_image(build("highbit11.dcm", samples, BitsStored=12, HighBit=11, WindowCenter=1896,
                                WindowWidth=4096))
        return samples, twin

    def test_native_high_bit_15_reads_as_its_high_bit_11_twin(self, build, twins):
        samples, twin = twins
        path = build("highbit15.dcm", (samples << 4) | 0b0101, BitsStored=12, HighBit=15, WindowCenter=1896,
                     WindowWidth=4096)
        image = read_image(path)
        np.testing.assert_array_equal(image.stored, twin.stored)
        np.testing.assert_array_equal(image.display(), twin.display())
        [warning] = image.warnings
        assert warning.startswith("legacy pixel layout: High Bit (0028,0102) 15 with Bits Stored (0028,0101) 12, "
                                  "the samples in bits 4–15")
        assert not twin.warnings

    def test_signed_legacy_layout_is_sign_extended(self, build, cr):
        values = cr[1] * 4 - 2048  # −2048..2044
        twin = read_image(build("signed11.dcm", values, np.int16, PixelRepresentation=1, BitsStored=12, HighBit=11))
        image = read_image(build("signed15.dcm", (values << 4) | 0b1010, np.int16, PixelRepresentation=1,
                                 BitsStored=12, HighBit=15))
        assert int(image.stored.min()) < 0
        np.testing.assert_array_equal(image.stored, twin.stored)

    def test_rle_keeps_the_words_so_it_is_shifted_too(self, build, twins):
        from pydicom.pixels.encoders import RLELosslessEncoder

        samples, twin = twins
        words = ((samples << 4) | 0b0101).astype(np.uint16)
        frame = RLELosslessEncoder.encode(words, encoding_plugin="pydicom", rows=440, columns=440, samples_per_pixel=1,
                                          number_of_frames=1, bits_allocated=16, bits_stored=16, pixel_representation=0,
                                          photometric_interpretation="MONOCHROME2")
        image = read_image(build("highbit15_rle.dcm", syntax=RLELossless, frame=frame, BitsStored=12, HighBit=15))
        np.testing.assert_array_equal(image.stored, twin.stored)

    @pytest.mark.parametrize("codec", ["j2k", "jpeg-ls"])
    def test_a_code_stream_of_the_whole_words_is_shifted_one_of_the_samples_is_not(self, build, twins, codec):
        """A codec gives samples of its stream's precision: 16 bits (the words, legacy layout kept) are shifted,
        12 bits (already aligned, the usual encoding) are read as decoded, without a warning."""
        import jpeg_ls
        import openjpeg

        samples, twin = twins
        words = ((samples << 4) | 0b0101).astype(np.uint16)
        for label, data, precision in (("words", words, 16), ("samples", samples.astype(np.uint16), 12)):
            if codec == "j2k":
                frame, syntax = bytes(openjpeg.encode(data, bits_stored=precision, use_mct=False)), JPEG2000Lossless
            else:
                frame, syntax = bytes(jpeg_ls.encode_array(data)), JPEGLSLossless
            image = read_image(build(f"highbit15_{codec}_{label}.dcm", syntax=syntax, frame=frame, BitsStored=12,
                                     HighBit=15))
            np.testing.assert_array_equal(image.stored, twin.stored, err_msg=label)
            assert bool(image.warnings) == (label == "words")

    def test_the_reduced_decode_is_shifted_alike(self, build, twins):
        """The model's reduced JPEG 2000 decode reads the same stream: the block means of the twin's values."""
        import openjpeg

        samples, twin = twins
        words = ((samples << 4) | 0b0101).astype(np.uint16)
        path = build("highbit15_j2k_reduced.dcm", syntax=JPEG2000Lossless, frame=bytes(openjpeg.encode(
            words, bits_stored=16, use_mct=False)), BitsStored=12, HighBit=15)
        reduced = read_image(path, DecodeRequest(min_side=200))
        assert reduced.reduction == 2
        means = twin.stored.astype(np.float64).reshape(220, 2, 220, 2).mean(axis=(1, 3))
        assert np.abs(reduced.stored - means).mean() < 40  # a wrong shift is thousands off
        assert np.corrcoef(reduced.stored.ravel(), means.ravel())[0, 1] > 0.99

    @pytest.mark.parametrize("high_bit", [16, 10])
    def test_an_impossible_high_bit_is_refused_with_the_reason(self, build, cr, high_bit):
        path = build(f"highbit{high_bit}.dcm", cr[1] * 4, BitsStored=12, HighBit=high_bit)
        with pytest.raises(ImageReadError, match=rf"invalid High Bit \(0028,0102\) {high_bit}: .* between 11 and 15"):
            read_image(path)


# ------------------------------------------------------------------ 3. lossy compression shown

class TestLossyCompression:
    @pytest.mark.parametrize("name, facts, text", [
        ("RG1_J2KI.dcm", ("01", "10", "ISO_15444_1"), "Lossy compressed (JPEG 2000, 10:1)"),
        ("RG1_JLSN.dcm", ("01", "2", "ISO_14495_1"), "Lossy compressed (JPEG-LS, 2:1)"),
        ("966_fixed.dcm", ("00", "", ""), ""),  # JPEG 2000 lossless
        (FILM, ("", "", ""), ""),
    ])
    def test_real_films(self, dicom_dir, name, facts, text):
        metadata = read_image(dicom_dir / name).metadata
        lossy = (metadata.lossy_image_compression, metadata.lossy_compression_ratio, metadata.lossy_compression_method)
        assert lossy == facts
        assert lossy_compression_text(metadata) == text

    def test_rsna_films_are_jpeg_baseline(self, shared_data):
        files = sorted((shared_data / "dicom_rsna").glob("*.dcm"))
        if not files:
            pytest.skip(f"no RSNA films in {shared_data / 'dicom_rsna'}")
        assert {lossy_compression_text(read_image(path).metadata) for path in files[:4]} == {"Lossy compressed (JPEG)"}

    def test_lossy_by_the_flag_or_by_the_transfer_syntax(self, build, cr):
        import io

        import jpeg_ls
        import openjpeg
        from PIL import Image

        samples = cr[1].astype(np.uint16)
        eight_bit = (cr[1] // 4).astype(np.uint8)
        buffer = io.BytesIO()
        Image.fromarray(eight_bit).save(buffer, format="JPEG", quality=30)
        common = dict(BitsStored=10, HighBit=9)
        films = {
            "flag": build("flag.dcm", LossyImageCompression="01", LossyImageCompressionRatio=15,
                          LossyImageCompressionMethod="ISO_10918_1", **common),
            "flag 00": build("flag00.dcm", LossyImageCompression="00", **common),
            "jpeg": build("jpeg.dcm", syntax=JPEGBaseline8Bit, frame=buffer.getvalue(), BitsAllocated=8, BitsStored=8,
                          HighBit=7, WindowCenter=118, WindowWidth=256),
            "jpeg-ls near 3": build("jls3.dcm", syntax=JPEGLSNearLossless,
                                    frame=bytes(jpeg_ls.encode_array(samples, lossy_error=3)), **common),
            "jpeg-ls near 0": build("jls0.dcm", syntax=JPEGLSNearLossless, frame=bytes(jpeg_ls.encode_array(samples)),
                                    **common),
            "j2k 9-7": build("j2k97.dcm", syntax=JPEG2000, frame=bytes(openjpeg.encode(
                samples, bits_stored=10, use_mct=False, compression_ratios=[8])), **common),
            # The reversible wavelet does not make a .91 stream lossless (a stream cut to a rate is lossy: the
            # reviewer's finding, test_dicom_review_findings); only the header's 00 says it is.
            "j2k 5-3": build("j2k53.dcm", syntax=JPEG2000, frame=bytes(openjpeg.encode(
                samples, bits_stored=10, use_mct=False)), **common),
            "j2k 5-3 00": build("j2k53_00.dcm", syntax=JPEG2000, frame=bytes(openjpeg.encode(
                samples, bits_stored=10, use_mct=False)), LossyImageCompression="00", **common),
            "j2k lossless": build("j2k90.dcm", syntax=JPEG2000Lossless, frame=bytes(openjpeg.encode(
                samples, bits_stored=10, use_mct=False)), **common),
        }
        texts = {label: lossy_compression_text(read_image(path).metadata) for label, path in films.items()}
        assert texts == {"flag": "Lossy compressed (JPEG, 15:1)", "flag 00": "", "jpeg": "Lossy compressed (JPEG)",
                         "jpeg-ls near 3": "Lossy compressed (JPEG-LS)", "jpeg-ls near 0": "",
                         "j2k 9-7": "Lossy compressed (JPEG 2000)", "j2k 5-3": "Lossy compressed (JPEG 2000)",
                         "j2k 5-3 00": "", "j2k lossless": ""}

    def test_a_fact_not_a_warning_and_it_crosses_the_decoding_boundary(self, build):
        from cxr_engine.models.suitability import header_scope_reasons
        from cxr_engine.reading.image_wire import decode_image, encode_image

        plain = read_image(build("plain.dcm", BitsStored=10, HighBit=9))
        lossy = read_image(build("lossy.dcm", BitsStored=10, HighBit=9, LossyImageCompression="01",
                                 LossyImageCompressionRatio=15, LossyImageCompressionMethod="ISO_10918_1"))
        assert lossy.warnings == plain.warnings
        assert header_scope_reasons(lossy.metadata) == header_scope_reasons(plain.metadata)
        assert decode_image(*encode_image(lossy)).metadata == lossy.metadata

    def test_the_viewer_corner_says_it(self, dicom_dir):
        from cxr_desktop.formatting import corner_text
        from cxr_engine.pixels.windowing import Window

        for name, said in (("RG1_J2KI.dcm", True), (FILM, False)):
            image = read_image(dicom_dir / name)
            corners = corner_text(image.metadata, image.shape, Window(1000.0, 2000.0), 1.0, 0, False, False, False)
            lossy = [line for line in corners.bottom_left if "Lossy" in line]
            assert lossy == (["Lossy compressed (JPEG 2000, 10:1)"] if said else [])

    @pytest.mark.parametrize("deidentify", [False, True])
    def test_the_pdf_says_it(self, build, tmp_path, deidentify):
        pypdf = pytest.importorskip("pypdf")
        from cxr_engine.outputs.deidentify import report_identifiers
        from cxr_engine.outputs.report import ReportPage, write_report

        image = read_image(build("lossy.dcm", BitsStored=10, HighBit=9, LossyImageCompression="01",
                                 LossyImageCompressionRatio=15, LossyImageCompressionMethod="ISO_10918_1"))
        assert ("Compression", "Lossy compressed (JPEG, 15:1)") in report_identifiers(image.metadata, deidentify)
        path = tmp_path / "report.pdf"
        write_report(path, [ReportPage(displayed=render(image), metadata=image.metadata)], model_card=None,
                     deidentify=deidentify)
        text = " ".join(page.extract_text() for page in pypdf.PdfReader(path).pages)
        assert "Lossy compressed (JPEG, 15:1)" in " ".join(text.split())

    def test_the_secondary_capture_keeps_01_with_the_ratio_and_method(self, build, tmp_path, dicom_dir):
        pytest.importorskip("highdicom")
        from cxr_engine.models.classifier import HeatmapResult, Prediction
        from cxr_engine.models.model_card import ModelCard
        from cxr_engine.outputs.dicom_outputs import DicomOutputWriter

        from model_factory import BUNDLED_CARD

        card = ModelCard.load(BUNDLED_CARD)
        rsna = dicom_dir.parent / "dicom_rsna" / RSNA
        if not rsna.exists():
            pytest.skip(f"{rsna} is not on this machine")
        sources = {"native 01": build("lossy.dcm", BitsStored=10, HighBit=9, LossyImageCompression="01",
                                      LossyImageCompressionRatio=["15", "2.5"],
                                      LossyImageCompressionMethod=["ISO_10918_1", "ISO_15444_1"]),
                   "rsna jpeg": rsna, "not lossy": build("plain.dcm", BitsStored=10, HighBit=9)}
        captured = {}
        for label, path in sources.items():
            image = read_image(path)
            prediction = Prediction(card.classes, tuple(1 / len(card.classes) for _ in card.classes), card.name)
            result = HeatmapResult(np.zeros(image.shape, np.float32), card.classes[0], prediction)
            (written,) = DicomOutputWriter(tmp_path / "out" / label.replace(" ", "_"), card, kinds=("sc",)).write(
                image, result)
            sc = pydicom.dcmread(written.path)
            captured[label] = (sc.get("LossyImageCompression"),
                               [str(v) for v in multi_values(sc.get("LossyImageCompressionRatio"))],
                               [str(v) for v in multi_values(sc.get("LossyImageCompressionMethod"))])
        assert captured == {"native 01": ("01", ["15", "2.5"], ["ISO_10918_1", "ISO_15444_1"]),
                            "rsna jpeg": ("01", [], ["ISO_10918_1"]),
                            "not lossy": (None, [], [])}


# ------------------------------------------------------------------ 4. Representative Frame Number

class TestRepresentativeFrame:
    @pytest.fixture
    def multiframe(self, build, cr):
        """Two frames, the first black, the second the film: ``multiframe(number)`` sets (0028,6010) to it."""
        frames = np.stack([np.zeros_like(cr[1]), cr[1]])

        def film(number) -> Path:
            return build(f"multiframe_{number}.dcm", frames, NumberOfFrames=2, RepresentativeFrameNumber=number,
                         BitsStored=10, HighBit=9)
        return film

    def test_the_representative_frame_is_shown(self, multiframe, cr):
        image = read_image(multiframe(2))
        np.testing.assert_array_equal(image.stored, cr[1])
        assert "multi-frame image (2 frames): showing frame 2, its Representative Frame Number (0028,6010)" in \
            image.warnings

    @pytest.mark.parametrize("number, warning", [
        (None, "multi-frame image (2 frames): showing the first frame"),
        (3, "multi-frame image (2 frames): showing the first frame: Representative Frame Number (0028,6010) '3' is "
            "not one of its frames"),
        (0, "multi-frame image (2 frames): showing the first frame: Representative Frame Number (0028,6010) '0' is "
            "not one of its frames"),
    ])
    def test_without_a_valid_one_the_first_frame_with_a_warning(self, multiframe, number, warning):
        image = read_image(multiframe(number))
        assert not image.stored.any()
        assert warning in image.warnings
