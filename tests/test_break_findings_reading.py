"""Reading faults a tester found, on films built from the real ``CR-MONO1-10-chest.dcm`` (skipped with a reason
when ``../shared`` is absent):

1. ``header_checks.multi_values`` split a plain string into its letters: a Display Shutter stored with a text VR
   (explicit VR LO/SH/CS, a misencoded file) was read one character at a time. Edges ``61``/``380`` were
   dropped ("is 2 values, not 1"), Shutter Presentation Value ``65535`` read as 6 (the border black, not white,
   and the presentation state wrote US 6), an edge ``abc`` quoted as 'a'.
2. The presentation state copied a non-integer IS edge (``61.5``) as it was, which dcmpschk rejects, while the
   reader applied another value: it now holds the integers the reader applied, and the reader warns.
3. The deflate-bomb guard held up to the bound (~467 MB) inflated before refusing: the inflated bytes now stream
   past, counted, and refusing a bomb holds a few megabytes.
4. A film for processing named only by the file meta's Media Storage SOP Class UID (0002,0002) (no SOP Class UID
   (0008,0016)) got no for-processing reason or warning.
"""
from __future__ import annotations

import copy
import io
import subprocess
import tracemalloc
import zlib
from pathlib import Path

import numpy as np
import pydicom
import pytest
from pydicom.dataelem import DataElement
from pydicom.dataset import FileMetaDataset
from pydicom.filewriter import write_dataset, write_file_meta_info
from pydicom.multival import MultiValue
from pydicom.uid import DeflatedExplicitVRLittleEndian

from cxr_engine.models.suitability import FOR_PROCESSING, header_scope_reasons
from cxr_engine.pixels.rendering import render
from cxr_engine.reading.header_checks import multi_values
from cxr_engine.reading.pixel_layout import max_inflated_bytes, pixel_data_problem
from cxr_engine.reading.read import read_image
from test_display_shutter import BORDER, FILM, RECTANGLE, _base, _border

EDGE_TAGS = {"ShutterLeftVerticalEdge": 0x00181602, "ShutterRightVerticalEdge": 0x00181604,
             "ShutterUpperHorizontalEdge": 0x00181606, "ShutterLowerHorizontalEdge": 0x00181608}
PRESENTATION_VALUE_TAG = 0x00181622
DX_FOR_PROCESSING = "1.2.840.10008.5.1.4.1.1.1.1.1"


@pytest.fixture(scope="module")
def collimated(dicom_dir) -> np.ndarray:
    """The real film with its 60-px border overwritten by collimated values 20..59 (as ``test_display_shutter``)."""
    values = _base(dicom_dir / FILM).pixel_array.astype(np.int64)
    values[_border(values.shape)] = np.random.default_rng(0).integers(20, 60, int(_border(values.shape).sum()))
    return values


@pytest.fixture
def film(tmp_path, dicom_dir, collimated):
    """``film(name, raw=(), **attributes)``: the collimated DX film, RECTANGULAR shutter, with ``attributes`` set and
    the elements ``raw`` ((tag, VR, value)) added as given, whatever VR the dictionary has; saved."""
    def _film(name: str, raw=(), **attributes) -> Path:
        ds = _base(dicom_dir / FILM)
        ds.Rows, ds.Columns = collimated.shape
        ds.PixelData = collimated.astype("<u2").tobytes()
        ds.ShutterShape = "RECTANGULAR"
        for keyword, value in attributes.items():
            setattr(ds, keyword, value)
        for tag, vr, value in raw:
            ds.add(DataElement(tag, vr, value))
        path = tmp_path / "films" / name  # outputs go elsewhere: a source folder is never written
        path.parent.mkdir(exist_ok=True)
        ds.save_as(path, enforce_file_format=False)
        return path
    return _film


def _gsps(film: Path, tmp_path: Path) -> Path:
    """The presentation state the writer makes for an arrow on ``film``."""
    pytest.importorskip("highdicom")
    from cxr_engine.models.classifier import HeatmapResult, Prediction
    from cxr_engine.models.model_card import ModelCard
    from cxr_engine.outputs.dicom_outputs import DicomOutputWriter
    from cxr_engine.outputs.dicom_outputs.presentation_state import Mark

    from model_factory import BUNDLED_CARD

    card = ModelCard.load(BUNDLED_CARD)
    image = read_image(film)
    prediction = Prediction(card.classes, tuple(1 / len(card.classes) for _ in card.classes), card.name)
    result = HeatmapResult(np.zeros(image.shape, np.float32), card.classes[0], prediction)
    (written,) = DicomOutputWriter(tmp_path / "out" / film.stem, card, kinds=("gsps",)).write(
        image, result, marks=[Mark("arrow", ((100.0, 100.0), (200.0, 150.0)))], window=(500.0, 600.0))
    return written.path


def _dcmpschk_verdict(path: Path) -> str | None:
    """dcmpschk's verdict on a presentation state ("passed" / "failed"), None when dcmtk is not installed."""
    try:
        output = subprocess.run(["dcmpschk", str(path)], capture_output=True, text=True)
    except FileNotFoundError:
        return None
    text = output.stdout + output.stderr
    return "passed" if "Test passed" in text and "Test failed" not in text else "failed"


class TestMultiValues:
    @pytest.mark.parametrize("value, values", [
        ("61", ["61"]),  # a text VR's one value: not ["6", "1"]
        ("RECTANGULAR", ["RECTANGULAR"]),
        ("RECTANGULAR\\CIRCULAR", ["RECTANGULAR", "CIRCULAR"]),  # a raw string of an unknown VR: split on "\"
        ("550\\", ["550", ""]),
        (MultiValue(str, ["a", "b"]), ["a", "b"]),
        ([0.8, 0.8], [0.8, 0.8]),
        (61, [61]),
        (b"\x01\x02", [1, 2]),  # raw OB/OW bytes: their items, as before
        (None, []),
        ("", []),
    ])
    def test_a_string_is_one_value_unless_it_holds_the_delimiter(self, value, values):
        assert multi_values(value) == values


class TestShutterWithATextVr:
    @pytest.mark.parametrize("vr", ["LO", "SH", "CS"])
    def test_edges_stored_as_text_are_applied(self, film, vr):
        path = film(f"edges_{vr}.dcm", raw=[(tag, vr, str(RECTANGLE[k])) for k, tag in EDGE_TAGS.items()])
        image = read_image(path)
        assert image.warnings == ()
        np.testing.assert_array_equal(image.shutter, _border())

    @pytest.mark.parametrize("vr", ["LO", "SH"])
    def test_a_white_presentation_value_stored_as_text_shows_white(self, film, vr, tmp_path):
        path = film(f"pv_{vr}.dcm", raw=[(PRESENTATION_VALUE_TAG, vr, "65535")], **RECTANGLE)
        image = read_image(path)
        assert image.shutter_value == 0xFFFF and image.warnings == ()
        assert (render(image)[_border()] == 255).all(), "the border was shown black"
        state = pydicom.dcmread(_gsps(path, tmp_path))
        assert state["ShutterPresentationValue"].VR == "US" and state.ShutterPresentationValue == 0xFFFF
        assert [state[k].value for k in RECTANGLE] == list(RECTANGLE.values())

    def test_edges_stored_with_a_wrong_vr_are_restated_as_is(self, film, tmp_path):
        path = film("edges_LO.dcm", raw=[(tag, "LO", str(RECTANGLE[k])) for k, tag in EDGE_TAGS.items()])
        state = pydicom.dcmread(_gsps(path, tmp_path))
        assert [(state[k].VR, state[k].value) for k in RECTANGLE] == [("IS", v) for v in RECTANGLE.values()]

    def test_a_text_edge_that_is_no_number_is_quoted_whole(self, film):
        raw = [(tag, "LO", "abc" if k == "ShutterLeftVerticalEdge" else str(RECTANGLE[k]))
               for k, tag in EDGE_TAGS.items()]
        image = read_image(film("edge_abc.dcm", raw=raw))
        assert image.shutter is None
        assert image.warnings == ("Display Shutter (0018,1600) ignored, the whole image is shown: its RECTANGULAR "
                                  "shape cannot be read: Shutter Left Vertical Edge (0018,1602) 'abc' is not a "
                                  "number",)

    def test_a_window_explanation_stays_whole(self, film):
        image = read_image(film("window.dcm", WindowCenter=500, WindowWidth=600, WindowCenterWidthExplanation="LUNG",
                                **RECTANGLE))
        assert [w.explanation for w in image.windows] == ["LUNG"]


@pytest.mark.filterwarnings("ignore:Invalid value for VR IS:UserWarning",  # pydicom's own, on an IS 61.5
                            "ignore:Value \"61.5\" is not valid:UserWarning")
class TestNonIntegerEdge:
    WARNING = ("Display Shutter: Shutter Left Vertical Edge (0018,1602) '61.5' is not an integer (IS, PS3.5 6.2): "
               "applied as 62, the nearest pixel number")

    @pytest.fixture
    def fractional(self, film) -> Path:
        edges = {**RECTANGLE}
        del edges["ShutterLeftVerticalEdge"]
        return film("frac.dcm", raw=[(EDGE_TAGS["ShutterLeftVerticalEdge"], "IS", "61.5")], **edges)

    def test_the_reader_warns_and_applies_the_nearest_integer(self, fractional):
        image = read_image(fractional)
        assert image.warnings == (self.WARNING,)
        expected = _border()
        expected[:, BORDER] = True  # column 61 (1-based) now outside: the opening starts at 62
        np.testing.assert_array_equal(image.shutter, expected)

    def test_the_state_holds_the_integers_the_reader_applied(self, fractional, tmp_path):
        path = _gsps(fractional, tmp_path)
        state = pydicom.dcmread(path)
        assert state["ShutterLeftVerticalEdge"].VR == "IS" and state.ShutterLeftVerticalEdge == 62
        assert str(state.ShutterLeftVerticalEdge) == "62"
        from cxr_engine.reading.display_shutter import read_shutter

        shown, warnings = read_shutter(state, (440, 440))
        np.testing.assert_array_equal(shown.mask, read_image(fractional).shutter)
        assert warnings == []
        assert _dcmpschk_verdict(path) in (None, "passed")


# ======================================================================= 3. the deflate bomb


def _deflated_bytes(ds: pydicom.Dataset, tail: list[bytes] = ()) -> bytes:
    """``ds`` as a Deflated Explicit VR Little Endian file (PS3.5 A.5), ``tail`` (raw elements) deflated after it;
    built chunk by chunk, never held inflated."""
    meta = FileMetaDataset()
    meta.TransferSyntaxUID = DeflatedExplicitVRLittleEndian
    meta.MediaStorageSOPClassUID, meta.MediaStorageSOPInstanceUID = ds.SOPClassUID, ds.SOPInstanceUID
    head = io.BytesIO()
    head.write(b"\0" * 128 + b"DICM")
    write_file_meta_info(head, meta, enforce_standard=True)
    body = pydicom.filebase.DicomBytesIO()
    body.is_little_endian, body.is_implicit_VR = True, False
    write_dataset(body, ds)
    deflater = zlib.compressobj(6, zlib.DEFLATED, -zlib.MAX_WBITS)
    parts = [deflater.compress(body.getvalue())] + [deflater.compress(part) for part in tail]
    return head.getvalue() + b"".join(parts) + deflater.flush()


def _private_ob(length: int) -> bytes:
    """The header of a private OB element (0009,1010) of ``length`` bytes, explicit VR little endian."""
    return b"\x09\x00\x10\x10OB\x00\x00" + length.to_bytes(4, "little")


@pytest.mark.slow
def test_refusing_a_deflate_bomb_holds_a_few_megabytes(dicom_dir, tmp_path):
    """The tester's bomb: the film's header, then a private OB element of 600 MB of zeros, from under a megabyte.
    It used to be held inflated up to the bound (~467 MB, a peak of 980 MB): it is counted as it streams past."""
    header = _base(dicom_dir / FILM)
    del header.PixelData
    zeros, count = bytes(2**24), 600_000_000 // 2**24 + 1
    path = tmp_path / "bomb.dcm"
    path.write_bytes(_deflated_bytes(header, [_private_ob(count * len(zeros))] + [zeros] * count))
    assert path.stat().st_size < 2**20
    limit = max_inflated_bytes()
    tracemalloc.start()
    try:
        reason = pixel_data_problem(path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert reason == (f"deflated DICOM data set too large: it inflates to more than {limit:,} bytes, more than the "
                      "largest image this program reads (a damaged file or a deflate bomb?)")
    assert peak < 32 * 2**20, f"{peak:,} bytes held to refuse it"


class TestDeflatedStreamed:
    """Valid and cut deflated films still pass every check when the inflated bytes stream past: a header holding a
    3 MB private element (skipped, not held) before the pixel data."""

    @pytest.fixture
    def films(self, dicom_dir, tmp_path) -> tuple[Path, Path]:
        ds = _base(dicom_dir / FILM)
        ds.add_new(0x00090010, "LO", "CXR TEST")
        ds.add_new(0x00091010, "OB", bytes(range(256)) * (3 * 2**12 + 1))
        plain = tmp_path / "plain.dcm"
        ds.save_as(plain, enforce_file_format=False)
        deflated = tmp_path / "deflated.dcm"
        deflated.write_bytes(_deflated_bytes(copy.deepcopy(ds)))
        return plain, deflated

    def test_the_deflated_film_reads_as_the_plain_one(self, films):
        plain, deflated = films
        assert pixel_data_problem(deflated) is None
        np.testing.assert_array_equal(read_image(deflated).stored, read_image(plain).stored)

    @pytest.mark.parametrize("keep", [0.5, 0.9])
    def test_a_cut_one_says_how_much_pixel_data_it_holds(self, films, tmp_path, keep):
        _, deflated = films
        data = deflated.read_bytes()
        cut = tmp_path / "cut.dcm"
        cut.write_bytes(data[: int(len(data) * keep)])
        reason = pixel_data_problem(cut)
        assert reason is not None
        assert reason.startswith(("pixel data truncated: the file holds ", "truncated DICOM file: it ends at byte "))
        if reason.startswith("pixel data"):
            assert reason.endswith(" of the 387,200 bytes of pixel data")


# ======================================================================= 4. for processing, by the file meta


def test_a_film_for_processing_named_only_by_the_file_meta_is_out_of_scope(film):
    path = film("meta_only.dcm", **RECTANGLE)
    ds = pydicom.dcmread(path)
    ds.file_meta.MediaStorageSOPClassUID = DX_FOR_PROCESSING
    del ds.SOPClassUID
    ds.PresentationIntentType = ""
    ds.save_as(path, enforce_file_format=False)
    image = read_image(path)
    assert image.metadata.sop_class_uid == DX_FOR_PROCESSING
    assert header_scope_reasons(image.metadata) == FOR_PROCESSING
    assert [w for w in image.warnings if w.startswith("image for processing")] == [
        "image for processing (SOP Class 'Digital X-Ray Image Storage - For Processing'): raw detector data, meant to "
        "be processed before it is displayed (PS3.3 C.8.11.1.1.1); shown as stored, and the model, trained on "
        "processed films (for presentation), is not reliable on it"]
