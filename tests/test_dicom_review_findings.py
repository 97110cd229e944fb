"""A reviewer's findings on the lossy-compression facts, the outputs' references and identity, and the app's
de-identified saves, on films built into ``tmp_path`` from the real CR film ``CR-MONO1-10-chest.dcm`` (the fixtures of
``test_dicom_expert_findings``; skipped with a reason when ``../shared`` is absent). Each test failed before its fix.

1. A Lossy Image Compression Ratio that is no number (``10:1``) made the Secondary Capture's builder raise, and no SC,
   SR or PDF was written for the film; a ratio over DS's 16 characters and a method that breaks CS were copied as
   they were. Now a derived object carries both lists only when every value is valid, and the reader is shown only
   the valid ones.
2. A JPEG 2000 stream with the reversible 5-3 wavelet was taken as lossless, but a stream cut to a rate is lossy
   (Pillow's ``quality_layers=[20], irreversible=False`` decodes 16 off): .91, .93 and .203 are lossy unless the
   header says Lossy Image Compression 00.
3. A multi-frame film's outputs showed frame N but referenced the film without a Referenced Frame Number (0008,1160)
   (PS3.3 Table 10-3, Type 1C: required when a reference is not to every frame).
4. The instance UIDs of unchanged content changed with the previous commits while the program version, and so the
   series UIDs, did not: a PACS holding older outputs got a second SR in the same series.
5. A de-identified note that de-identification made longer than a presentation state holds failed the Send with a
   length the reader never typed.
6. The code stream's header was read from every fragment of a multi-frame stream joined; two de-identified saves of
   one film (one session de-identifier, so one name) silently replaced each other when their content differed.
"""
from __future__ import annotations

import copy
import tracemalloc
from pathlib import Path

import numpy as np
import pydicom
import pytest
from pydicom.dataelem import RawDataElement
from pydicom.encaps import encapsulate
from pydicom.tag import Tag
from pydicom.uid import JPEG2000, JPEG2000Lossless, JPEGLSNearLossless

from cxr_engine.reading.header_checks import multi_values
from cxr_engine.reading.read import read_image
from test_dicom_expert_findings import build, cr  # noqa: F401 - fixtures

highdicom = pytest.importorskip("highdicom")

RATIO, METHOD = Tag(0x00282112), Tag(0x00282114)


def _with_raw(path: Path, **values: bytes) -> Path:
    """The film at ``path`` with Lossy Image Compression Ratio (``ratio``) and Method (``method``) written as the raw
    bytes given, whatever their VR allows (as a source may hold them), saved in place."""
    ds = pydicom.dcmread(path)
    for tag, vr, raw in ((RATIO, "DS", values.get("ratio")), (METHOD, "CS", values.get("method"))):
        if raw is not None:
            raw += b" " * (len(raw) % 2)
            ds[tag] = RawDataElement(tag, vr, len(raw), raw, 0, False, True)
    ds.save_as(path)
    return path


@pytest.fixture(scope="module")
def card():
    from cxr_engine.models.model_card import ModelCard

    from model_factory import BUNDLED_CARD

    return ModelCard.load(BUNDLED_CARD)


def _result(image, card):
    from cxr_engine.models.classifier import HeatmapResult, Prediction

    prediction = Prediction(card.classes, tuple(1 / len(card.classes) for _ in card.classes), card.name)
    return HeatmapResult(np.zeros(image.shape, np.float32), card.classes[0], prediction)


def _values(ds, keyword) -> list[str]:
    return [str(v) for v in multi_values(ds.get(keyword))]


# ------------------------------------------------------------------ 1. malformed ratio and method values

class TestMalformedLossyValues:
    def test_a_ratio_that_is_no_number_never_stops_the_films_outputs(self, build, card, tmp_path):
        from cxr_engine.outputs.dicom_outputs import DicomOutputWriter
        from cxr_engine.reading.lossy_compression import lossy_compression_text

        path = _with_raw(build("ratio_10_1.dcm", BitsStored=10, HighBit=9, LossyImageCompression="01",
                               LossyImageCompressionMethod="ISO_10918_1"), ratio=b"10:1")
        image = read_image(path)
        assert image.metadata.lossy_compression_ratio == "10:1"  # as the source holds it
        assert lossy_compression_text(image.metadata) == "Lossy compressed (JPEG)"  # only the valid values
        writer = DicomOutputWriter(tmp_path / "out", card, kinds=("sc", "sr", "pdf"))
        written = writer.write(image, _result(image, card))
        assert sorted(o.kind for o in written) == ["pdf", "sc", "sr"]
        sc = pydicom.dcmread(next(o.path for o in written if o.kind == "sc"))
        # Type 3 and value for value: neither list without the other; 01 stays.
        assert (sc.LossyImageCompression, _values(sc, "LossyImageCompressionRatio"),
                _values(sc, "LossyImageCompressionMethod")) == ("01", [], [])

    @pytest.mark.parametrize("ratio, method, kept, text", [
        # a number longer than DS's 16 characters is rounded to fit; the method is valid
        (b"12.345678901234567890", b"ISO_10918_1", (["12.3456789012346"], ["ISO_10918_1"]),
         "Lossy compressed (JPEG, 12.3457:1)"),
        # a method in lower case, or longer than CS's 16 characters: neither list is copied
        (b"15", b"iso_10918_1", ([], []), "Lossy compressed (15:1)"),
        (b"15", b"ISO_10918_1_EXTRA", ([], []), "Lossy compressed (15:1)"),
        # one bad value of two: the other ratio would pair with the wrong method
        (b"15\\abc", b"ISO_10918_1\\ISO_15444_1", ([], []), "Lossy compressed (JPEG + JPEG 2000, 15:1)"),
        (b"15\\2.5", b"ISO_10918_1\\ISO_15444_1", (["15", "2.5"], ["ISO_10918_1", "ISO_15444_1"]),
         "Lossy compressed (JPEG + JPEG 2000, 15:1 + 2.5:1)"),
    ])
    def test_values_that_break_their_vr_are_never_copied(self, build, card, tmp_path, ratio, method, kept, text):
        from cxr_engine.outputs.dicom_outputs import DicomOutputWriter
        from cxr_engine.reading.lossy_compression import lossy_compression_text

        path = _with_raw(build("bad_vr.dcm", BitsStored=10, HighBit=9, LossyImageCompression="01"),
                         ratio=ratio, method=method)
        image = read_image(path)
        assert lossy_compression_text(image.metadata) == text
        (written,) = DicomOutputWriter(tmp_path / "out", card, kinds=("sc",)).write(image, _result(image, card))
        sc = pydicom.dcmread(written.path)
        assert sc.LossyImageCompression == "01"
        assert (_values(sc, "LossyImageCompressionRatio"), _values(sc, "LossyImageCompressionMethod")) == kept
        assert all(len(v) <= 16 for v in kept[0] + kept[1])

    @pytest.mark.parametrize("value, ds", [("10", "10"), (" 2.5 ", "2.5"), ("1e1", "1e1"), ("10:1", ""), ("0", ""),
                                           ("-3", ""), ("NaN", ""), ("1_0", ""), ("inf", ""), ("", ""),
                                           ("12.345678901234567890", "12.3456789012346")])
    def test_ratio_as_ds(self, value, ds):
        from cxr_engine.reading.lossy_compression import ratio_as_ds

        assert ratio_as_ds(value) == ds


# ------------------------------------------------------------------ 2. JPEG 2000 with the reversible wavelet

class TestReversibleJpeg2000:
    def test_a_rate_limited_reversible_stream_is_lossy(self, build, cr):
        """The reviewer's repro: Pillow, ``quality_layers=[20], irreversible=False``, in .91."""
        import io

        import openjpeg
        from PIL import Image

        from cxr_engine.reading.codestream import j2k_header
        from cxr_engine.reading.lossy_compression import lossy_compression_text

        samples = cr[1].astype(np.uint16)
        buffer = io.BytesIO()
        Image.fromarray(samples).save(buffer, format="JPEG2000", quality_mode="rates", quality_layers=[20],
                                      irreversible=False, no_jp2=True)
        stream = buffer.getvalue()
        assert j2k_header(stream).levels > 0
        assert np.abs(openjpeg.decode(stream).astype(np.int64) - samples).max() > 0  # lossy, whatever the wavelet
        common = dict(BitsStored=16, HighBit=15, WindowCenter=474, WindowWidth=1024)
        texts = {label: lossy_compression_text(read_image(build(f"{label}.dcm", syntax=JPEG2000, frame=stream,
                                                                **attributes, **common)).metadata)
                 for label, attributes in {"silent": {}, "says 00": {"LossyImageCompression": "00"}}.items()}
        assert texts == {"silent": "Lossy compressed (JPEG 2000)", "says 00": ""}
        lossless = bytes(openjpeg.encode(samples, bits_stored=16, use_mct=False))
        image = read_image(build("lossless.dcm", syntax=JPEG2000Lossless, frame=lossless, **common))
        assert lossy_compression_text(image.metadata) == ""  # .90 holds only lossless streams

    @pytest.mark.parametrize("syntax, method", [("1.2.840.10008.1.2.4.91", "ISO_15444_1"),
                                                ("1.2.840.10008.1.2.4.93", "ISO_15444_2"),
                                                ("1.2.840.10008.1.2.4.203", "ISO_15444_15"),
                                                ("1.2.840.10008.1.2.4.90", "")])
    @pytest.mark.parametrize("flag", ["", "00", "01"])
    def test_lossy_unless_the_header_says_00(self, cr, syntax, method, flag):
        import openjpeg

        from cxr_engine.reading.lossy_compression import header_facts

        ds = copy.deepcopy(cr[0])
        ds.file_meta.TransferSyntaxUID = syntax
        ds.PixelData = encapsulate([bytes(openjpeg.encode(cr[1].astype(np.uint16), bits_stored=10, use_mct=False))])
        if flag:
            ds.LossyImageCompression = flag
        lossy_by_syntax = bool(method) and flag != "00"
        assert header_facts(ds) == (("01", "", method) if lossy_by_syntax else (flag, "", ""))


# ------------------------------------------------------------------ 3. Referenced Frame Number

class TestReferencedFrame:
    @pytest.fixture
    def written(self, build, cr, card, tmp_path):
        """``written(frames, number)``: the SC, SR and GSPS (one text note) of a film of ``frames`` frames (the film
        again and again) with Representative Frame Number ``number`` (None: absent), as datasets by kind."""
        from cxr_engine.outputs.dicom_outputs import DicomOutputWriter
        from cxr_engine.outputs.dicom_outputs.presentation_state import Mark

        def _written(frames: int, number) -> dict:
            name = f"frames{frames}_{number}"
            attributes = dict(NumberOfFrames=frames, RepresentativeFrameNumber=number) if frames > 1 else {}
            path = build(f"{name}.dcm", np.stack([cr[1]] * frames) if frames > 1 else cr[1], BitsStored=10,
                         HighBit=9, **attributes)
            image = read_image(path)
            objects = DicomOutputWriter(tmp_path / name, card, kinds=("sc", "sr", "gsps")).write(
                image, _result(image, card), marks=[Mark("text", ((50.0, 60.0),), "nodule?")])
            return {o.kind: pydicom.dcmread(o.path) for o in objects}
        return _written

    @staticmethod
    def _frames(objects: dict, source_uid: str) -> dict:
        """Every Referenced Frame Number of each object's references to the film: (where, value) pairs by kind."""
        found = {}
        for kind, ds in objects.items():
            pairs = []
            for element in ds.iterall():
                if element.VR == "SQ":
                    for item in element.value:
                        if str(item.get("ReferencedSOPInstanceUID", "")) == source_uid:
                            frame = item.get("ReferencedFrameNumber")
                            pairs.append((element.keyword, None if frame is None else [int(f) for f in
                                                                                      multi_values(frame)]))
            found[kind] = pairs
        return found

    @pytest.mark.parametrize("number, frame", [(2, 2), (None, 1), (5, 1)])  # 5: not one of its frames, the first
    def test_a_multi_frame_films_outputs_name_the_frame_shown(self, written, cr, number, frame):
        objects = written(3, number)
        found = self._frames(objects, str(cr[0].SOPInstanceUID))
        assert found["sc"] == [("SourceImageSequence", [frame])]
        # The SR's IMAGE item names the frame; its evidence (Current Requested Procedure Evidence Sequence) lists
        # instances, whose macro has no frame (PS3.3 Table C.17-3, Table 10-11).
        assert sorted(found["sr"], key=repr) == sorted([("ReferencedSOPSequence", [frame]),
                                                        ("ReferencedSOPSequence", None)], key=repr)
        assert objects["sr"].CurrentRequestedProcedureEvidenceSequence[0].ReferencedSeriesSequence[0] \
            .ReferencedSOPSequence[0].get("ReferencedFrameNumber") is None
        # The presentation state's Referenced Series Sequence and its annotation's Referenced Image Sequence.
        assert len(found["gsps"]) >= 2 and all(pair == ("ReferencedImageSequence", [frame]) for pair in found["gsps"])
        gsps = objects["gsps"]
        assert gsps.ReferencedSeriesSequence[0].ReferencedImageSequence[0].ReferencedFrameNumber == frame
        assert gsps.GraphicAnnotationSequence[0].ReferencedImageSequence[0].ReferencedFrameNumber == frame

    def test_a_single_frame_films_outputs_name_no_frame(self, written):
        for kind, ds in written(1, None).items():
            assert not any(e.keyword == "ReferencedFrameNumber" for e in ds.iterall()), kind

    def test_dcmpschk_accepts_the_multi_frame_presentation_state(self, written, tmp_path):
        import shutil
        import subprocess

        if shutil.which("dcmpschk") is None:
            pytest.skip("dcmtk's dcmpschk is not installed")
        gsps = tmp_path / "gsps.dcm"
        written(3, 2)["gsps"].save_as(gsps)
        run = subprocess.run(["dcmpschk", str(gsps)], capture_output=True, text=True)
        assert run.returncode == 0, run.stdout + run.stderr
        assert "Error" not in run.stdout, run.stdout


# ------------------------------------------------------------------ 4. output identity follows the program version

def test_this_version_writes_new_series_not_0_1_0s(build, card, tmp_path):
    """0.1.0's objects of the same film hold other instance UIDs in the same series: a new version, new series."""
    import tomllib

    from pydicom.uid import generate_uid

    import cxr_engine
    from cxr_engine.outputs.dicom_outputs import DicomOutputWriter

    project = tomllib.loads((Path(__file__).resolve().parents[1] / "pyproject.toml").read_text(encoding="utf-8"))
    assert project["project"]["version"] == cxr_engine.__version__ != "0.1.0"
    image = read_image(build("plain.dcm", BitsStored=10, HighBit=9))
    (sr,) = DicomOutputWriter(tmp_path / "out", card, kinds=("sr",)).write(image, _result(image, card))
    series = str(pydicom.dcmread(sr.path, stop_before_pixels=True).SeriesInstanceUID)
    old = generate_uid(entropy_srcs=["CXR Reader series", sr.study_instance_uid, "CXR Reader 0.1.0",
                                     card.weights_sha256, "sr"])
    assert series != old
    assert series == generate_uid(entropy_srcs=["CXR Reader series", sr.study_instance_uid,
                                                f"CXR Reader {cxr_engine.__version__}", card.weights_sha256, "sr"])


# ------------------------------------------------------------------ 5. a note longer once de-identified

def test_a_note_longer_once_deidentified_is_refused_with_that_cause(build, card, tmp_path):
    from cxr_engine.errors import DicomOutputError
    from cxr_engine.outputs.dicom_outputs import DicomOutputWriter
    from cxr_engine.outputs.dicom_outputs.presentation_state import Mark

    note = ("seen 1/2/24, " * 100)[:1020]  # 1020 typed; each of its 78 dates, 6 characters, becomes "[removed]", 9
    image = read_image(build("note.dcm", BitsStored=10, HighBit=9))
    marks = [Mark("text", ((50.0, 60.0),), "short"), Mark("text", ((80.0, 90.0),), note)]
    identified = DicomOutputWriter(tmp_path / "ident", card, kinds=("gsps",)).write(image, _result(image, card),
                                                                                     marks=marks)
    assert len(identified) == 1  # 1020 characters fit
    with pytest.raises(DicomOutputError) as refused:
        DicomOutputWriter(tmp_path / "deid", card, deidentify=True, kinds=("gsps",)).write(
            image, _result(image, card), marks=marks)
    reason = refused.value.reason
    assert reason.startswith('after de-identification the note "seen [removed], seen [removed], seen [re…" is '
                             "1254 characters (typed 1020;"), reason
    assert "shorten it by 230 characters or more" in reason and "1/2/24" not in reason
    assert not (tmp_path / "deid").exists() or not any((tmp_path / "deid").iterdir())


# ------------------------------------------------------------------ 6. header from the first fragment; saves kept

class TestFirstFragment:
    FRAMES = 30

    @pytest.fixture
    def stream(self, cr):
        """``stream(syntax, frame)``: the CR film as a dataset of ``FRAMES`` copies of the code stream ``frame`` in
        ``syntax``, one fragment each and no Basic Offset Table (in memory, as a decoded header holds it)."""
        def _stream(syntax, frame: bytes, **attributes):
            ds = copy.deepcopy(cr[0])
            ds.file_meta.TransferSyntaxUID = syntax
            ds.NumberOfFrames = self.FRAMES
            for keyword, value in attributes.items():
                setattr(ds, keyword, value)
            ds.PixelData = encapsulate([frame] * self.FRAMES, has_bot=False)
            return ds
        return _stream

    @staticmethod
    def _peak(call) -> tuple[object, int]:
        tracemalloc.start()
        try:
            result = call()
            return result, tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()

    def test_the_high_bit_reads_one_fragment(self, stream, cr):
        import openjpeg

        from cxr_engine.reading.high_bit import sample_shift

        words = ((cr[1] * 4) << 4).astype(np.uint16)
        frame = bytes(openjpeg.encode(words, bits_stored=16, use_mct=False))
        ds = stream(JPEG2000Lossless, frame, BitsAllocated=16, BitsStored=12, HighBit=15)
        shift, peak = self._peak(lambda: sample_shift(ds))
        assert shift == 4
        assert peak < 3 * len(frame), f"{peak} bytes for a {len(frame)}-byte fragment of {self.FRAMES}"

    def test_the_lossy_check_reads_one_fragment(self, stream, cr):
        import jpeg_ls

        from cxr_engine.reading.lossy_compression import header_facts

        samples = cr[1].astype(np.uint16)
        for near, method in ((3, "ISO_14495_1"), (0, "")):
            frame = bytes(jpeg_ls.encode_array(samples, lossy_error=near))
            ds = stream(JPEGLSNearLossless, frame, BitsStored=10, HighBit=9)
            facts, peak = self._peak(lambda: header_facts(ds))
            assert facts == ("01" if method else "", "", method)
            assert peak < 3 * len(frame), f"{peak} bytes for a {len(frame)}-byte fragment of {self.FRAMES}"


class TestSavesNeverReplaceAnotherObject:
    def test_two_deidentified_saves_of_one_film_into_one_folder(self, build, card, tmp_path):
        """One session de-identifier (the app's), so one name for the film's objects: a second save made with
        another result is refused, naming the file, and the first stays as it was; the same objects again are the
        same files."""
        from cxr_engine.errors import DicomOutputError
        from cxr_engine.outputs.dicom_outputs import DicomOutputWriter
        from cxr_engine.outputs.dicom_outputs.source import Deidentifier

        session = Deidentifier()
        image = read_image(build("film.dcm", BitsStored=10, HighBit=9))
        folder = tmp_path / "saved"

        def save(**shown):
            return DicomOutputWriter(folder, card, deidentify=True, deidentifier=session,
                                     kinds=("sc", "sr")).write(image, _result(image, card), **shown)

        first = save()
        before = {o.path: o.path.read_bytes() for o in first}
        assert all(o.path.name.startswith("anon-") for o in first)
        with pytest.raises(DicomOutputError, match=r"anon-\w+_sc\.dcm is already in .* holds another object .* "
                                                   r"it is not replaced"):
            save(warnings=("another result",))
        assert {path: path.read_bytes() for path in before} == before
        assert sorted(p.name for p in folder.iterdir()) == sorted(p.name for p in before)
        again = save()
        assert [(o.path, o.sop_instance_uid) for o in again] == [(o.path, o.sop_instance_uid) for o in first]

    def test_a_file_that_is_not_the_object_is_never_replaced(self, build, card, tmp_path):
        from cxr_engine.errors import DicomOutputError
        from cxr_engine.outputs.dicom_outputs import DicomOutputWriter

        image = read_image(build("film.dcm", BitsStored=10, HighBit=9))
        folder = tmp_path / "saved"
        folder.mkdir()
        (folder / "film_sr.dcm").write_text("the reader's own notes")
        with pytest.raises(DicomOutputError, match="film_sr.dcm is already in"):
            DicomOutputWriter(folder, card, kinds=("sc", "sr")).write(image, _result(image, card))
        assert (folder / "film_sr.dcm").read_text() == "the reader's own notes"
        assert not (folder / "film_sc.dcm").exists()  # refused before anything is written
