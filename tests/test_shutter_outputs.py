"""What the product writes and says about a film's Display Shutter (PS3.3 C.7.6.11): the Grayscale Softcopy
Presentation State restates it (a viewer applying a state ignores the film's own shutter, PS3.4 N.2.3.1), and an
ROI's label names the pixels it left out as padding, as outside the shutter, or both.

The films are the real CR film ``CR-MONO1-10-chest.dcm`` (440 × 440, stored values 0..979) made a DX film as in
``test_display_shutter``, with the shutter and, for padding, a block of stored value 1023 (absent from the film)
named Pixel Padding Value. The GSPS is read back with pydicom and checked by dcmtk's dcmdump and dcmpschk.
"""
from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import numpy as np
import pydicom
import pytest

pytest.importorskip("highdicom")

from cxr_engine.models.classifier import HeatmapResult, Prediction  # noqa: E402
from cxr_engine.models.image_checks import reoriented  # noqa: E402
from cxr_engine.models.model_card import ModelCard  # noqa: E402
from cxr_engine.outputs.dicom_outputs import DicomOutputWriter  # noqa: E402
from cxr_engine.outputs.dicom_outputs.presentation_state import Mark, SpatialTransformation  # noqa: E402
from cxr_engine.pixels.roi import RECTANGLE as BOX, roi_stats  # noqa: E402
from cxr_engine.reading.display_shutter import read_shutter  # noqa: E402
from cxr_engine.reading.read import read_image  # noqa: E402
from test_display_shutter import FILM, RECTANGLE, _base  # noqa: E402

CARD = Path(__file__).resolve().parents[1] / "resources" / "models" / "efficientnet-lite0.json"
PADDING = 1023  # a stored value the film does not hold
#: Every attribute a shutter may bring into the state.
SHUTTER_KEYWORDS = ("ShutterShape", "ShutterLeftVerticalEdge", "ShutterRightVerticalEdge",
                    "ShutterUpperHorizontalEdge", "ShutterLowerHorizontalEdge", "CenterOfCircularShutter",
                    "RadiusOfCircularShutter", "VerticesOfThePolygonalShutter", "ShutterPresentationValue",
                    "ShutterPresentationColorCIELabValue", "ShutterOverlayGroup")
#: Written anew with each object (not content): left out when two states are compared.
CREATED = {"InstanceCreationDate", "InstanceCreationTime", "PresentationCreationDate", "PresentationCreationTime",
           "ContributionDateTime"}


@pytest.fixture
def write(tmp_path, dicom_dir):
    """``write(name, padded=None, **attributes)``: the real film with ``attributes`` set and the stored pixels
    ``padded`` (a (row slice, column slice)) set to the Pixel Padding Value, saved as a DICOM file."""
    def _write(name: str, padded: tuple[slice, slice] | None = None, **attributes) -> Path:
        ds = _base(dicom_dir / FILM)
        for keyword, value in attributes.items():
            setattr(ds, keyword, value)
        if padded is not None:
            pixels = ds.pixel_array.copy()
            pixels[padded] = PADDING
            ds.PixelData = pixels.astype("<u2").tobytes()
            ds.PixelPaddingValue = PADDING
        path = tmp_path / "films" / name
        path.parent.mkdir(exist_ok=True)
        ds.save_as(path, enforce_file_format=True)
        return path
    return _write


@pytest.fixture(scope="module")
def card() -> ModelCard:
    return ModelCard.load(CARD)


@pytest.fixture
def gsps(tmp_path, card):
    """``gsps(film, view=None)``: the presentation state the writer makes for an arrow on ``film`` (read back)."""
    def _gsps(film: Path, view: SpatialTransformation | None = None) -> tuple[Path, pydicom.Dataset]:
        image = read_image(film)
        # The state shows marks and the window, not the result: any prediction will do.
        prediction = Prediction(card.classes, tuple(1 / len(card.classes) for _ in card.classes), card.name)
        result = HeatmapResult(np.zeros(image.shape, np.float32), card.classes[0], prediction)
        (written,) = DicomOutputWriter(tmp_path / "out" / film.stem, card, kinds=("gsps",)).write(
            image, result, marks=[Mark("arrow", ((100.0, 100.0), (200.0, 150.0)))], window=(500.0, 600.0),
            spatial_transformation=view)
        return written.path, pydicom.dcmread(written.path)
    return _gsps


def _dcmdump_is_clean(path: Path):
    run = subprocess.run(["dcmdump", str(path)], capture_output=True, text=True)
    problems = [line for line in (run.stdout + run.stderr).splitlines() if line.startswith(("E:", "W:", "F:"))]
    assert run.returncode == 0 and not problems, problems


def _dcmpschk_passes(path: Path):
    """dcmpschk checks a presentation state's modules (a shutter shape without its attributes, or without a
    Shutter Presentation Value, fails); it exits 0 either way, so its verdict is read."""
    output = subprocess.run(["dcmpschk", str(path)], capture_output=True, text=True)
    text = output.stdout + output.stderr
    assert "Test passed" in text and "Test failed" not in text, text


needs_dcmtk = pytest.mark.skipif(shutil.which("dcmdump") is None or shutil.which("dcmpschk") is None,
                                 reason="dcmtk is not installed (Debian: apt-get install dcmtk)")


class TestPresentationStateShutter:
    @needs_dcmtk
    @pytest.mark.parametrize("name, attributes", [
        ("rectangle", dict(ShutterShape="RECTANGULAR", ShutterPresentationValue=0, **RECTANGLE)),
        ("circle", dict(ShutterShape="CIRCULAR", CenterOfCircularShutter=[220, 220], RadiusOfCircularShutter=150,
                        ShutterPresentationValue=0xFFFF)),
        ("triangle", dict(ShutterShape="POLYGONAL", VerticesOfThePolygonalShutter=[51, 221, 391, 51, 391, 391],
                          ShutterPresentationValue=40000)),
        ("both", dict(ShutterShape=["RECTANGULAR", "CIRCULAR"], CenterOfCircularShutter=[220, 220],
                      RadiusOfCircularShutter=200, ShutterPresentationValue=0x8000, **RECTANGLE)),
    ])
    def test_the_state_restates_the_films_shutter(self, write, gsps, name, attributes):
        film = write(f"{name}.dcm", **attributes)
        path, state = gsps(film)
        source = pydicom.dcmread(film, stop_before_pixels=True)
        for keyword in attributes:
            assert state[keyword].value == source[keyword].value, keyword
            assert state[keyword].VR == source[keyword].VR, keyword
        assert {k for k in SHUTTER_KEYWORDS if k in state} == set(attributes)
        _dcmdump_is_clean(path)
        _dcmpschk_passes(path)
        # The state's shutter hides what the reader hides on the film.
        shown, _ = read_shutter(state, (440, 440))
        np.testing.assert_array_equal(shown.mask, read_image(film).shutter)

    @needs_dcmtk
    @pytest.mark.parametrize("attributes, p_value", [
        ({}, 0),  # no value: the reader shows black, and a grayscale state must hold one (PS3.3 C.11.12)
        ({"ShutterPresentationColorCIELabValue": [0xFFFF, 0x8080, 0x8080]}, 0xFFFF),  # its lightness
    ])
    def test_the_presentation_value_is_the_one_the_reader_shows(self, write, gsps, attributes, p_value):
        film = write("dx.dcm", ShutterShape="RECTANGULAR", **RECTANGLE, **attributes)
        path, state = gsps(film)
        assert read_image(film).shutter_value == p_value
        assert state.ShutterPresentationValue == p_value
        assert "ShutterPresentationColorCIELabValue" not in state  # a colour state's attribute
        _dcmpschk_passes(path)

    def test_a_bitmap_shutter_is_left_out_and_the_other_shape_kept(self, write, gsps):
        film = write("dx.dcm", ShutterShape=["BITMAP", "RECTANGULAR"], ShutterOverlayGroup=0x6000,
                     ShutterPresentationValue=0, **RECTANGLE)
        _, state = gsps(film)
        assert state.ShutterShape == "RECTANGULAR" and "ShutterOverlayGroup" not in state
        assert [int(state[k].value) for k in RECTANGLE] == list(RECTANGLE.values())

    @pytest.mark.parametrize("attributes", [
        {},
        # open over the whole image: nothing hidden
        {"ShutterShape": "RECTANGULAR", "ShutterLeftVerticalEdge": 1, "ShutterRightVerticalEdge": 440,
         "ShutterUpperHorizontalEdge": 1, "ShutterLowerHorizontalEdge": 440, "ShutterPresentationValue": 0},
        # unreadable (no lower edge): the reader ignores it with a warning and shows the whole film
        {"ShutterShape": "RECTANGULAR", "ShutterLeftVerticalEdge": 61, "ShutterRightVerticalEdge": 380,
         "ShutterUpperHorizontalEdge": 61},
    ], ids=["none", "open", "unreadable"])
    def test_without_a_shutter_shown_the_state_is_as_before(self, write, gsps, attributes):
        """The plain film's state holds no shutter attribute; the shuttered film's differs from it only by its
        shutter (and creation times), every other element the same, but for its SOP Instance UID: another content
        is another instance (one UID, one object: PS3.3 C.12.1.1.1; ``DicomOutputWriter._next``), in the same
        series."""
        _, plain = gsps(write("plain.dcm", **attributes))
        assert not {k for k in SHUTTER_KEYWORDS if k in plain}
        _, shuttered = gsps(write("shuttered.dcm", ShutterShape="RECTANGULAR", ShutterPresentationValue=0,
                                  **RECTANGLE))
        assert shuttered.SOPInstanceUID != plain.SOPInstanceUID
        assert shuttered.SeriesInstanceUID == plain.SeriesInstanceUID

        def content(ds: pydicom.Dataset) -> dict:
            return {e.keyword: (e.VR, repr(e.value)) for e in ds.iterall()
                    if e.keyword not in CREATED and e.keyword != "SOPInstanceUID"}

        added = {k: v for k, v in content(shuttered).items() if k not in content(plain)}
        assert set(added) == {"ShutterShape", "ShutterPresentationValue", *RECTANGLE}
        assert {k: v for k, v in content(shuttered).items() if k not in added} == content(plain)

    @needs_dcmtk
    @pytest.mark.parametrize("turns", [1, 2, 3])
    @pytest.mark.parametrize("mirrored", [False, True])
    def test_on_a_film_shown_turned_the_shutter_turns_with_it(self, write, gsps, turns, mirrored):
        """The shutter is applied before the Spatial Transformation (PS3.4 N.2.3): it stays in the stored film's
        pixels, and the state's pipeline (shutter, then rotation and flip) hides what the reader saw hidden on the
        film corrected upright (``image_checks.reoriented``: only the top border is outside, so a turn shows)."""
        film = write("dx.dcm", ShutterShape="RECTANGULAR", ShutterLeftVerticalEdge=1, ShutterRightVerticalEdge=440,
                     ShutterUpperHorizontalEdge=61, ShutterLowerHorizontalEdge=440, ShutterPresentationValue=0)
        reasons = f"rotated-{90 * turns}" + (";mirrored" if mirrored else "")
        seen = reoriented(read_image(film), reasons).shutter

        def upright(array: np.ndarray) -> np.ndarray:  # as ``reoriented`` turns the film back
            array = np.rot90(array, k=turns)
            return array[:, ::-1] if mirrored else array

        view = SpatialTransformation.of(upright)
        path, state = gsps(film, view)
        assert (int(state.ImageRotation), state.ImageHorizontalFlip) == (view.rotation, "Y" if mirrored else "N")
        assert [int(state[k].value) for k in ("ShutterLeftVerticalEdge", "ShutterRightVerticalEdge",
                                              "ShutterUpperHorizontalEdge", "ShutterLowerHorizontalEdge")] == [
            1, 440, 61, 440]
        shown, _ = read_shutter(state, (440, 440))
        np.testing.assert_array_equal(view.apply(shown.mask), seen)
        _dcmdump_is_clean(path)
        _dcmpschk_passes(path)


class TestRoiWording:
    """The left-out pixels of a 100 × 100 box at the film's top-left corner, (0, 0)–(100, 100)."""

    CORNERS = ((0.0, 0.0), (100.0, 100.0))

    def test_padding_only_keeps_its_wording(self, write):
        film = write("padded.dcm", padded=(slice(70, 80), slice(70, 80)))
        image = read_image(film)
        stats = roi_stats(image, BOX, *self.CORNERS)
        assert (stats.pixels, stats.padding, stats.outside_shutter) == (9_900, 100, 0)
        assert stats.lines()[-1] == "n = 9,900 pixels (100 padding pixels left out)"
        stored = pydicom.dcmread(film).pixel_array[:100, :100].astype(np.float64)
        assert stats.mean == pytest.approx(stored[stored != PADDING].mean(), rel=1e-12)

    def test_shutter_only_names_the_pixels_outside_it(self, write):
        image = read_image(write("shutter.dcm", ShutterShape="RECTANGULAR", **RECTANGLE))
        stats = roi_stats(image, BOX, *self.CORNERS)
        # Rows and columns 0..59 (0-based) lie outside the opening 61..380 (1-based): 100² − 40² of them.
        assert (stats.pixels, stats.padding, stats.outside_shutter) == (1_600, 0, 8_400)
        assert stats.lines()[-1] == "n = 1,600 pixels (8,400 pixels outside the display shutter left out)"
        stored = pydicom.dcmread(image.path).pixel_array.astype(np.float64)
        assert stats.mean == pytest.approx(stored[60:100, 60:100].mean(), rel=1e-12)

    def test_both_are_named_and_a_padded_pixel_outside_the_shutter_counts_as_outside(self, write):
        # 300 padded pixels: rows 50..59 lie outside the shutter (100), rows 60..79 inside it (200).
        image = read_image(write("both.dcm", padded=(slice(50, 80), slice(70, 80)), ShutterShape="RECTANGULAR",
                                 **RECTANGLE))
        stats = roi_stats(image, BOX, *self.CORNERS)
        assert (stats.pixels, stats.padding, stats.outside_shutter) == (1_400, 200, 8_400)
        assert stats.lines()[-1] == ("n = 1,400 pixels "
                                     "(200 padding pixels and 8,400 pixels outside the display shutter left out)")

    def test_one_pixel_is_one_pixel(self, write):
        image = read_image(write("shutter.dcm", padded=(slice(60, 61), slice(61, 62)), ShutterShape="RECTANGULAR",
                                 **RECTANGLE))
        # Row 60, columns 59..61 (0-based): column 59 outside the opening, column 61 padding.
        stats = roi_stats(image, BOX, (59.0, 60.0), (62.0, 61.0))
        assert stats.lines()[-1] == "n = 1 pixel (1 padding pixel and 1 pixel outside the display shutter left out)"
