"""A border of padding (Pixel Padding Value, PS3.3 C.7.5.1.1.2) is not image data, so the classifier does
not see it: the model input is made from the image data's bounding box and the heat-map is placed back
there (``cxr_engine.pixels.input_frame.content_box``). The bug case ``padding-autowindow.dcm`` is the real
CR film ``CR-MONO1-10-chest.dcm`` with a border overwritten by padding: without the border it must be
classified as that film cut to the same box, not pneumonia 0.78 as it was with the border."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from cxr_engine.models.classifier import model_input_in_frame, unnormalised_input_in_frame
from cxr_engine.models.model_card import ModelCard
from cxr_engine.pixels.image import CxrImage
from cxr_engine.pixels.input_frame import MIN_CONTENT_SIDE, FALLBACK_WARNING, content_box, input_frame
from cxr_engine.pixels.preprocessing import LUNG_BOX_VERSION, PREPROCESSING_VERSION, resize_and_stretch
from cxr_engine.reading.read import read_image

from model_factory import BUNDLED_CARD

BUGCASES = Path(os.environ.get("CXR_BUGCASES", Path(__file__).resolve().parents[2] / "shared" / "bugcases"))
#: Where the bug case's image data lies (rows 24-415, columns 48-391 of 440 x 440).
CONTENT = (24, 48, 416, 392)


def _mask(shape, box=None) -> np.ndarray:
    padding = np.ones(shape, dtype=bool)
    if box is not None:
        r0, c0, r1, c1 = box
        padding[r0:r1, c0:c1] = False
    return padding


def test_content_box_is_the_image_datas_bounding_box():
    assert content_box(None) is None
    assert content_box(np.zeros((100, 80), dtype=bool)) is None, "no padding at all"
    assert content_box(_mask((100, 80), (10, 5, 90, 70))) == (10, 5, 90, 70)
    # Padding inside the image data (a hole) or on one side only of a row frames nothing there.
    holed = np.zeros((100, 80), dtype=bool)
    holed[40:60, 30:50] = True
    assert content_box(holed) is None
    one_side = np.zeros((100, 80), dtype=bool)
    one_side[:, 60:] = True
    assert content_box(one_side) == (0, 0, 100, 60)
    # Data spanning fewer than MIN_CONTENT_SIDE pixels either way, or none: the whole image is used.
    assert content_box(_mask((100, 80), (10, 5, 10 + MIN_CONTENT_SIDE - 1, 70))) is None
    assert content_box(_mask((100, 80))) is None


def test_a_stray_pixel_a_marker_or_a_line_in_the_border_does_not_bring_the_border_back():
    """A tester's finding: one non-padding pixel at (2, 2) made the box (2, 2, 416, 392) and the film pneumonia
    0.69 again. A burned-in marker or a one-pixel line in the border is not the image data's extent."""
    padding = _mask((440, 440), CONTENT)
    stray = padding.copy()
    stray[2, 2] = False
    assert content_box(stray) == CONTENT
    marker = padding.copy()
    marker[400:430, 5:40] = False  # an "R" burned into the bottom-left corner of the border
    assert content_box(marker) == CONTENT
    line = padding.copy()
    line[3, :] = False  # a scan line across the whole border, apart from the data
    assert content_box(line) == CONTENT
    # A round field: its box is the circle's, but for the thin caps beyond a quarter of its widest chord.
    rows, cols = np.mgrid[:200, :200]
    circle = (rows - 100) ** 2 + (cols - 100) ** 2 > 90 ** 2
    r0, c0, r1, c1 = content_box(circle)
    assert 10 <= r0 <= 14 and 186 <= r1 <= 190 and 10 <= c0 <= 14 and 186 <= c1 <= 190


def _image(values: np.ndarray, padding: np.ndarray | None) -> CxrImage:
    stored = np.asarray(values, dtype=np.uint16)
    return CxrImage(path=Path("synthetic.dcm"), stored=stored, modality=stored.astype(np.float32), photometric="MONOCHROME2",
                    padding=padding)


def test_both_versions_leave_the_border_out_and_the_lung_box_is_cut_to_it():
    rng = np.random.default_rng(0)
    values = rng.integers(1000, 3000, size=(120, 100))
    padding = _mask(values.shape, (10, 20, 110, 90))
    values[padding] = 0
    image = _image(values, padding)
    assert input_frame(image, PREPROCESSING_VERSION).box == (10, 20, 110, 90)
    # The model input is the data's box made by hand; the padding mask is cut alike (all data: no effect).
    grey, frame = unnormalised_input_in_frame(image, 32, version=PREPROCESSING_VERSION)
    np.testing.assert_array_equal(grey, resize_and_stretch(image.display()[10:110, 20:90], 32))
    assert frame.box == (10, 20, 110, 90)

    class Lungs:
        def __init__(self, box):
            self._box = box

        def box(self, margin):
            return self._box

    # cxr-pre-2: a lung box reaching into the border is cut to the data's box; no lungs: the data's box.
    frame = input_frame(image, LUNG_BOX_VERSION, segment=lambda image, display: Lungs((0, 30, 80, 100)))
    assert frame.box == (10, 30, 80, 90) and frame.warning is None
    frame = input_frame(image, LUNG_BOX_VERSION, segment=lambda image, display: Lungs(None))
    assert frame.box == (10, 20, 110, 90) and frame.warning == FALLBACK_WARNING
    # An array (PNG/JPEG pixels, training) or an image without padding: the whole image, as before.
    assert input_frame(image.display(), PREPROCESSING_VERSION).whole
    assert input_frame(_image(values, None), PREPROCESSING_VERSION).whole


@pytest.fixture(scope="module")
def padded_and_original(dicom_dir):
    case = BUGCASES / "padding-autowindow.dcm"
    if not case.exists():
        pytest.skip(f"bug case not found at {case} (set CXR_BUGCASES to the shared bugcases folder)")
    return read_image(case), read_image(dicom_dir / "CR-MONO1-10-chest.dcm")


def test_the_padded_bug_case_is_seen_inside_its_border(padded_and_original):
    padded, _ = padded_and_original
    card = ModelCard.load(BUNDLED_CARD)
    model_input, frame = model_input_in_frame(card, padded)
    assert frame.box == CONTENT
    assert not padded.padding[24:416, 48:392].any() and padded.padding[:24].all()
    by_hand = model_input_in_frame(card, padded.display()[24:416, 48:392])[0]
    np.testing.assert_array_equal(model_input, by_hand)


def test_the_padded_bug_case_is_classified_as_its_original_cut_to_the_same_box(padded_and_original):
    from cxr_engine.models.loading import load_classifier

    padded, original = padded_and_original
    classifier = load_classifier(BUNDLED_CARD, backend="onnx")
    with_border_out, original_cut = classifier.predict([padded, original.display()[24:416, 48:392]])
    # Not identical: the padded film's anatomy was rescaled into 1744-2340 and is shown through its
    # automatic window (1,760-2,305), the original through its full range.
    np.testing.assert_allclose(with_border_out.probabilities, original_cut.probabilities, atol=0.03)
    assert with_border_out.probability("pneumonia") < 0.6, "the border made it pneumonia 0.78"
    result = classifier.predict_with_heatmap(padded)
    heatmap = result.heatmap
    assert heatmap.shape == padded.shape
    assert not heatmap[:24].any() and not heatmap[416:].any() and not heatmap[:, :48].any() and not heatmap[:, 392:].any()
    assert heatmap[24:416, 48:392].max() > 0


def test_the_bundled_average_calls_the_padded_case_as_the_original_cut(padded_and_original):
    from cxr_engine.models.loading import load_classifier

    padded, original = padded_and_original
    classifier = load_classifier(backend="onnx")
    with_border_out, original_cut = classifier.predict([padded, original.display()[24:416, 48:392]])
    np.testing.assert_allclose(with_border_out.probabilities, original_cut.probabilities, atol=0.03)
    assert with_border_out.label == original_cut.label
