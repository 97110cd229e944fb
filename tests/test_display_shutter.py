"""The Display Shutter (PS3.3 C.7.6.11): pixels outside it are not image data (left out of the automatic window,
the full range and the model input's stretch, as padding is) and are shown at the Shutter Presentation Value.

The films are built from the real CR film ``CR-MONO1-10-chest.dcm`` (440 × 440, MONOCHROME1, 10 bits) as a
DICOM expert built them: a DX film whose border 60 px wide is collimated (stored 20–59, white in MONOCHROME1)
under a RECTANGULAR shutter 61..380 with Shutter Presentation Value 0, its twin without a shutter and its
twin holding only the shutter's interior (320 × 320). The expert measured the auto window over the shuttered
field: 471.5/497; it was 368.5/697 over the whole film, with the border shown white.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from cxr_engine.models.classifier import unnormalised_input
from cxr_engine.models.image_checks import reoriented
from cxr_engine.pixels.rendering import Renderer, p_value_to_uint8, render, to_uint8
from cxr_engine.pixels.windowing import Window, apply_window, percentile_window
from cxr_engine.reading.decode_cache import image_bytes
from cxr_engine.reading.display_shutter import read_shutter
from cxr_engine.reading.image_wire import decode_image, encode_image
from cxr_engine.reading.read import read_image

FILM = "CR-MONO1-10-chest.dcm"
BORDER = 60  # px collimated on each side; the shutter's opening is rows and columns 61..380 (1-based)
RECTANGLE = {"ShutterLeftVerticalEdge": 61, "ShutterRightVerticalEdge": 380,
             "ShutterUpperHorizontalEdge": 61, "ShutterLowerHorizontalEdge": 380}


def _base(source: Path):
    """The real film as a DX dataset with file meta, no group lengths and no window (as the expert's ``base``)."""
    import pydicom
    from pydicom.dataset import FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian

    ds = pydicom.dcmread(source, force=True)
    for element in list(ds):
        if element.tag.element == 0:  # group lengths
            del ds[element.tag]
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.file_meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.1.1"  # Digital X-Ray Image, For Presentation
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    ds.SOPClassUID = ds.file_meta.MediaStorageSOPClassUID
    ds.preamble = b"\0" * 128
    ds.Modality = "DX"
    ds.PresentationIntentType = "FOR PRESENTATION"
    del ds.PixelAspectRatio, ds.WindowCenter, ds.WindowWidth
    ds.PixelSpacing = [0.8, 0.8]
    return ds


@pytest.fixture(scope="module")
def film(dicom_dir) -> np.ndarray:
    """The real film's stored values, (440, 440) int64."""
    return _base(dicom_dir / FILM).pixel_array.astype(np.int64)


@pytest.fixture
def write(tmp_path, dicom_dir, film):
    """``write(name, pixels=None, **attributes)``: the real film (or ``pixels``) with ``attributes`` set, saved."""
    def _write(name: str, pixels: np.ndarray | None = None, **attributes) -> Path:
        ds = _base(dicom_dir / FILM)
        pixels = film if pixels is None else pixels
        ds.Rows, ds.Columns = pixels.shape[-2:]
        for keyword, value in attributes.items():
            setattr(ds, keyword, value)
        ds.PixelData = np.ascontiguousarray(pixels).astype("<u2").tobytes()
        path = tmp_path / name
        ds.save_as(path, enforce_file_format=False)
        return path
    return _write


@pytest.fixture
def collimated(film) -> np.ndarray:
    """The film with its 60-px border overwritten by collimated values 20..59 (the expert's ``dx_shutter.dcm``)."""
    values = film.copy()
    border = np.ones(values.shape, dtype=bool)
    border[BORDER:-BORDER, BORDER:-BORDER] = False
    values[border] = np.random.default_rng(0).integers(20, 60, int(border.sum()))
    return values


def _border(shape=(440, 440)) -> np.ndarray:
    mask = np.ones(shape, dtype=bool)
    mask[BORDER:-BORDER, BORDER:-BORDER] = False
    return mask


class TestRectangularShutter:
    def test_the_auto_window_and_full_range_are_the_shuttered_fields(self, write, collimated, film):
        image = read_image(write("dx_shutter.dcm", collimated, ShutterShape="RECTANGULAR",
                                 ShutterPresentationValue=0, **RECTANGLE))
        assert image.warnings == ()
        np.testing.assert_array_equal(image.shutter, _border())
        np.testing.assert_array_equal(image.padding, _border())  # folded into "not image data"
        interior = film[BORDER:-BORDER, BORDER:-BORDER]
        low, high = np.percentile(interior[::4, ::4], [0.5, 99.5])  # the same grid as the twin's own
        auto = image.default_voi()
        assert (auto.low, auto.high) == pytest.approx((low, high))
        assert (auto.center, auto.width) == pytest.approx((471.5, 497.0), abs=0.01)  # the expert's values
        assert image.full_range_window() == Window.from_range(interior.min(), interior.max())

    def test_the_border_is_shown_at_the_presentation_value_and_the_field_as_its_twin(self, write, collimated, film):
        image = read_image(write("dx_shutter.dcm", collimated, ShutterShape="RECTANGULAR",
                                 ShutterPresentationValue=0, **RECTANGLE))
        twin = read_image(write("interior.dcm", film[BORDER:-BORDER, BORDER:-BORDER]))
        shown = render(image)
        assert (shown[_border()] == 0).all(), "the collimated border was shown white"
        np.testing.assert_array_equal(shown[BORDER:-BORDER, BORDER:-BORDER], render(twin))
        # Whatever the window and the reader's inversion: the P-value is after the Presentation LUT.
        renderer = Renderer(image)
        for voi, invert in ((Window(100, 50), False), (Window(900, 10), True), (None, not image.invert)):
            assert (renderer.render(voi, invert)[_border()] == 0).all()

    @pytest.mark.parametrize("p_value, grey", [(0xFFFF, 255), (0x8000, 128), (0, 0)])
    @pytest.mark.parametrize("photometric", ["MONOCHROME1", "MONOCHROME2"])
    def test_the_presentation_value_is_a_p_value_whatever_the_photometric(self, write, collimated, p_value, grey,
                                                                          photometric):
        image = read_image(write("dx.dcm", collimated, ShutterShape="RECTANGULAR", ShutterPresentationValue=p_value,
                                 PhotometricInterpretation=photometric, **RECTANGLE))
        assert image.shutter_value == p_value
        shown = render(image)
        assert (shown[_border()] == grey).all()
        assert not (shown[~_border()] == grey).all()

    def test_a_colour_presentation_value_is_shown_at_its_lightness(self, write, collimated):
        image = read_image(write("dx.dcm", collimated, ShutterShape="RECTANGULAR",
                                 ShutterPresentationColorCIELabValue=[0xFFFF, 0x8080, 0x8080], **RECTANGLE))
        assert image.shutter_value == 0xFFFF and (render(image)[_border()] == 255).all()

    def test_without_a_presentation_value_the_shutter_is_black(self, write, collimated):
        image = read_image(write("dx.dcm", collimated, ShutterShape="RECTANGULAR", **RECTANGLE))
        assert image.shutter_value == 0 and (render(image)[_border()] == 0).all()

    def test_the_model_inputs_stretch_leaves_the_outside_out(self, write, collimated, film):
        image = read_image(write("dx_shutter.dcm", collimated, ShutterShape="RECTANGULAR", **RECTANGLE))
        twin = read_image(write("interior.dcm", film[BORDER:-BORDER, BORDER:-BORDER]))
        np.testing.assert_allclose(unnormalised_input(image, 224), unnormalised_input(twin, 224), atol=1e-6)

    def test_the_shutter_travels_over_the_wire_and_counts_in_the_cache(self, write, collimated):
        image = read_image(write("dx.dcm", collimated, ShutterShape="RECTANGULAR", ShutterPresentationValue=40000,
                                 **RECTANGLE))
        back = decode_image(*encode_image(image))
        np.testing.assert_array_equal(back.shutter, image.shutter)
        assert back.shutter_value == 40000
        np.testing.assert_array_equal(render(back), render(image))
        assert image.padding is image.shutter  # the film has no padding: one mask, counted once
        assert image_bytes(image) == image.stored.nbytes + image.padding.nbytes
        header, buffers = encode_image(image)
        assert len(buffers) == 2  # stored values and the one mask: the shutter is not sent again
        assert back.shutter is back.padding  # nor held twice after the trip
        assert image_bytes(back) == back.stored.nbytes + back.padding.nbytes

    def test_an_upright_correction_turns_the_shutter_with_the_film(self, write, collimated):
        film = collimated.copy()
        film[:BORDER] = 700  # only the top border bright: a turn must move the shutter with it
        image = read_image(write("dx.dcm", film, ShutterShape="RECTANGULAR",
                                 ShutterLeftVerticalEdge=1, ShutterRightVerticalEdge=440,
                                 ShutterUpperHorizontalEdge=61, ShutterLowerHorizontalEdge=440))
        turned = reoriented(image, "rotated-90")
        np.testing.assert_array_equal(turned.shutter, np.rot90(image.shutter))
        np.testing.assert_array_equal(render(turned), np.rot90(render(image)))

    def test_every_frame_has_the_shutter(self, write, collimated):
        image = read_image(write("dx_2frames.dcm", np.stack([collimated, collimated]), NumberOfFrames=2,
                                 ShutterShape="RECTANGULAR", **RECTANGLE))
        np.testing.assert_array_equal(image.shutter, _border())


class TestWithoutAShutter:
    def test_the_twin_without_a_shutter_renders_as_before(self, write, film):
        image = read_image(write("dx_noshutter_twin.dcm"))
        assert image.shutter is None and image.padding is None and image.warnings == ()
        assert (image.default_voi().center, image.default_voi().width) == (559.5, 819.0)
        before = to_uint8(1.0 - apply_window(film, percentile_window(film)))  # MONOCHROME1, auto window
        np.testing.assert_array_equal(render(image), before)

    def test_a_shutter_open_over_the_whole_image_changes_nothing(self, write):
        plain = read_image(write("plain.dcm"))
        open_ = read_image(write("open.dcm", ShutterShape="RECTANGULAR", ShutterLeftVerticalEdge=1,
                                 ShutterRightVerticalEdge=440, ShutterUpperHorizontalEdge=1,
                                 ShutterLowerHorizontalEdge=440, ShutterPresentationValue=0xFFFF))
        assert open_.shutter is None and open_.padding is None and open_.warnings == ()
        np.testing.assert_array_equal(render(open_), render(plain))


class TestShapes:
    def test_circular(self, write):
        image = read_image(write("circle.dcm", ShutterShape="CIRCULAR", CenterOfCircularShutter=[220, 220],
                                 RadiusOfCircularShutter=150))
        shown = ~image.shutter  # 0-based (219, 219) is the centre
        assert shown[219, 219] and shown[219, 369] and shown[69, 219] and shown[219 + 106, 219 + 106]
        assert not shown[219, 370] and not shown[68, 219] and not shown[219 + 107, 219 + 107]
        assert not shown[0, 0] and not shown[439, 439]
        rows, cols = np.mgrid[1:441, 1:441]
        np.testing.assert_array_equal(shown, (rows - 220) ** 2 + (cols - 220) ** 2 <= 150**2)
        assert (render(image)[image.shutter] == 0).all()

    def test_circular_on_non_square_pixels_is_round_in_millimetres(self):
        from pydicom.dataset import Dataset

        ds = Dataset()
        ds.ShutterShape, ds.CenterOfCircularShutter, ds.RadiusOfCircularShutter = "CIRCULAR", [50, 100], 40
        shutter, warnings = read_shutter(ds, (100, 200), pixel_aspect=2.0)  # rows twice as far apart
        shown = ~shutter.mask
        assert not warnings
        assert shown[49, 139] and not shown[49, 140]  # 40 columns each way
        assert shown[69, 99] and not shown[70, 99]  # 20 rows each way

    def test_polygonal(self, write):
        image = read_image(write("triangle.dcm", ShutterShape="POLYGONAL",
                                 VerticesOfThePolygonalShutter=[51, 221, 391, 51, 391, 391]))
        shown = ~image.shutter
        assert shown[50, 220], "a vertex is on the boundary"
        assert not shown[49, 220] and not shown[50, 219] and not shown[50, 221]
        assert shown[390, 50:391].all() and not shown[390, 49] and not shown[390, 391], "the bottom edge"
        assert not shown[391].any() and not shown[:50].any()
        assert shown[300, 220] and not shown[100, 100] and not shown[300, 60]
        # Rows of the triangle: apex at column 221, half-width 170 over 340 rows (1-based).
        for row in (100, 221, 300):
            half = (row - 51) / 2
            assert shown[row - 1, int(np.ceil(221 - half)) - 1] and not shown[row - 1, int(np.ceil(221 - half)) - 2]

    def test_a_polygon_along_the_rectangle_is_the_rectangle(self, write, collimated):
        rectangle = read_image(write("rect.dcm", collimated, ShutterShape="RECTANGULAR", **RECTANGLE))
        polygon = read_image(write("poly.dcm", collimated, ShutterShape="POLYGONAL",
                                   VerticesOfThePolygonalShutter=[61, 61, 61, 380, 380, 380, 380, 61]))
        np.testing.assert_array_equal(polygon.shutter, rectangle.shutter)

    def test_shapes_combined_show_their_intersection(self, write):
        image = read_image(write("both.dcm", ShutterShape=["RECTANGULAR", "CIRCULAR"],
                                 CenterOfCircularShutter=[220, 220], RadiusOfCircularShutter=200, **RECTANGLE))
        rows, cols = np.mgrid[1:441, 1:441]
        circle = (rows - 220) ** 2 + (cols - 220) ** 2 <= 200**2
        np.testing.assert_array_equal(~image.shutter, circle & ~_border())
        assert not (~image.shutter)[60, 60], "the rectangle's corner lies outside the circle"

    def test_a_reduced_decode_samples_the_shutter_at_its_pixels_centres(self):
        from pydicom.dataset import Dataset

        ds = Dataset()
        ds.ShutterShape = "RECTANGULAR"
        for keyword, value in RECTANGLE.items():
            setattr(ds, keyword, value)
        shutter, _ = read_shutter(ds, (220, 220), reduction=2)  # decoded pixel i: the file's 2i + 1, 2i + 2
        shown_rows = np.flatnonzero(~shutter.mask[:, 110])
        assert (shown_rows[0], shown_rows[-1]) == (30, 189)


class TestBadShutters:
    @pytest.mark.parametrize("attributes, words", [
        ({"ShutterShape": "RECTANGULAR", "ShutterLeftVerticalEdge": 61, "ShutterRightVerticalEdge": 380,
          "ShutterUpperHorizontalEdge": 61}, "cannot be read"),
        ({"ShutterShape": "RECTANGULAR", **RECTANGLE, "ShutterLeftVerticalEdge": 400}, "cannot be read"),
        ({"ShutterShape": "HEXAGONAL"}, "cannot be read"),
        ({"ShutterShape": "CIRCULAR", "CenterOfCircularShutter": [220, 220], "RadiusOfCircularShutter": 0},
         "cannot be read"),
        ({"ShutterShape": "POLYGONAL", "VerticesOfThePolygonalShutter": [1, 1, 100, 100]}, "cannot be read"),
        ({"ShutterShape": "RECTANGULAR", "ShutterLeftVerticalEdge": 500, "ShutterRightVerticalEdge": 600,
          "ShutterUpperHorizontalEdge": 1, "ShutterLowerHorizontalEdge": 440}, "lies entirely outside the image"),
        ({"ShutterShape": ["RECTANGULAR", "CIRCULAR"], "ShutterLeftVerticalEdge": 1, "ShutterRightVerticalEdge": 100,
          "ShutterUpperHorizontalEdge": 1, "ShutterLowerHorizontalEdge": 100, "CenterOfCircularShutter": [400, 400],
          "RadiusOfCircularShutter": 30}, "leave no pixel of the image shown"),
        ({"ShutterShape": "BITMAP", "ShutterOverlayGroup": 0x6000}, "BITMAP"),
    ])
    def test_is_ignored_with_a_warning(self, write, attributes, words):
        plain = read_image(write("plain.dcm"))
        image = read_image(write("bad.dcm", **attributes))
        assert image.shutter is None and image.padding is None
        assert len(image.warnings) == 1 and words in image.warnings[0], image.warnings
        np.testing.assert_array_equal(render(image), render(plain))

    def test_a_bitmap_next_to_another_shape_leaves_that_shape_applied(self, write, collimated):
        image = read_image(write("dx.dcm", collimated, ShutterShape=["BITMAP", "RECTANGULAR"], **RECTANGLE))
        np.testing.assert_array_equal(image.shutter, _border())
        assert len(image.warnings) == 1 and "BITMAP" in image.warnings[0] and "not supported" in image.warnings[0]

    @pytest.mark.filterwarnings("ignore:Invalid value:UserWarning")  # pydicom's own, on setting it
    def test_an_out_of_range_presentation_value_shows_black(self):
        from pydicom.dataset import Dataset

        ds = Dataset()
        ds.ShutterShape = "RECTANGULAR"
        for keyword, value in RECTANGLE.items():
            setattr(ds, keyword, value)
        ds.add_new(0x00181622, "US", 70000)
        shutter, warnings = read_shutter(ds, (440, 440))
        assert shutter.presentation_value == 0 and "not a P-value" in warnings[0]


def test_p_values_to_8_bits():
    assert [p_value_to_uint8(p) for p in (0, 0x7FFF, 0x8000, 0xFFFF)] == [0, 127, 128, 255]
