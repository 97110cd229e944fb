"""Preprocessing cxr-pre-2 ("lung box"): the classifier input cropped to the lungs' bounding box plus a
10 % margin, on real films with the bundled lung model and the bundled classifier's weights (trained
with cxr-pre-1: these tests check the pipeline and its geometry, not accuracy)."""
from __future__ import annotations

import dataclasses
import json
import logging

import numpy as np
import pytest

from cxr_engine.errors import ModelError
from cxr_engine.pixels.input_frame import FALLBACK_WARNING, input_frame
from cxr_engine.reading.read import read_image
from cxr_engine.models.model_card import ModelCard
from cxr_engine.models.classifier import (heatmap_in_image_geometry, model_input, model_input_in_frame,
                                          unnormalised_input)
from cxr_engine.pixels.preprocessing import (LUNG_BOX_MARGIN, LUNG_BOX_VERSION, PREPROCESSING_VERSION, normalise,
                                             resize_and_stretch)

from model_factory import BUNDLED_CARD

pytest.importorskip("onnxruntime")


@pytest.fixture(scope="module")
def box_card() -> ModelCard:
    """The bundled classifier's card with preprocessing cxr-pre-2 (same weights)."""
    return dataclasses.replace(ModelCard.load(BUNDLED_CARD), preprocessing_version=LUNG_BOX_VERSION)


@pytest.fixture(scope="module")
def film(dicom_dir):
    return read_image(dicom_dir / "966_fixed.dcm")  # DX PA, 2128 x 2000, MONOCHROME1, JPEG 2000


@pytest.fixture(scope="module")
def lungs(film):
    from cxr_engine.models.lung_fields import segment_lungs

    fields = segment_lungs(film)
    assert fields.found
    return fields


def test_the_lung_box_input_is_the_crop_made_by_hand(film, lungs, box_card):
    r0, c0, r1, c1 = box = lungs.box(LUNG_BOX_MARGIN)
    rows = np.flatnonzero(lungs.mask.any(axis=1))
    cols = np.flatnonzero(lungs.mask.any(axis=0))
    height, width = rows[-1] + 1 - rows[0], cols[-1] + 1 - cols[0]
    # The lungs' box widened by 10 % of its height and width each side, clipped to the film.
    assert (r0, c0) == (max(0, rows[0] - round(0.1 * height)), max(0, cols[0] - round(0.1 * width)))
    assert (r1, c1) == (min(film.shape[0], rows[-1] + 1 + round(0.1 * height)),
                        min(film.shape[1], cols[-1] + 1 + round(0.1 * width)))
    assert box != (0, 0, *film.shape)
    display = film.display()
    padding = None if film.padding is None else film.padding[r0:r1, c0:c1]
    by_hand = normalise(resize_and_stretch(display[r0:r1, c0:c1], box_card.input_size, padding),
                        tuple(box_card.mean), tuple(box_card.std), box_card.in_chans)
    actual, frame = model_input_in_frame(box_card, film)
    assert frame.box == box and frame.warning is None
    np.testing.assert_array_equal(actual, by_hand)
    # cxr-pre-1 is still the whole film.
    whole = model_input(dataclasses.replace(box_card, preprocessing_version=PREPROCESSING_VERSION), film)
    np.testing.assert_array_equal(whole, normalise(resize_and_stretch(display, box_card.input_size, film.padding),
                                                   tuple(box_card.mean), tuple(box_card.std), box_card.in_chans))
    assert not np.array_equal(whole, actual)


def test_a_crop_sized_map_lands_in_its_box_zero_outside():
    input_heatmap = np.linspace(0, 1, 49, dtype=np.float32).reshape(7, 7)
    heatmap = heatmap_in_image_geometry(input_heatmap, (100, 80), (10, 20, 60, 70))
    assert heatmap.shape == (100, 80) and heatmap.dtype == np.float32
    assert not heatmap[:10].any() and not heatmap[60:].any() and not heatmap[:, :20].any() and not heatmap[:, 70:].any()
    assert heatmap[10:60, 20:70].max() == pytest.approx(1.0, abs=0.02)
    # The whole image's box is the plain resize, as without a box.
    np.testing.assert_array_equal(heatmap_in_image_geometry(input_heatmap, (100, 80), (0, 0, 100, 80)),
                                  heatmap_in_image_geometry(input_heatmap, (100, 80)))


def test_the_heatmap_of_a_lung_box_film_lies_inside_the_box(film, lungs, box_card):
    from cxr_engine.models.onnx_backend import OnnxClassifier

    r0, c0, r1, c1 = lungs.box(LUNG_BOX_MARGIN)
    result = OnnxClassifier(box_card).predict_with_heatmap(film)
    heatmap = result.heatmap
    assert heatmap.shape == film.shape
    outside = np.ones(film.shape, bool)
    outside[r0:r1, c0:c1] = False
    assert not heatmap[outside].any()
    assert heatmap[r0:r1, c0:c1].max() > 0.5 and heatmap[r0:r1, c0:c1].std() > 0.05


def test_a_film_without_lung_fields_falls_back_to_the_whole_image_with_a_warning(box_card, caplog):
    """pydicom's MR_small.dcm, an MR slice: no lung fields of a frontal chest film are found."""
    from pydicom.data import get_testdata_file

    path = get_testdata_file("MR_small.dcm", download=False)
    if path is None:
        pytest.skip("pydicom's MR_small.dcm is not installed")
    image = read_image(path)
    with caplog.at_level(logging.WARNING, logger="cxr_engine.pixels.input_frame"):
        actual, frame = model_input_in_frame(box_card, image)
    assert frame.whole and frame.warning == FALLBACK_WARNING
    assert any(FALLBACK_WARNING in r.getMessage() and "MR_small.dcm" in r.getMessage() for r in caplog.records)
    np.testing.assert_array_equal(actual, model_input(
        dataclasses.replace(box_card, preprocessing_version=PREPROCESSING_VERSION), image))


def test_a_card_with_an_unknown_preprocessing_version_is_refused(tmp_path):
    data = json.loads(BUNDLED_CARD.read_text(encoding="utf-8"))
    data["preprocessing_version"] = "cxr-pre-9"
    path = tmp_path / "future.json"
    path.write_text(json.dumps(data), encoding="utf-8")
    with pytest.raises(ModelError, match=r"future\.json.*unknown preprocessing_version 'cxr-pre-9'"):
        ModelCard.load(path)
    with pytest.raises(ValueError, match="unknown preprocessing_version"):
        unnormalised_input(np.zeros((8, 8)), 4, version="cxr-pre-9")
    data["preprocessing_version"] = LUNG_BOX_VERSION
    path.write_text(json.dumps(data), encoding="utf-8")
    assert ModelCard.load(path).preprocessing_version == "cxr-pre-2"


def test_a_shifted_film_is_segmented_again(film):
    """The evaluation's framing shifts hand the classifier the shifted whole film (presentation values, the
    cxr-pre-1 unnormalised model input): its lung box is found on that film, not carried over."""
    from training.framing_shift import FRAMING_SHIFTS, framed_display

    grey = unnormalised_input(film, 256)
    box = input_frame(grey, LUNG_BOX_VERSION).box
    zoomed = framed_display(str(film.path), 256, "zoom out, black border")  # 80 % of each side, centred
    np.testing.assert_array_equal(zoomed, framed_display(str(film.path), 256, "zoom out, black border"))
    shifted = input_frame(zoomed, LUNG_BOX_VERSION).box
    # The film lies in rows and columns 25.6-230.4 now: the lungs' box with its margin stays inside.
    assert min(shifted[:2]) >= 20 and max(shifted[2:]) <= 236
    assert shifted != box and "zoom out, black border" in FRAMING_SHIFTS


def test_onnx_and_torch_give_the_same_lung_box_and_results(film, box_card):
    pytest.importorskip("torch")
    pytest.importorskip("segmentation_models_pytorch")
    from cxr_engine.models.torch_backend import Classifier
    from cxr_engine.models.lung_fields import LungSegmenter, lung_card
    from cxr_engine.models.onnx_backend import OnnxClassifier

    card = lung_card()
    onnx_box = LungSegmenter(card, backend="onnx").segment(film).box(LUNG_BOX_MARGIN)
    torch_box = LungSegmenter(card, backend="torch").segment(film).box(LUNG_BOX_MARGIN)
    assert np.abs(np.subtract(onnx_box, torch_box)).max() <= 4
    want = Classifier(box_card, device="cpu").predict_with_heatmap(film)
    got = OnnxClassifier(box_card).predict_with_heatmap(film)
    np.testing.assert_allclose(got.prediction.probabilities, want.prediction.probabilities, atol=1e-4, rtol=0)
    assert float(np.abs(got.heatmap - want.heatmap).max()) <= 1e-3


# ---------------------------------------------------------------------------------------- training

def test_training_reads_the_lung_box_through_the_engine_and_keys_its_cache_by_version(cxr3_dir, tmp_path):
    pytest.importorskip("torch")
    from test_train import smoke_args, write_tiny_manifest
    from training import train
    from training.data import ManifestDataset, read_manifest

    manifest = write_tiny_manifest(cxr3_dir, tmp_path)
    rows = read_manifest(manifest, "val")
    dataset = ManifestDataset(rows, 64, (0.5,) * 3, (0.5,) * 3, preprocessing=LUNG_BOX_VERSION)
    tensor, _ = dataset[0]
    image = read_image(rows[0]["path"])
    expected = normalise(unnormalised_input(image, 64, version=LUNG_BOX_VERSION), (0.5,) * 3, (0.5,) * 3, 3)
    np.testing.assert_allclose(tensor.numpy(), expected, atol=2e-3)  # float16 cache
    assert not np.allclose(expected, normalise(unnormalised_input(image, 64), (0.5,) * 3, (0.5,) * 3, 3), atol=0.05)
    paths = [row["path"] for row in rows]
    assert train.cache_file(tmp_path, "val", 64, paths, LUNG_BOX_VERSION).name.startswith("val_64px_cxr-pre-2_")
    assert train.cache_file(tmp_path, "val", 64, paths) != train.cache_file(tmp_path, "val", 64, paths, LUNG_BOX_VERSION)

    # A few steps of a real run: the flag reaches run.json, the card draft and the shared decode cache.
    out, cache = tmp_path / "run", tmp_path / "cache"
    assert train.main(smoke_args(manifest, out, 1, "--preprocessing", LUNG_BOX_VERSION, "--cache-dir", str(cache))) == 0
    assert json.loads((out / "run.json").read_text())["preprocessing_version"] == LUNG_BOX_VERSION
    assert json.loads((out / "best.json").read_text())["preprocessing_version"] == LUNG_BOX_VERSION
    assert sorted(p.name.split("_")[2] for p in cache.glob("*.npy")) == [LUNG_BOX_VERSION] * 2
    with pytest.raises(ValueError, match="preprocessing"):
        train.main(smoke_args(manifest, out, 2, "--resume", str(out / "last.pt")))


def test_a_distillation_teacher_of_another_preprocessing_version_is_refused():
    pytest.importorskip("torch")
    from training.distill import load_teacher

    with pytest.raises(ValueError, match="teacher preprocessing cxr-pre-1 differs from the student's cxr-pre-2"):
        load_teacher(BUNDLED_CARD, 224, "cpu", LUNG_BOX_VERSION)


def test_the_wide_lung_box_is_open_at_the_bases(film, lungs):
    """cxr-pre-3: the lungs' box widened by 10 % of its height above, 25 % below and 15 % of its width each side
    (clipped to the film), made by hand from the lung mask; the engine's frame is that box."""
    from cxr_engine.pixels.input_frame import input_frame
    from cxr_engine.pixels.preprocessing import WIDE_LUNG_BOX_VERSION, is_lung_box

    assert is_lung_box(WIDE_LUNG_BOX_VERSION) and is_lung_box(LUNG_BOX_VERSION) and not is_lung_box(PREPROCESSING_VERSION)
    rows = np.flatnonzero(lungs.mask.any(axis=1))
    cols = np.flatnonzero(lungs.mask.any(axis=0))
    height, width = rows[-1] + 1 - rows[0], cols[-1] + 1 - cols[0]
    by_hand = (max(0, rows[0] - round(0.10 * height)), max(0, cols[0] - round(0.15 * width)),
               min(film.shape[0], rows[-1] + 1 + round(0.25 * height)),
               min(film.shape[1], cols[-1] + 1 + round(0.15 * width)))
    assert input_frame(film, WIDE_LUNG_BOX_VERSION, segment=lambda image, display: lungs).box == by_hand
    assert by_hand[2] >= lungs.box(LUNG_BOX_MARGIN)[2]  # never shorter below than cxr-pre-2's
