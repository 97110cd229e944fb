"""Train the lung-field U-Net: segmentation-models-pytorch with a timm EfficientNet-Lite0 encoder.

Data: ``cxr3/lung_masks.csv`` (347 ``ieee8023_covid_chestxray`` films with V7 Labs lung masks,
CC BY 4.0; 255 = lung, both lungs including the part behind the heart). The split is
patient-disjoint (seeded group split on ``cxr3/manifest.csv``'s ``patient_id``) into
train/val/test and written to ``--out/split.csv``.

Input: the engine's own preprocessing steps 1–3 (``cxr_engine.pixels.preprocessing.resize_and_stretch``) at
``--size``, then step 4 (``normalise``, the Lite mean/std, 3 channels); the target mask is resized
to the same grid. Training augmentation, every geometric step applied to image and mask alike
(:class:`PairedAugment`): framing (a crop towards the thorax, a zoom-out onto a black/white/grey
canvas, a shift and rotation with uncovered corners, burned-in markers on the image), the
classifier's affine jitter and intensity changes (``training.data.Augment``), occasional
horizontal flips and quarter turns (so the mask follows a flipped or rotated film), and the
classifier's processing shift (``training.data.AcquisitionShift``). Loss: soft Dice + BCE.

Every epoch is validated (mean Dice at the model grid); the best epoch's weights are kept and, at
the end, evaluated on the test split at each film's own pixel grid, exactly as
``cxr_engine.models.lung_fields`` returns masks (probability resized back, threshold 0.5, specks and holes
removed: ``fields_from_probability``).

Outputs in ``--out``: ``train.log``, ``metrics.jsonl`` (one line per epoch), ``split.csv``,
``last.pt`` (checkpoint, tensors and plain values only), ``best.safetensors``, ``run.json``,
``test_dice.csv`` (Dice per test mask), ``test_metrics.json`` (mean, 5th percentile, share ≥ 0.85)
and ``worst/`` (overlay PNGs of the five worst test masks: green = reference, red = prediction).

Run: ``python -m training.segment --data ../shared/data/cxr3 --out training/work/seg_runs/unet192``
"""
from __future__ import annotations

import argparse
import csv
import datetime
import json
import logging
import math
import os
import shlex
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import cv2
import numpy as np
import torch

from cxr_engine.reading.read import read_image
from cxr_engine.models.lung_fields import fields_from_probability
from cxr_engine.pixels.preprocessing import PREPROCESSING_VERSION, contrast_stretch, normalise, resize_and_stretch
from cxr_engine.models.registry import TF_LITE_MEAN, TF_LITE_STD
from cxr_engine.models.weights import save_weights

from .data import AcquisitionShift, Augment
from .script_logging import script_logging

log = logging.getLogger("training.segment")

ENCODER = "tu-tf_efficientnet_lite0"
DECODER_CHANNELS = (64, 32, 16, 16, 8)
IN_CHANS = 3
MEAN, STD = TF_LITE_MEAN, TF_LITE_STD
DATA_LICENCE = "V7 Labs COVID-19 X-ray lung annotations (v7labs/covid-19-xray-dataset), CC BY 4.0"
DEFAULT_DATA = Path(os.environ.get("CXR_DATA", "../shared/data")) / "cxr3"


# --------------------------------------------------------------------------- model

def build_unet(decoder_channels: Sequence[int] = DECODER_CHANNELS):
    """The lung U-Net, freshly initialised (no download)."""
    import segmentation_models_pytorch as smp

    return smp.Unet(ENCODER, encoder_weights=None, in_channels=IN_CHANS, classes=1,
                    decoder_channels=tuple(decoder_channels))


def load_encoder(model, path: Path) -> None:
    """The ImageNet Lite0 backbone (``training.pretrained``, timm layout) into the U-Net's encoder.

    The encoder is timm's ``features_only`` model: every tensor must load except the classifier's
    last convolution and batch norm (``conv_head``, ``bn2``), which a feature extractor has not.
    """
    from safetensors.torch import load_file

    state = load_file(str(path), device="cpu")
    missing, unexpected = model.encoder.model.load_state_dict(state, strict=False)
    extra = [k for k in unexpected if not k.startswith(("conv_head.", "bn2."))]
    if missing or extra:
        raise ValueError(f"{path}: does not fit the U-Net encoder (missing {missing[:5]}, unexpected {extra[:5]})")
    log.info("encoder initialised from %s (%d tensors)", path, len(state) - len(unexpected))


# --------------------------------------------------------------------------- data

def read_pairs(data: Path) -> list[dict]:
    """Rows of ``lung_masks.csv`` joined with the manifest's patient id and source."""
    with open(data / "manifest.csv", newline="", encoding="utf-8") as handle:
        manifest = {row["id"]: row for row in csv.DictReader(handle)}
    rows = []
    with open(data / "lung_masks.csv", newline="", encoding="utf-8") as handle:
        for row in csv.DictReader(handle):
            meta = manifest.get(row["id"])
            if meta is None:
                raise ValueError(f"{row['id']}: in lung_masks.csv but not in manifest.csv")
            rows.append({"id": row["id"], "image": row["image_file"], "mask": row["mask_file"],
                         "patient_id": meta["patient_id"], "source": meta["source"], "view": meta.get("view", "")})
    return rows


def split_rows(rows: list[dict], val: float, test: float, seed: int) -> list[dict]:
    """Each row with a ``split``: patients shuffled with ``seed`` and dealt to test, val, train by share of films."""
    rng = np.random.default_rng(seed)
    patients = sorted({row["patient_id"] for row in rows})
    rng.shuffle(patients)
    counts: dict[str, int] = {}
    for row in rows:
        counts[row["patient_id"]] = counts.get(row["patient_id"], 0) + 1
    total, assigned, done = len(rows), {}, 0
    for patient in patients:
        share = done / total
        assigned[patient] = "test" if share < test else "val" if share < test + val else "train"
        done += counts[patient]
    return [dict(row, split=assigned[row["patient_id"]]) for row in rows]


def write_split(rows: list[dict], path: Path) -> None:
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=["id", "image", "mask", "patient_id", "source", "view", "split"])
        writer.writeheader()
        writer.writerows(rows)


def read_mask(path: Path) -> np.ndarray:
    """A reference mask as bool at its own grid (255 = lung)."""
    mask = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
    if mask is None:
        raise ValueError(f"{path}: cannot read mask")
    return mask > 127


def load_pair(data: Path, row: dict, size: int) -> tuple[np.ndarray, np.ndarray]:
    """(unnormalised model input, mask as float in [0, 1]) at ``size`` x ``size``."""
    display = read_image(data / row["image"]).display()
    mask = read_mask(data / row["mask"])
    if mask.shape != display.shape:
        raise ValueError(f"{row['mask']}: mask {mask.shape} and image {display.shape} differ in size")
    resized = cv2.resize(mask.astype(np.float32), (size, size), interpolation=cv2.INTER_AREA)
    return resize_and_stretch(display, size), resized


def _affine_pair(grey: np.ndarray, mask: np.ndarray, matrix: np.ndarray, border: int, fill: float):
    height, width = grey.shape
    image = cv2.warpAffine(grey, matrix, (width, height), flags=cv2.INTER_LINEAR, borderMode=border,
                           borderValue=float(fill))
    target = cv2.warpAffine(mask, matrix, (width, height), flags=cv2.INTER_LINEAR, borderMode=border,
                            borderValue=0.0)
    return image, target


MARKERS = ("L", "R", "AP", "PA", "PORTABLE", "SUPINE", "ERECT", "1", "14:32", "CR", "DX")


@dataclass(frozen=True)
class PairedAugment:
    """Geometry applied to image and mask alike; intensity and processing to the image only.

    Framing with probability ``framing_p`` (as ``training.data.FramingShift``: a crop keeping ``crop``
    of each side; a zoom-out to ``zoom`` of each side on a black, white or grey canvas; a
    rotation/shift leaving uncovered corners; then markers) and re-stretched as ``resize_and_stretch``
    would; then ``Augment``'s affine jitter (replicated borders) and intensity; flips and quarter
    turns; then ``AcquisitionShift``.
    """

    framing_p: float = 0.5
    crop: tuple[float, float] = (0.65, 0.95)
    zoom: tuple[float, float] = (0.65, 0.95)
    angle: float = 12.0
    shift: float = 0.12
    markers_p: float = 0.4
    flip_p: float = 0.25
    quarter_turn_p: float = 0.1
    acquisition_p: float = 0.8
    augment: Augment = Augment()

    def framing(self, grey: np.ndarray, mask: np.ndarray, rng: np.random.Generator):
        height, width = grey.shape
        kind = rng.choice(3, p=[0.45, 0.35, 0.2])
        if kind == 0:  # crop: the box (top..bottom, left..right) scaled to the whole grid
            keep_y, keep_x = rng.uniform(*self.crop, size=2)
            top, left = rng.uniform(0.0, 1.0 - keep_y) * height, rng.uniform(0.0, 1.0 - keep_x) * width
            matrix = np.array([[1.0 / keep_x, 0.0, -left / keep_x], [0.0, 1.0 / keep_y, -top / keep_y]])
            grey, mask = _affine_pair(grey, mask, matrix, cv2.BORDER_REPLICATE, 0.0)
        elif kind == 1:  # zoom out onto a canvas
            fill = float(rng.choice([0.0, 0.0, 1.0, rng.uniform(0.1, 0.7)]))
            sy, sx = rng.uniform(*self.zoom, size=2)
            top, left = (1 - sy) * height * rng.uniform(), (1 - sx) * width * rng.uniform()
            matrix = np.array([[sx, 0.0, left], [0.0, sy, top]])
            grey, mask = _affine_pair(grey, mask, matrix, cv2.BORDER_CONSTANT, fill)
        else:  # repositioned: rotated and shifted, corners filled
            matrix = cv2.getRotationMatrix2D((width / 2.0, height / 2.0), rng.uniform(-self.angle, self.angle), 1.0)
            matrix[0, 2] += rng.uniform(-self.shift, self.shift) * width
            matrix[1, 2] += rng.uniform(-self.shift, self.shift) * height
            grey, mask = _affine_pair(grey, mask, matrix, cv2.BORDER_CONSTANT, float(rng.choice([0.0, 1.0])))
        if rng.random() < self.markers_p:
            grey = np.ascontiguousarray(grey, dtype=np.float32).copy()
            for _ in range(int(rng.integers(1, 4))):
                scale = max(0.2, rng.uniform(0.03, 0.08) * min(height, width) / 22.0)
                value = float(rng.choice([0.0, 1.0]))
                x, y = int(rng.uniform(0.05, 0.9) * width), int(rng.uniform(0.05, 0.95) * height)
                # Drawn as 8-bit coverage (OpenCV 5's putText takes only 8-bit images), then blended in.
                ink = np.zeros(grey.shape, np.uint8)
                cv2.putText(ink, str(rng.choice(MARKERS)), (x, y), cv2.FONT_HERSHEY_SIMPLEX, scale, 255,
                            max(1, int(round(scale * 1.5))), cv2.LINE_AA)
                alpha = ink.astype(np.float32) / 255.0
                grey = grey * (1.0 - alpha) + value * alpha
        return contrast_stretch(np.clip(grey, 0.0, 1.0)), mask

    def __call__(self, grey: np.ndarray, mask: np.ndarray, rng: np.random.Generator):
        grey, mask = grey.astype(np.float32, copy=True), mask.astype(np.float32, copy=True)
        if rng.random() < self.framing_p:
            grey, mask = self.framing(grey, mask, rng)
        height, width = grey.shape
        aug = self.augment
        matrix = cv2.getRotationMatrix2D((width / 2.0, height / 2.0), rng.uniform(-aug.rotation, aug.rotation),
                                         rng.uniform(*aug.scale))
        matrix[0, 2] += rng.uniform(-aug.shift, aug.shift) * width
        matrix[1, 2] += rng.uniform(-aug.shift, aug.shift) * height
        grey, mask = _affine_pair(grey, mask, matrix, cv2.BORDER_REPLICATE, 0.0)
        grey = aug.intensity(grey, rng)
        if rng.random() < self.flip_p:
            grey, mask = grey[:, ::-1], mask[:, ::-1]
        if rng.random() < self.quarter_turn_p:
            turns = int(rng.choice([1, 3]))
            grey, mask = np.rot90(grey, turns), np.rot90(mask, turns)
        grey = AcquisitionShift(p=self.acquisition_p)(np.ascontiguousarray(grey), rng)
        return np.ascontiguousarray(grey, dtype=np.float32), np.clip(np.ascontiguousarray(mask), 0.0, 1.0)


def batch_tensors(images: Sequence[np.ndarray], masks: Sequence[np.ndarray]) -> tuple[torch.Tensor, torch.Tensor]:
    x = np.stack([normalise(image, MEAN, STD, IN_CHANS) for image in images])
    y = np.stack(masks)[:, None].astype(np.float32)
    return torch.from_numpy(x), torch.from_numpy(y)


# --------------------------------------------------------------------------- loss and metrics

def dice_bce_loss(logits: torch.Tensor, target: torch.Tensor, dice_weight: float = 1.0) -> torch.Tensor:
    """BCE with logits plus (1 - soft Dice), Dice per image then averaged."""
    bce = torch.nn.functional.binary_cross_entropy_with_logits(logits, target)
    prob = torch.sigmoid(logits).flatten(1)
    flat = target.flatten(1)
    dice = (2 * (prob * flat).sum(1) + 1.0) / (prob.sum(1) + flat.sum(1) + 1.0)
    return bce + dice_weight * (1.0 - dice.mean())


def dice(pred: np.ndarray, ref: np.ndarray) -> float:
    """Dice of two bool masks (1.0 when both are empty)."""
    total = int(pred.sum()) + int(ref.sum())
    return 1.0 if total == 0 else 2.0 * int(np.logical_and(pred, ref).sum()) / total


def summarise(scores: Sequence[float]) -> dict:
    arr = np.asarray(scores, dtype=np.float64)
    return {"n": int(arr.size), "dice_mean": float(arr.mean()), "dice_median": float(np.median(arr)),
            "dice_p05": float(np.percentile(arr, 5)), "dice_min": float(arr.min()),
            "share_dice_ge_0.85": float((arr >= 0.85).mean())}


@torch.no_grad()
def predict(model, images: Sequence[np.ndarray], batch_size: int = 8) -> np.ndarray:
    """Lung probabilities (N, size, size) for unnormalised model inputs."""
    model.eval()
    out = []
    for start in range(0, len(images), batch_size):
        x, _ = batch_tensors(images[start:start + batch_size], [np.zeros_like(i) for i in images[start:start + batch_size]])
        out.append(torch.sigmoid(model(x))[:, 0].numpy())
    return np.concatenate(out) if out else np.zeros((0, 1, 1), np.float32)


def overlay(display: np.ndarray, ref: np.ndarray, pred: np.ndarray, caption: str, side: int = 512) -> np.ndarray:
    """BGR overlay at least ``side`` px high: green outline = reference, red outline = prediction."""
    grey = np.clip(display.astype(np.float32) / (255.0 if display.dtype == np.uint8 else 1.0), 0, 1)
    scale = max(1.0, side / grey.shape[0])
    size = (int(round(grey.shape[1] * scale)), int(round(grey.shape[0] * scale)))
    grey = cv2.resize(grey, size, interpolation=cv2.INTER_LINEAR)
    canvas = cv2.cvtColor((grey * 255).astype(np.uint8), cv2.COLOR_GRAY2BGR)
    for mask, colour in ((ref, (0, 200, 0)), (pred, (0, 0, 255))):
        big = cv2.resize(mask.astype(np.uint8), size, interpolation=cv2.INTER_NEAREST)
        contours, _ = cv2.findContours(big, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
        cv2.drawContours(canvas, contours, -1, colour, 2)
    cv2.putText(canvas, caption, (8, 24), cv2.FONT_HERSHEY_SIMPLEX, 0.6, (0, 255, 255), 2, cv2.LINE_AA)
    return canvas


def evaluate_at_grid(model, data: Path, rows: list[dict], size: int, out: Path | None = None,
                     worst: int = 5) -> tuple[dict, list[dict]]:
    """Dice per film at its own pixel grid (as the engine returns masks); overlays of the ``worst`` under ``out``."""
    displays = [read_image(data / row["image"]).display() for row in rows]
    probs = predict(model, [resize_and_stretch(d, size) for d in displays])
    results = []
    for row, display, prob in zip(rows, displays, probs):
        ref = read_mask(data / row["mask"])
        pred = fields_from_probability(prob, display.shape).mask
        results.append({"id": row["id"], "image": row["image"], "patient_id": row["patient_id"],
                        "rows": display.shape[0], "cols": display.shape[1], "dice": dice(pred, ref)})
    summary = summarise([r["dice"] for r in results])
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
        order = sorted(range(len(results)), key=lambda i: results[i]["dice"])
        for rank, i in enumerate(order[:worst]):
            pred = fields_from_probability(probs[i], displays[i].shape).mask
            ref = read_mask(data / rows[i]["mask"])
            name = f"{rank + 1}_{results[i]['id']}_dice{results[i]['dice']:.3f}.png"
            cv2.imwrite(str(out / name), overlay(displays[i], ref, pred, f"{results[i]['id']} Dice {results[i]['dice']:.3f}"))
            results[i]["overlay"] = name
    return summary, results


# --------------------------------------------------------------------------- training

def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m training.segment", description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA,
                        help="the cxr3 folder (manifest.csv, lung_masks.csv, images/, lung_masks/)")
    parser.add_argument("--out", type=Path, required=True, help="output folder")
    parser.add_argument("--pretrained", default="training/work/pretrained/tf_efficientnet_lite0_imagenet.safetensors",
                        help="ImageNet Lite0 backbone from training.pretrained, or 'none' for a random encoder")
    parser.add_argument("--size", type=int, default=192, help="model input size in px")
    parser.add_argument("--decoder-channels", type=int, nargs=5, default=list(DECODER_CHANNELS), metavar="C",
                        help="U-Net decoder channels, deepest block first (fewer = faster on the CPU)")
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--lr", type=float, default=2e-3, help="peak AdamW learning rate (decoder; encoder x0.5)")
    parser.add_argument("--weight-decay", type=float, default=1e-4)
    parser.add_argument("--warmup-epochs", type=float, default=1.0)
    parser.add_argument("--val-share", type=float, default=0.15, help="share of films (by patient) for validation")
    parser.add_argument("--test-share", type=float, default=0.15, help="share of films (by patient) for the test")
    parser.add_argument("--framing", type=float, default=0.5, help="probability of a framing change (crop/zoom/shift)")
    parser.add_argument("--acquisition-shift", type=float, default=0.8,
                        help="probability of the classifier's processing chain (training.data.AcquisitionShift)")
    parser.add_argument("--flip", type=float, default=0.25, help="probability of a horizontal flip")
    parser.add_argument("--quarter-turn", type=float, default=0.1, help="probability of a 90 degree turn")
    parser.add_argument("--resume", type=Path, default=None, help="last.pt checkpoint to continue from")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    parser.add_argument("--time-steps", type=int, default=0,
                        help="only time this many training steps, print seconds per step and exit")
    parser.add_argument("--limit", type=int, default=None, help="use at most N films per split (tests)")
    args = parser.parse_args(argv)
    if args.epochs < 1 or args.batch_size < 1:
        parser.error("--epochs and --batch-size must be at least 1")
    if not 0 < args.val_share + args.test_share < 1:
        parser.error("--val-share + --test-share must lie between 0 and 1")
    return args


def lr_factor(step: int, warmup: int, total: int) -> float:
    if step < warmup:
        return (step + 1) / warmup
    return 0.5 * (1 + math.cos(math.pi * min(1.0, (step - warmup) / max(1, total - warmup))))


def run(args: argparse.Namespace) -> dict:
    torch.manual_seed(args.seed)
    if args.threads:
        torch.set_num_threads(args.threads)
    args.out.mkdir(parents=True, exist_ok=True)
    rows = split_rows(read_pairs(args.data), args.val_share, args.test_share, args.seed)
    write_split(rows, args.out / "split.csv")
    by_split = {s: [r for r in rows if r["split"] == s][: args.limit] for s in ("train", "val", "test")}
    log.info("films: %s (patients: %s)", {s: len(v) for s, v in by_split.items()},
             {s: len({r["patient_id"] for r in v}) for s, v in by_split.items()})
    started = time.time()
    train = [load_pair(args.data, r, args.size) for r in by_split["train"]]
    val = [load_pair(args.data, r, args.size) for r in by_split["val"]]
    log.info("decoded %d + %d films in %.1f s", len(train), len(val), time.time() - started)

    model = build_unet(args.decoder_channels)
    if args.pretrained and args.pretrained.lower() != "none":
        load_encoder(model, Path(args.pretrained))
    encoder_params = list(model.encoder.parameters())
    encoder_ids = {id(p) for p in encoder_params}
    other = [p for p in model.parameters() if id(p) not in encoder_ids]
    optimizer = torch.optim.AdamW([{"params": encoder_params, "lr_scale": 0.5}, {"params": other, "lr_scale": 1.0}],
                                  lr=args.lr, weight_decay=args.weight_decay)
    steps_per_epoch = max(1, len(train) // args.batch_size)
    total_steps = steps_per_epoch * args.epochs
    warmup = int(round(args.warmup_epochs * steps_per_epoch))
    augment = PairedAugment(framing_p=args.framing, flip_p=args.flip, quarter_turn_p=args.quarter_turn,
                            acquisition_p=args.acquisition_shift)

    start_epoch, best, step = 0, -1.0, 0
    if args.resume:
        state = torch.load(args.resume, map_location="cpu", weights_only=True)
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        start_epoch, best = int(state["epoch"]) + 1, float(state["best"])
        step = start_epoch * steps_per_epoch
        log.info("resumed from %s after epoch %d (best val Dice %.4f)", args.resume, start_epoch - 1, best)

    def train_step(batch_index: Sequence[int], rng: np.random.Generator) -> float:
        nonlocal step
        pairs = [augment(train[i][0], train[i][1], rng) for i in batch_index]
        x, y = batch_tensors([p[0] for p in pairs], [p[1] for p in pairs])
        for group in optimizer.param_groups:
            group["lr"] = args.lr * group["lr_scale"] * lr_factor(step, warmup, total_steps)
        model.train()
        loss = dice_bce_loss(model(x), y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        step += 1
        return float(loss.item())

    if args.time_steps:
        rng = np.random.default_rng(args.seed)
        train_step(rng.choice(len(train), args.batch_size), rng)  # warm-up, not timed
        began = time.time()
        for _ in range(args.time_steps):
            train_step(rng.choice(len(train), args.batch_size), rng)
        per_step = (time.time() - began) / args.time_steps
        began = time.time()
        predict(model, [v[0] for v in val])
        val_s = time.time() - began
        log.info("%.2f s per step of %d; validation %.1f s; one epoch (%d steps) about %.1f min",
                 per_step, args.batch_size, val_s, steps_per_epoch, (steps_per_epoch * per_step + val_s) / 60)
        return {"seconds_per_step": per_step, "validation_s": val_s, "steps_per_epoch": steps_per_epoch}

    for epoch in range(start_epoch, args.epochs):
        began = time.time()
        rng = np.random.default_rng([args.seed, epoch])
        order = rng.permutation(len(train))
        losses = [train_step(order[i * args.batch_size:(i + 1) * args.batch_size], rng)
                  for i in range(steps_per_epoch)]
        probs = predict(model, [v[0] for v in val])
        scores = [dice(p >= 0.5, m >= 0.5) for p, (_, m) in zip(probs, val)]
        val_dice = float(np.mean(scores))
        improved = val_dice > best
        if improved:
            best = val_dice
            save_weights(model, args.out / "best.safetensors")
        record = {"epoch": epoch, "train_loss": float(np.mean(losses)), "val_dice": val_dice,
                  "val_dice_p05": float(np.percentile(scores, 5)), "best": best,
                  "lr": optimizer.param_groups[1]["lr"], "seconds": round(time.time() - began, 1)}
        with open(args.out / "metrics.jsonl", "a", encoding="utf-8") as handle:
            handle.write(json.dumps(record) + "\n")
        log.info("epoch %d: loss %.4f, val Dice %.4f (p05 %.4f)%s, %.0f s", epoch, record["train_loss"], val_dice,
                 record["val_dice_p05"], " *" if improved else "", record["seconds"])
        torch.save({"model": model.state_dict(), "optimizer": optimizer.state_dict(), "epoch": epoch, "best": best},
                   args.out / "last.pt.tmp")
        os.replace(args.out / "last.pt.tmp", args.out / "last.pt")

    from safetensors.torch import load_file

    model.load_state_dict(load_file(str(args.out / "best.safetensors")))
    summary, results = evaluate_at_grid(model, args.data, by_split["test"], args.size, args.out / "worst")
    val_summary, _ = evaluate_at_grid(model, args.data, by_split["val"], args.size)
    with open(args.out / "test_dice.csv", "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=["id", "image", "patient_id", "rows", "cols", "dice", "overlay"])
        writer.writeheader()
        writer.writerows(sorted(results, key=lambda r: r["dice"]))
    metrics = {"test": summary, "validation": val_summary,
               "worst": [{k: r[k] for k in ("id", "dice")} for r in sorted(results, key=lambda r: r["dice"])[:5]]}
    (args.out / "test_metrics.json").write_text(json.dumps(metrics, indent=2) + "\n", encoding="utf-8")
    log.info("test at each film's grid: %s", summary)
    log.info("validation at each film's grid: %s", val_summary)
    return metrics


def write_run_json(args: argparse.Namespace, argv: Sequence[str]) -> None:
    import segmentation_models_pytorch as smp

    record = {"command": "python -m training.segment " + shlex.join(argv),
              "started": datetime.datetime.now().isoformat(timespec="seconds"),
              "encoder": ENCODER, "decoder_channels": list(args.decoder_channels), "in_chans": IN_CHANS,
              "mean": list(MEAN), "std": list(STD), "input_size": args.size,
              "preprocessing_version": PREPROCESSING_VERSION, "data_licence": DATA_LICENCE,
              "smp_version": smp.__version__, "torch_version": torch.__version__,
              "args": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()}}
    (args.out / "run.json").write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    with script_logging(args.out / "train.log", file_mode="a" if args.resume else "w"):
        if not args.time_steps and not args.resume:
            write_run_json(args, argv)
        run(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
