"""The bundled lung model (cxr_engine.models.lung_fields): Dice on held-out masks, the mask in the image's own
pixel grid (non-square, flipped, rotated), the plausibility warning, integrity, and the card staying
out of the classifier registry."""
from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from cxr_engine.errors import ModelError, ModelIntegrityError
from cxr_engine.reading.read import read_image
from cxr_engine.models.lung_fields import (NOT_FOUND_WARNING, LungModelCard, LungSegmenter, check_plausibility, lung_card,
                                    mask_at_grid)
from cxr_engine.models.model_card import ModelCard, default_card, find_card, list_bundled

pytest.importorskip("onnxruntime")

REPO = Path(__file__).resolve().parents[1]
CARD = REPO / "resources" / "models" / "lung-unet.json"
HELD_OUT = 8  # test-split films checked here (the first ids of the card's test list)


def dice(a: np.ndarray, b: np.ndarray) -> float:
    total = int(a.sum()) + int(b.sum())
    return 1.0 if total == 0 else 2.0 * int(np.logical_and(a, b).sum()) / total


@pytest.fixture(scope="module")
def card() -> LungModelCard:
    if not CARD.exists():
        pytest.skip(f"no lung model bundled at {CARD} (python -m training.export_lung_unet)")
    return lung_card(str(CARD))


@pytest.fixture(scope="module")
def segmenter(card) -> LungSegmenter:
    return LungSegmenter(card, backend="onnx").load()


@pytest.fixture(scope="module")
def held_out(card, cxr3_dir) -> list[tuple[Path, Path]]:
    ids = card.training_data["test_ids"][:HELD_OUT]
    return [(cxr3_dir / "images" / "covid" / f"{i}.jpg", cxr3_dir / "lung_masks" / f"{i}.png") for i in ids]


def reference(mask_path: Path) -> np.ndarray:
    return cv2.imread(str(mask_path), cv2.IMREAD_GRAYSCALE) > 127


def test_the_segmentation_card_is_never_a_classifier(card):
    assert card.task == "segmentation" and card.onnx_sha256 and card.weights_sha256
    assert "lung-unet" not in [c.name for c in list_bundled()]
    assert default_card() is None or default_card().name != "lung-unet"
    with pytest.raises(ModelError, match="segmentation model card, not a classifier"):
        find_card("lung-unet")
    with pytest.raises(ModelError, match="segmentation model card, not a classifier"):
        ModelCard.load(CARD)
    for key in ("dice_mean", "dice_p05", "share_dice_ge_0.85"):
        assert 0.0 < card.test_metrics[key] <= 1.0
    assert "CC BY 4.0" in card.licence and "Research use only" in card.intended_use


def test_held_out_test_masks_reach_dice_085(segmenter, card, held_out):
    scores = []
    for image_path, mask_path in held_out:
        image = read_image(image_path)
        fields = segmenter.segment(image)
        ref = reference(mask_path)
        assert fields.mask.shape == image.shape == ref.shape and fields.mask.dtype == bool
        scores.append(dice(fields.mask, ref))
    assert np.mean(scores) >= 0.85, scores
    assert min(scores) >= 0.7, scores


def test_mask_has_the_image_own_size_for_non_square_inputs(segmenter, held_out, tmp_path):
    image_path, mask_path = held_out[0]
    display = read_image(image_path).display()
    ref = reference(mask_path)
    for rows, cols in ((300, 190), (171, 333), (97, 64)):
        stretched = cv2.resize(display, (cols, rows), interpolation=cv2.INTER_LINEAR)
        fields = segmenter.segment(stretched)
        assert fields.mask.shape == (rows, cols)
        back = cv2.resize(fields.mask.astype(np.uint8), ref.shape[::-1], interpolation=cv2.INTER_NEAREST) > 0
        assert dice(back, ref) >= 0.8
    # A non-square file read through the engine: the mask has the CxrImage's (rows, cols).
    cropped = (display[: display.shape[0] * 3 // 4] * 255).round().astype(np.uint8)
    path = tmp_path / "tall_crop.png"
    cv2.imwrite(str(path), cropped)
    image = read_image(path)
    assert segmenter.segment(image).mask.shape == image.shape == cropped.shape


def test_flipped_or_rotated_input_gives_the_flipped_or_rotated_mask(segmenter, held_out):
    for image_path, _ in held_out[:3]:
        display = read_image(image_path).display()
        upright = segmenter.segment(display).mask
        flipped = segmenter.segment(np.ascontiguousarray(display[:, ::-1])).mask
        assert flipped.shape == upright.shape
        assert dice(flipped, upright[:, ::-1]) >= 0.9
        turned = segmenter.segment(np.ascontiguousarray(np.rot90(display))).mask
        assert turned.shape == upright.shape[::-1]
        assert dice(turned, np.rot90(upright)) >= 0.85


def test_a_chest_film_is_plausible_and_a_blank_or_noise_image_is_not(segmenter, held_out):
    fields = segmenter.segment(read_image(held_out[0][0]))
    assert fields.found and fields.warning is None
    left, right = fields.lungs
    assert left.side == "image-left" and right.side == "image-right"
    assert left.centroid[1] < fields.mask.shape[1] / 2 < right.centroid[1]
    assert fields.as_png_array().dtype == np.uint8 and set(np.unique(fields.as_png_array())) <= {0, 255}
    rng = np.random.default_rng(0)
    for other in (np.zeros((256, 256), np.float32), np.full((200, 240), 0.6, np.float32),
                  rng.random((256, 256)).astype(np.float32),
                  np.tile(np.linspace(0, 1, 256, dtype=np.float32), (256, 1))):
        fields = segmenter.segment(other)
        assert fields.mask.shape == other.shape
        assert fields.warning == NOT_FOUND_WARNING and not fields.found and fields.lungs == ()


def test_plausibility_rules_on_drawn_masks():
    def drawn(*ellipses):
        mask = np.zeros((200, 160), np.uint8)
        for centre, axes in ellipses:
            cv2.ellipse(mask, centre, axes, 0, 0, 360, 1, -1)
        return mask.astype(bool)

    two = drawn(((50, 100), (25, 60)), ((110, 100), (25, 60)))
    lungs, warning = check_plausibility(two)
    assert warning is None and [lung.side for lung in lungs] == ["image-left", "image-right"]
    for bad in (drawn(((80, 100), (50, 60))),  # one blob across the midline
                drawn(((30, 60), (15, 30)), ((60, 140), (15, 30))),  # both left of the midline
                drawn(((50, 40), (25, 20)), ((110, 160), (25, 20))),  # far apart in height
                drawn(((50, 100), (3, 3)), ((110, 100), (3, 3))),  # specks
                np.zeros((200, 160), bool)):
        assert check_plausibility(bad) == ((), NOT_FOUND_WARNING)


def test_mask_at_grid_resizes_the_probability_back():
    prob = np.zeros((8, 8), np.float32)
    prob[:, :4] = 1.0
    mask = mask_at_grid(prob, (30, 50))
    assert mask.shape == (30, 50) and mask[:, :20].all() and not mask[:, 30:].any()


def test_a_tampered_onnx_file_is_refused(card, tmp_path):
    for name in (CARD.name, card.onnx_file):
        shutil.copy(CARD.parent / name, tmp_path / name)
    data = bytearray((tmp_path / card.onnx_file).read_bytes())
    data[len(data) // 2] ^= 0xFF
    (tmp_path / card.onnx_file).write_bytes(bytes(data))
    with pytest.raises(ModelIntegrityError, match="does not match the model card"):
        LungSegmenter(LungModelCard.load(tmp_path / CARD.name), backend="onnx").load()
    with pytest.raises(ModelError, match="not a segmentation model card"):
        LungModelCard.load(REPO / "resources" / "models" / "efficientnet-lite0.json")


def test_onnx_path_never_imports_torch(card, held_out):
    script = (
        "import importlib.abc, json, sys\n"
        "class NoTorch(importlib.abc.MetaPathFinder):\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name.split('.')[0] in {'torch', 'torchvision', 'timm', 'segmentation_models_pytorch', 'safetensors'}:\n"
        "            raise ModuleNotFoundError(name)\n"
        "sys.meta_path.insert(0, NoTorch())\n"
        "from cxr_engine.reading.read import read_image\n"
        "from cxr_engine.models.lung_fields import segment_lungs\n"
        "fields = segment_lungs(read_image(sys.argv[1]))\n"
        "print(json.dumps({'lung': int(fields.mask.sum()), 'found': fields.found,\n"
        "                  'torch': any(m.split('.')[0] == 'torch' for m in sys.modules)}))\n"
    )
    result = subprocess.run([sys.executable, "-c", script, str(held_out[0][0])], cwd=REPO, capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout.strip().splitlines()[-1])
    assert out["lung"] > 0 and out["found"] and not out["torch"]


def test_torch_path_agrees_with_onnx(card, segmenter, held_out):
    pytest.importorskip("segmentation_models_pytorch")
    torch_segmenter = LungSegmenter(card, backend="torch")
    for image_path, _ in held_out[:2]:
        image = read_image(image_path)
        assert dice(torch_segmenter.segment(image).mask, segmenter.segment(image).mask) >= 0.99


def test_clean_mask_drops_specks_and_fills_holes():
    from cxr_engine.models.lung_fields import clean_mask

    mask = np.zeros((100, 100), bool)
    mask[20:80, 10:40] = True
    mask[20:80, 60:90] = True
    mask[40:45, 20:25] = False  # a hole inside a lung
    mask[95:97, 50:52] = True  # a speck
    cleaned = clean_mask(mask)
    assert cleaned[40:45, 20:25].all() and not cleaned[95:97, 50:52].any()
    assert cleaned[20:80, 10:40].all() and cleaned.sum() == 2 * 60 * 30


def test_lung_box_with_margin_is_clipped_to_the_image():
    from cxr_engine.models.lung_fields import LungFields

    mask = np.zeros((100, 80), bool)
    mask[10:90, 5:35] = True
    mask[12:88, 45:78] = True
    lungs, warning = check_plausibility(mask)
    fields = LungFields(mask, lungs, warning)
    assert fields.found and fields.box(0.0) == (10, 5, 90, 78)
    assert fields.box(0.1) == (2, 0, 98, 80)
    assert LungFields(np.zeros((10, 10), bool), (), NOT_FOUND_WARNING).box() is None
