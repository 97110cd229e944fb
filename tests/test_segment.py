"""training.segment: the patient-disjoint split, paired augmentation that keeps the mask aligned, a tiny run and resume."""
from __future__ import annotations

import csv
import json

import numpy as np
import pytest

pytest.importorskip("torch")
pytest.importorskip("segmentation_models_pytorch")

from training.data import Augment  # noqa: E402
from training.segment import PairedAugment, dice, main, read_pairs, split_rows  # noqa: E402


def test_split_is_patient_disjoint_and_seeded():
    rows = [{"id": str(i), "patient_id": f"p{i // 3}"} for i in range(90)]
    split = split_rows(rows, 0.15, 0.15, seed=0)
    patients = {s: {r["patient_id"] for r in split if r["split"] == s} for s in ("train", "val", "test")}
    assert not (patients["train"] & patients["val"] or patients["train"] & patients["test"]
                or patients["val"] & patients["test"])
    assert 9 <= sum(r["split"] == "test" for r in split) <= 18
    assert split == split_rows(rows, 0.15, 0.15, seed=0) and split != split_rows(rows, 0.15, 0.15, seed=1)


def test_paired_augmentation_moves_image_and_mask_together():
    # The image is the mask itself (two bright "lungs"): wherever the geometry takes the image, the
    # mask must follow. Intensity and processing changes are switched off so the image stays binary.
    mask = np.zeros((96, 96), np.float32)
    mask[20:75, 15:40] = 1.0
    mask[20:75, 56:82] = 1.0
    still = Augment(brightness=0.0, contrast=(1.0, 1.0), gamma=(1.0, 1.0))
    augment = PairedAugment(framing_p=1.0, markers_p=0.0, flip_p=0.5, quarter_turn_p=0.5, acquisition_p=0.0,
                            augment=still)
    rng = np.random.default_rng(0)
    compared = 0
    for _ in range(40):
        image, target = augment(mask, mask, rng)
        assert image.shape == target.shape == mask.shape and 0.0 <= target.min() and target.max() <= 1.0
        bright, lung = image >= image.max() * 0.5, target >= 0.5
        assert lung.any() and bright[lung].mean() >= 0.95  # the mask lies on the image's "lungs"
        if bright.mean() <= lung.mean() * 1.1:  # no white canvas or corner fill: the two must match
            assert dice(bright, lung) >= 0.9
            compared += 1
    assert compared >= 10


@pytest.mark.slow
def test_a_tiny_run_writes_its_outputs_and_resumes(cxr3_dir, tmp_path):
    out = tmp_path / "run"
    argv = ["--data", str(cxr3_dir), "--out", str(out), "--pretrained", "none", "--size", "64", "--epochs", "1",
            "--batch-size", "4", "--limit", "8", "--threads", "1"]
    assert main(argv) == 0
    for name in ("train.log", "metrics.jsonl", "split.csv", "last.pt", "best.safetensors", "run.json",
                 "test_dice.csv", "test_metrics.json"):
        assert (out / name).is_file(), name
    assert len(list((out / "worst").glob("*.png"))) == 5
    with open(out / "split.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == len(read_pairs(cxr3_dir)) == 347
    metrics = json.loads((out / "test_metrics.json").read_text())
    assert metrics["test"]["n"] == 8 and 0.0 <= metrics["test"]["dice_mean"] <= 1.0
    assert main(argv[:-6] + ["--epochs", "2", "--batch-size", "4", "--limit", "8", "--threads", "1",
                             "--resume", str(out / "last.pt")]) == 0
    epochs = [json.loads(line)["epoch"] for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert epochs == [0, 1]
