"""Train a registry architecture on a split manifest: transfer learning or from scratch, CPU or GPU, DDP.

AdamW; a head-only phase first when ``--freeze-backbone-epochs`` is set (constant learning rate),
then the whole network with a per-step linear warm-up and a cosine decay to zero; label-smoothed
cross-entropy, optionally distilled from a bundled model (``--teacher``, ``training.distill``);
class-balanced sampling from the manifest's ``sample_weight``; CUDA AMP on GPU.
Every epoch is evaluated on the validation split (accuracy, macro-F1, per-class F1, per-source
accuracy); training stops early when macro-F1 has not improved for ``--patience`` epochs.

Long CPU runs: ``--size-schedule 128:10,160:12,224:4`` trains the first epochs at smaller inputs
(``training.stages``; each size decoded once into ``--cache-dir``) under one learning-rate schedule
for the whole plan; ``--checkpoint-every N`` also writes ``last.pt`` every N optimiser steps, and
``--resume`` continues mid-epoch from the same sampler position and RNG state (on the CPU with
no DataLoader workers the resumed run takes the very steps the uninterrupted one would);
``--stop-at-step N`` ends a stage after step N; ``--restart-from RUN`` starts again from a run's
best weights when its ``last.pt`` is lost.

Fine-tuning: ``--init-from RUN`` starts a new run (fresh optimiser and schedule) from another run's
best weights. ``--consistency-weight W`` trains on pairs: each image without and with a framing shift
(``training.data.FramingShift`` at p = 1), cross-entropy on both plus W times the Jensen-Shannon
divergence between their predicted distributions (the consistency loss of AugMix, Hendrycks et al.,
ICLR 2020), so that a film's call does not depend on how it was framed.

Outputs in ``--out`` (rank 0 only): ``train.log``, ``metrics.jsonl`` (one line per epoch),
``last.pt`` (checkpoint: tensors and plain values only, loaded with ``weights_only=True``),
``best.safetensors`` + ``best.json`` (model card draft) at the best validation macro-F1, ``run.json``.

Run:   ``python -m training.train --manifest CURATED/split_manifest.csv --arch efficientnet_b0 --out runs/b0``
DDP:   ``torchrun --standalone --nproc_per_node 2 -m training.train ...``
"""
from __future__ import annotations

import argparse
import contextlib
import datetime
import hashlib
import json
import logging
import math
import os
import platform
import shlex
import shutil
import sys
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
import torch.distributed as torch_dist
from torch.utils.data import DataLoader, Subset

from cxr_engine.models.model_card import CLASSES, ModelCard
from cxr_engine.pixels.preprocessing import PREPROCESSING_VERSION, PREPROCESSING_VERSIONS
from cxr_engine.models.registry import build_model, get_architecture, list_architectures
from cxr_engine.models.weights import load_model, save_weights, sha256_file

from . import metrics as M
from .data import (AcquisitionShift, Augment, BorderSwap, FramingShift, ManifestDataset, limit_rows, read_manifest,
                   train_sampler)
from .consistency import FramingConsistencyLoss
from .distill import card_path_of, make_criterion
from .pretrained import load_pretrained_backbone
from .script_logging import script_logging
from .seeding import rng_state, seed_everything, set_rng_state
from .stages import SizeSchedule

log = logging.getLogger("training.train")

IN_CHANS = 3


@dataclass(frozen=True)
class Dist:
    """Where this process runs: its DDP rank, the world size and its device."""

    rank: int = 0
    world_size: int = 1
    device: torch.device = torch.device("cpu")

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


# --------------------------------------------------------------------------- arguments and setup

def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m training.train", description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--manifest", type=Path, required=True, help="split_manifest.csv from training.curate")
    parser.add_argument("--arch", required=True, choices=list_architectures(), help="registry architecture")
    parser.add_argument("--pretrained", default="none",
                        help="backbone safetensors from training.pretrained, or 'none' to train from scratch")
    parser.add_argument("--size", type=int, default=None, help="input size in px (default: the architecture's)")
    parser.add_argument("--size-schedule", default=None,
                        help="progressive resizing, SIZE:EPOCHS stages in order, e.g. 128:10,160:12,224:4 "
                             "(training.stages); the epochs add up to --epochs and the last size is the model's "
                             "input size")
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--batch-size", type=int, default=32, help="per process")
    parser.add_argument("--lr", type=float, default=1e-3, help="peak AdamW learning rate")
    parser.add_argument("--weight-decay", type=float, default=0.05)
    parser.add_argument("--warmup-epochs", type=float, default=1.0,
                        help="linear warm-up after the head-only phase (fractions allowed)")
    parser.add_argument("--label-smoothing", type=float, default=0.1)
    parser.add_argument("--patience", type=int, default=3,
                        help="stop after this many full-network epochs without a better validation macro-F1")
    parser.add_argument("--freeze-backbone-epochs", type=int, default=0, help="train only the classifier first")
    parser.add_argument("--epoch-samples", type=int, default=None,
                        help="images drawn per epoch by the class-balanced sampler (default: the training split size)")
    parser.add_argument("--border-swap", type=float, default=0.0,
                        help="probability of replacing everything around a jittered central rectangle "
                             "with another training image's (training.data.BorderSwap; 0 = off)")
    parser.add_argument("--acquisition-shift", type=float, default=0.0,
                        help="probability of a random resolution/blur/sharpen/noise/JPEG chain "
                             "(training.data.AcquisitionShift; 0 = off)")
    parser.add_argument("--framing-shift", type=float, default=0.0,
                        help="probability of a random crop / zoom-out onto a border / shift and rotation, "
                             "with burned-in markers (training.data.FramingShift; 0 = off)")
    parser.add_argument("--teacher", type=Path, default=None,
                        help="model card JSON or training run folder (its best.json) of a model to distil from "
                             "(e.g. resources/models/efficientnet-lite0.json or training/work/runs/lite0_224_sqrt; "
                             "training.distill)")
    parser.add_argument("--distill-weight", type=float, default=0.7,
                        help="share of the loss from the teacher's soft targets (with --teacher)")
    parser.add_argument("--distill-temperature", type=float, default=2.0, help="softmax temperature for distillation")
    parser.add_argument("--feature-distill-weight", type=float, default=0.0,
                        help="with --teacher: weight of a similarity-preserving loss between the student's and the "
                             "teacher's pooled features of each batch (Tung & Mori 2019; training.distill; 0 = off; "
                             "the loss is small, so weights of several units: 8 was tried)")
    parser.add_argument("--out", type=Path, required=True, help="output folder")
    parser.add_argument("--resume", type=Path, default=None, help="last.pt checkpoint to continue from")
    parser.add_argument("--checkpoint-every", type=int, default=0,
                        help="also write last.pt every N optimiser steps, so --resume continues mid-epoch (0: only "
                             "at the end of each epoch)")
    parser.add_argument("--stop-at-step", type=int, default=None,
                        help="end this stage after optimiser step N (counted over the whole run), checkpoint "
                             "written; continue later with --resume")
    parser.add_argument("--restart-from", type=Path, default=None,
                        help="when last.pt is lost: start from this run folder's best weights (or a card), at the "
                             "epoch after the one they were saved at, with a fresh optimiser")
    parser.add_argument("--init-from", type=Path, default=None,
                        help="fine-tune: start from this run folder's best weights (or a card; classifier "
                             "included) with a fresh optimiser and learning-rate schedule")
    parser.add_argument("--consistency-weight", type=float, default=0.0,
                        help="train on (film, framing-shifted film) pairs with this weight on the Jensen-Shannon "
                             "divergence between their predictions (0 = off; AugMix uses 12)")
    parser.add_argument("--consistency-anchor", action="store_true",
                        help="with --teacher and --consistency-weight: both views are distilled towards the "
                             "teacher's output on the unframed view (training.consistency)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    parser.add_argument("--workers", type=int, default=None,
                        help="DataLoader workers (default: 0 on CPU, up to 8 on CUDA)")
    parser.add_argument("--limit", type=int, default=None, help="use at most N images per split (tests, timing)")
    parser.add_argument("--preprocessing", choices=PREPROCESSING_VERSIONS, default=PREPROCESSING_VERSION,
                        help="the model input's preprocessing version (cxr_engine.pixels.preprocessing): cxr-pre-1 the "
                             "whole image, cxr-pre-2 cropped to the lungs' bounding box plus 10 %% (default: "
                             "%(default)s); recorded in run.json and the card"),
    parser.add_argument("--val-limit", type=int, default=None,
                        help="validate each epoch on at most N images, balanced by class (saves time on CPU)")
    parser.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
    parser.add_argument("--precompute", action=argparse.BooleanOptionalAction, default=True,
                        help="decode every image into the in-memory cache before the first epoch")
    parser.add_argument("--cache-dir", type=Path, default=None,
                        help="keep the decoded image cache as .npy files here, shared between runs")
    parser.add_argument("--time-budget-min", type=float, default=None,
                        help="start no epoch that would end after this many minutes of training, and "
                             "(single process only) cut short an epoch that runs past them")
    args = parser.parse_args(argv)
    if args.epochs < 1 or args.batch_size < 1:
        parser.error("--epochs and --batch-size must be at least 1")
    for flag in ("border_swap", "acquisition_shift", "framing_shift", "distill_weight"):
        if not 0.0 <= getattr(args, flag) <= 1.0:
            parser.error(f"--{flag.replace('_', '-')} is a probability: give a value from 0 to 1")
    if args.distill_temperature <= 0:
        parser.error("--distill-temperature must be positive")
    if args.freeze_backbone_epochs >= args.epochs:
        parser.error("--freeze-backbone-epochs must be smaller than --epochs")
    if args.checkpoint_every < 0:
        parser.error("--checkpoint-every must be 0 (off) or a number of steps")
    if args.resume and args.restart_from:
        parser.error("give --resume (a checkpoint) or --restart-from (best weights), not both")
    if args.init_from and args.restart_from:
        parser.error("give --init-from (a new run from weights) or --restart-from (the same run), not both")
    # A new run into a folder that holds one would add its epochs to that run's metrics and overwrite its best
    # weights (a restart command pasted without its --restart-from started the run again from scratch there).
    held = [name for name in ("last.pt", "metrics.jsonl") if (args.out / name).exists()]
    if held and not (args.resume or args.restart_from):
        parser.error(f"--out {args.out} holds a run already ({', '.join(held)}): --resume its last.pt, "
                     "--restart-from its kept card, or choose another --out")
    if args.consistency_weight < 0:
        parser.error("--consistency-weight must be 0 (off) or positive")
    if args.consistency_weight > 0 and args.framing_shift <= 0:
        parser.error("--consistency-weight needs --framing-shift (its second view is framing-shifted)")
    if args.feature_distill_weight < 0:
        parser.error("--feature-distill-weight must be 0 (off) or positive")
    if args.feature_distill_weight > 0 and not args.teacher:
        parser.error("--feature-distill-weight needs --teacher")
    if args.feature_distill_weight > 0 and args.consistency_weight > 0:
        parser.error("--feature-distill-weight and --consistency-weight cannot be combined (the two views' "
                     "features are not distilled apart)")
    if args.consistency_anchor and not (args.teacher and args.consistency_weight > 0):
        parser.error("--consistency-anchor needs --teacher and --consistency-weight")
    if args.size_schedule:
        try:
            schedule = SizeSchedule.parse(args.size_schedule)
        except ValueError as exc:
            parser.error(f"--size-schedule: {exc}")
        if schedule.epochs != args.epochs:
            parser.error(f"--size-schedule {schedule} has {schedule.epochs} epochs, --epochs {args.epochs}")
        if args.size is not None and args.size != schedule.final_size:
            parser.error(f"--size {args.size} differs from the schedule's last size {schedule.final_size}")
        args.size_schedule = str(schedule)
    return args


def size_schedule(args: argparse.Namespace) -> SizeSchedule:
    """The run's input size per epoch: ``--size-schedule``, or ``--size`` throughout."""
    if args.size_schedule:
        return SizeSchedule.parse(args.size_schedule)
    return SizeSchedule.constant(args.size, args.epochs)


def setup_distributed(device_arg: str) -> Dist:
    """Join the process group when launched by torchrun (nccl on CUDA, gloo on CPU)."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    use_cuda = device_arg == "cuda" or (device_arg == "auto" and torch.cuda.is_available())
    if use_cuda and not torch.cuda.is_available():
        raise RuntimeError("--device cuda given but CUDA is not available")
    if world_size == 1:
        return Dist(device=torch.device("cuda" if use_cuda else "cpu"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    if use_cuda:
        torch.cuda.set_device(local_rank)
    torch_dist.init_process_group(backend="nccl" if use_cuda else "gloo")
    device = torch.device("cuda", local_rank) if use_cuda else torch.device("cpu")
    return Dist(torch_dist.get_rank(), torch_dist.get_world_size(), device)


# --------------------------------------------------------------------------- data

def cache_file(cache_dir: Path, split: str, size: int, paths: Sequence[str], version: str = PREPROCESSING_VERSION
               ) -> Path:
    """The shared decode cache of one split: its size, preprocessing version and images are in the name."""
    digest = hashlib.sha256("\n".join(paths).encode()).hexdigest()[:16]
    return cache_dir / f"{split}_{size}px_{version}_{digest}.npy"


def fill_cache(dataset: ManifestDataset, split: str, args: argparse.Namespace, dist: Dist) -> None:
    """Decode ``dataset``'s images up front; with ``--cache-dir`` rank 0 decodes and shares via disk."""
    if not args.precompute:
        return
    threads = args.threads or os.cpu_count() or 1
    if args.cache_dir is None:
        dataset.cache.precompute(threads, progress=dist.is_main, desc=f"decode {split}")
        return
    path = cache_file(args.cache_dir, split, dataset.cache.size, dataset.cache.paths, dataset.cache.version)
    if dist.is_main and not dataset.cache.load(path):
        dataset.cache.precompute(threads, progress=True, desc=f"decode {split}")
        args.cache_dir.mkdir(parents=True, exist_ok=True)
        dataset.cache.save(path)
        log.info("cached %s images in %s", split, path)
    if dist.enabled:
        torch_dist.barrier()
        if not dist.is_main and not dataset.cache.load(path):
            dataset.cache.precompute(threads, progress=False)


def split_rows(args: argparse.Namespace) -> dict[str, list[dict]]:
    """The train and validation rows this run uses (``--limit``, ``--val-limit`` applied)."""
    rows = {split: limit_rows(read_manifest(args.split_manifest, split), args.limit, args.seed)
            for split in ("train", "val")}
    rows["val"] = limit_rows(rows["val"], args.val_limit, args.seed)
    for split, split_rows in rows.items():
        if not split_rows:
            raise ValueError(f"{args.manifest}: no rows in the {split!r} split")
    return rows


def build_datasets(args: argparse.Namespace, rows: dict[str, list[dict]], size: int, dist: Dist
                   ) -> tuple[ManifestDataset, ManifestDataset]:
    arch = get_architecture(args.arch)
    train = ManifestDataset(rows["train"], size, arch.mean, arch.std, IN_CHANS, Augment(),
                            BorderSwap(p=args.border_swap), AcquisitionShift(p=args.acquisition_shift),
                            FramingShift(p=args.framing_shift), preprocessing=args.preprocessing,
                            framing_pairs=args.consistency_weight > 0)
    val = ManifestDataset(rows["val"], size, arch.mean, arch.std, IN_CHANS, augment=None,
                          preprocessing=args.preprocessing)
    fill_cache(train, "train", args, dist)
    fill_cache(val, "val", args, dist)
    return train, val


def loader_kwargs(args: argparse.Namespace, dist: Dist) -> dict:
    workers = args.workers if args.workers is not None else (
        min(8, os.cpu_count() or 1) if dist.device.type == "cuda" else 0)
    return {"num_workers": workers, "pin_memory": dist.device.type == "cuda", "persistent_workers": workers > 0}


def build_train_loader(dataset: ManifestDataset, args: argparse.Namespace, dist: Dist) -> DataLoader:
    sampler = train_sampler(dataset, args.epoch_samples, dist.rank, dist.world_size, args.seed)
    # Dropping a ragged last batch avoids a 1-image BatchNorm batch, unless that would leave none.
    drop_last = len(sampler) >= args.batch_size
    return DataLoader(dataset, batch_size=args.batch_size, sampler=sampler, drop_last=drop_last,
                      **loader_kwargs(args, dist))


def build_val_loader(dataset: ManifestDataset, args: argparse.Namespace, dist: Dist) -> DataLoader:
    """This rank's share of the validation split (every world_size-th image, no padding)."""
    shard = Subset(dataset, list(range(dist.rank, len(dataset), dist.world_size)))
    return DataLoader(shard, batch_size=args.batch_size, shuffle=False, **loader_kwargs(args, dist))


def steps_per_epoch(train_images: int, args: argparse.Namespace, dist: Dist) -> int:
    """Optimiser steps in one epoch: what ``len`` of :func:`build_train_loader`'s loader gives, known
    before any image is decoded (the learning-rate schedule needs it first)."""
    per_rank = math.ceil((args.epoch_samples or train_images) / dist.world_size)
    return per_rank // args.batch_size if per_rank >= args.batch_size else 1


@dataclass
class SizedData:
    """The datasets and loaders of one input size; a run holds one at a time."""

    size: int
    train_set: ManifestDataset
    val_set: ManifestDataset
    train_loader: DataLoader
    val_loader: DataLoader

    @classmethod
    def build(cls, args: argparse.Namespace, rows: dict[str, list[dict]], size: int, dist: Dist) -> "SizedData":
        train_set, val_set = build_datasets(args, rows, size, dist)
        return cls(size, train_set, val_set, build_train_loader(train_set, args, dist),
                   build_val_loader(val_set, args, dist))


# --------------------------------------------------------------------------- model and optimisation

def create_model(args: argparse.Namespace, dist: Dist) -> torch.nn.Module:
    model = build_model(args.arch, num_classes=len(CLASSES), in_chans=IN_CHANS)
    if args.pretrained and args.pretrained.lower() != "none":
        left = load_pretrained_backbone(model, args.pretrained)
        # timm's EfficientNet head init (uniform ±1/sqrt(classes)) gives logits of several units on
        # pretrained features, which a head-only phase at a fine-tuning lr cannot undo: start from zero.
        head = model.get_classifier()
        torch.nn.init.zeros_(head.weight)
        torch.nn.init.zeros_(head.bias)
        log.info("loaded backbone %s; %d tensors not in it (classifier zero-initialised)", args.pretrained, len(left))
    # channels_last pays on CUDA and on this CPU too (lite0 trains ~2x faster with oneDNN).
    return model.to(dist.device, memory_format=torch.channels_last)


def head_parameter_ids(model: torch.nn.Module) -> set[int]:
    return {id(p) for p in model.get_classifier().parameters()}


def set_backbone_trainable(model: torch.nn.Module, trainable: bool) -> None:
    """Freeze or unfreeze everything but the classifier (frozen layers need no backward pass)."""
    head = head_parameter_ids(model)
    for parameter in model.parameters():
        if id(parameter) not in head:
            parameter.requires_grad_(trainable)


def make_optimizer(model: torch.nn.Module, lr: float, weight_decay: float) -> torch.optim.AdamW:
    """AdamW; biases and normalisation parameters (1-D tensors) get no weight decay."""
    decay = [p for p in model.parameters() if p.ndim > 1]
    no_decay = [p for p in model.parameters() if p.ndim <= 1]
    groups = [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    return torch.optim.AdamW(groups, lr=lr)


def lr_factor(step: int, head_steps: int, warmup_steps: int, total_steps: int) -> float:
    """Multiplier on the peak lr: 1 while head-only, then linear warm-up, then cosine to 0."""
    if step < head_steps:
        return 1.0
    step -= head_steps
    if step < warmup_steps:
        return (step + 1) / warmup_steps
    decay_steps = max(1, total_steps - head_steps - warmup_steps)
    progress = min(1.0, (step - warmup_steps) / decay_steps)
    return 0.5 * (1.0 + math.cos(math.pi * progress))


def make_scheduler(optimizer, args: argparse.Namespace, steps_per_epoch: int):
    head_steps = args.freeze_backbone_epochs * steps_per_epoch
    warmup_steps = int(round(args.warmup_epochs * steps_per_epoch))
    total_steps = args.epochs * steps_per_epoch
    return torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: lr_factor(step, head_steps, warmup_steps, total_steps))


def autocast(dist: Dist):
    if dist.device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.float16)
    return contextlib.nullcontext()


# --------------------------------------------------------------------------- metrics

def classification_metrics(labels: np.ndarray, preds: np.ndarray, sources: Sequence[str]) -> dict:
    """Accuracy, macro-F1, per-class precision/recall/F1, per-source accuracy and the confusion matrix of
    one epoch's validation (``training.metrics``). The epoch log records an undefined value (a class
    never predicted, or without images) as 0.0, and the macro-F1 of no images as 0.0."""
    confusion = M.confusion_matrix(labels, preds, len(CLASSES))
    precision, recall, f1 = (np.nan_to_num(v, nan=0.0) for v in M.precision_recall_f1(confusion))
    per_source = {}
    for source in sorted(set(sources)):
        mask = np.array([s == source for s in sources])
        per_source[source] = M.accuracy(labels[mask], preds[mask])
    macro_f1 = M.macro_f1(confusion)
    return {
        "accuracy": M.accuracy(labels, preds),
        "macro_f1": 0.0 if macro_f1 is None else macro_f1,
        "f1": dict(zip(CLASSES, map(float, f1))),
        "precision": dict(zip(CLASSES, map(float, precision))),
        "recall": dict(zip(CLASSES, map(float, recall))),
        "per_source_accuracy": per_source,
        "confusion": confusion.tolist(),
        "n": int(len(labels)),
    }


# --------------------------------------------------------------------------- loops

def progress(iterable, dist: Dist, **kwargs):
    from tqdm import tqdm

    return tqdm(iterable, disable=not dist.is_main, dynamic_ncols=True,
                mininterval=1.0 if sys.stderr.isatty() else 30.0, **kwargs)


@dataclass
class EpochPosition:
    """Where an epoch stands: optimiser steps done in it and the summed loss of the images seen so far
    (restored from a mid-epoch checkpoint, so the epoch's mean loss covers the whole epoch)."""

    step: int = 0
    loss_sum: float = 0.0
    seen: int = 0


def train_one_epoch(model, loader, optimizer, scheduler, scaler, criterion, dist: Dist, epoch: int,
                    deadline: float | None = None, position: EpochPosition | None = None,
                    on_start=None, on_step=None) -> dict:
    """One pass over ``loader`` (what is left of it after ``position.step``); stops early once
    ``time.perf_counter()`` passes ``deadline``, or when ``on_step(position, epoch_steps)``, called
    after every optimiser step, returns True (``"stopped"`` in the record: the epoch is unfinished).
    ``on_start()`` runs once the loader's iterator exists, before the first batch is drawn."""
    model.train()
    position = position or EpochPosition()
    epoch_steps = position.step + len(loader)
    start, truncated, stopped, seen_here = time.perf_counter(), False, False, 0
    batches = iter(loader)
    if on_start is not None:
        on_start()
    bar = progress(batches, dist, desc=f"train {epoch}", total=len(loader))
    for images, labels in bar:
        if deadline is not None and time.perf_counter() > deadline:
            log.warning("time budget spent: epoch %d cut short after %d images", epoch, position.seen)
            truncated = True
            break
        if images.ndim == 5:  # (N, views, C, H, W) pairs for training.consistency
            images = images.flatten(0, 1)
        images = images.to(dist.device, non_blocking=True, memory_format=torch.channels_last)
        labels = labels.to(dist.device, non_blocking=True)
        with autocast(dist):
            loss = criterion(model(images), labels, images)
        optimizer.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        scaler.step(optimizer)
        scaler.update()
        scheduler.step()
        position.loss_sum += float(loss.detach()) * len(labels)
        position.seen += len(labels)
        position.step += 1
        seen_here += len(labels)
        bar.set_postfix(loss=f"{position.loss_sum / position.seen:.4f}", lr=f"{scheduler.get_last_lr()[0]:.2e}",
                        refresh=False)
        if on_step is not None and on_step(position, epoch_steps):
            stopped = True
            break
    seconds = time.perf_counter() - start
    return {"train_loss": position.loss_sum / max(1, position.seen), "train_images": position.seen * dist.world_size,
            "truncated": truncated, "stopped": stopped, "train_seconds": seconds,
            "train_img_per_s": seen_here * dist.world_size / max(seconds, 1e-9)}


@torch.no_grad()
def predict(model, loader, dist: Dist) -> tuple[list[int], list[int], list[float]]:
    """(dataset indices, predicted classes, per-image losses) for this rank's validation share."""
    model.eval()
    indices, preds, losses = [], [], []
    subset_indices = loader.dataset.indices
    offset = 0
    for images, labels in progress(loader, dist, desc="val", leave=False):
        if images.ndim == 5:  # (N, views, C, H, W) pairs for training.consistency
            images = images.flatten(0, 1)
        images = images.to(dist.device, non_blocking=True, memory_format=torch.channels_last)
        labels = labels.to(dist.device)
        with autocast(dist):
            logits = model(images).float()
        losses += torch.nn.functional.cross_entropy(logits, labels, reduction="none").tolist()
        preds += logits.argmax(1).tolist()
        indices += subset_indices[offset:offset + len(labels)]
        offset += len(labels)
    return indices, preds, losses


def evaluate(model, loader, dataset: ManifestDataset, dist: Dist) -> dict:
    """Validation metrics over the whole split, gathered from every rank."""
    start = time.perf_counter()
    shard = predict(model, loader, dist)
    shards = [shard]
    if dist.enabled:
        shards = [None] * dist.world_size
        torch_dist.all_gather_object(shards, shard)
    indices = [i for s in shards for i in s[0]]
    preds = np.array([p for s in shards for p in s[1]], dtype=np.int64)
    losses = [x for s in shards for x in s[2]]
    labels = np.array([dataset.labels[i] for i in indices], dtype=np.int64)
    sources = [dataset.rows[i].get("source", "") for i in indices]
    metrics = classification_metrics(labels, preds, sources)
    metrics["val_loss"] = float(np.mean(losses)) if losses else 0.0
    metrics["val_seconds"] = time.perf_counter() - start
    return metrics


# --------------------------------------------------------------------------- checkpoints and records

def plain_args(args: argparse.Namespace) -> dict:
    return {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()}


def save_checkpoint(path: Path, model, optimizer, scheduler, scaler, state: dict, args) -> None:
    """``last.pt``: only tensors and plain Python values, so ``weights_only=True`` can load it."""
    checkpoint = {
        "model": model.state_dict(),
        "optimizer": optimizer.state_dict(),
        "scheduler": scheduler.state_dict(),
        "scaler": scaler.state_dict(),
        "rng": rng_state(),
        "args": plain_args(args),
        **state,
    }
    tmp = path.with_suffix(".pt.tmp")
    torch.save(checkpoint, tmp)
    os.replace(tmp, path)


MID_EPOCH_KEYS = ("batch_size", "epoch_samples", "world_size")
SCHEDULE_KEYS = ("epochs", "size_schedule", "lr", "warmup_epochs", "freeze_backbone_epochs")


def load_checkpoint(path: Path, model, optimizer, scheduler, scaler, args, world_size: int = 1
                    ) -> tuple[dict, dict | None]:
    """Restore everything saved by :func:`save_checkpoint`; returns the loop state and, for a checkpoint
    written mid-epoch, the RNG state to set once that epoch's loader iterator exists (creating it
    draws a seed; at an epoch's end the RNG state is set here). ``ValueError`` when the checkpoint
    belongs to another model, input or split, or, mid-epoch, to another batch size, epoch length or
    number of processes (the sampler position would not be the same)."""
    checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    saved = checkpoint["args"]
    for key in ("arch", "size", "manifest_sha256"):
        if saved.get(key) != getattr(args, key):
            raise ValueError(f"{path}: checkpoint has {key}={saved.get(key)!r}, this run {getattr(args, key)!r}")
    # A checkpoint from before --preprocessing existed was trained on cxr-pre-1.
    if saved.get("preprocessing", PREPROCESSING_VERSION) != args.preprocessing:
        raise ValueError(f"{path}: checkpoint has preprocessing {saved.get('preprocessing', PREPROCESSING_VERSION)!r}, "
                         f"this run {args.preprocessing!r}")
    state = {k: checkpoint[k] for k in ("epoch", "best_score", "best_epoch", "bad_epochs")}
    position = EpochPosition(int(checkpoint.get("step_in_epoch", 0)), float(checkpoint.get("epoch_loss_sum", 0.0)),
                             int(checkpoint.get("epoch_seen", 0)))
    if position.step:
        now = {**vars(args), "world_size": world_size}
        for key in MID_EPOCH_KEYS:
            if saved.get(key, checkpoint.get(key)) != now[key]:
                raise ValueError(f"{path}: written mid-epoch with {key}={saved.get(key, checkpoint.get(key))!r}, "
                                 f"this run {now[key]!r}: resume with the same value")
    changed = [k for k in SCHEDULE_KEYS if saved.get(k) != getattr(args, k)]
    if changed:
        log.warning("%s: %s changed since the checkpoint; the learning-rate schedule is recomputed for this run's "
                    "values from step %d on", path, ", ".join(changed), checkpoint.get("global_step", 0))
    model.load_state_dict(checkpoint["model"])
    optimizer.load_state_dict(checkpoint["optimizer"])
    scheduler.load_state_dict(checkpoint["scheduler"])
    scaler.load_state_dict(checkpoint["scaler"])
    state["position"] = position
    if position.step:
        return state, checkpoint["rng"]
    set_rng_state(checkpoint["rng"])
    return state, None


def restart_from_best(path: Path, model, scheduler, steps: int, args) -> dict:
    """Load the best weights of a run folder (or a card, such as the ``latest.json`` of ``training.keep_run``;
    sha256 checked) into ``model`` and move the learning-rate schedule to the end of the epoch they were saved
    at; returns the loop state (a kept restart point's best so far stays the best).
    The optimiser starts afresh: its moments were in the lost checkpoint."""
    card = ModelCard.load(card_path_of(path))
    if card.architecture != args.arch or card.preprocessing_version != args.preprocessing:
        raise ValueError(f"{path}: weights of {card.architecture} ({card.preprocessing_version}), this run trains "
                         f"{args.arch} ({args.preprocessing})")
    model.load_state_dict(load_model(card).state_dict())
    metrics = card.validation_metrics or {}
    if "epoch" not in metrics or "macro_f1" not in metrics:
        raise ValueError(f"{path}: its card has no validation epoch and macro-F1 (not written by training.train)")
    epoch = int(metrics["epoch"])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # "scheduler.step() before optimizer.step()": on purpose
        scheduler.last_epoch = epoch * steps - 1
        scheduler.step()
    # A restart point kept by training.keep_run is the last epoch, not always the best: the run's best so far
    # stays the score to beat (else a worse epoch would overwrite best.safetensors).
    best_score = float(metrics.get("best_macro_f1", metrics["macro_f1"]))
    best_epoch = int(metrics.get("best_epoch", epoch))
    log.info("restarting from %s: epoch %d's weights (validation macro-F1 %.4f; best so far %.4f at epoch %d), "
             "learning rate %.2e", path, epoch, metrics["macro_f1"], best_score, best_epoch,
             scheduler.get_last_lr()[0])
    return {"epoch": epoch, "best_score": best_score, "best_epoch": best_epoch, "bad_epochs": epoch - best_epoch,
            "position": EpochPosition()}


def init_from_best(path: Path, model, args) -> None:
    """Load the best weights of a run folder (or a card; sha256 checked), classifier included, into
    ``model``: the start of a fine-tuning run, whose optimiser and schedule start afresh."""
    card = ModelCard.load(card_path_of(path))
    if card.architecture != args.arch or card.preprocessing_version != args.preprocessing:
        raise ValueError(f"{path}: weights of {card.architecture} ({card.preprocessing_version}), this run trains "
                         f"{args.arch} ({args.preprocessing})")
    model.load_state_dict(load_model(card).state_dict())
    log.info("fine-tuning from %s (validation macro-F1 %s)", path, (card.validation_metrics or {}).get("macro_f1"))


def versions() -> dict:
    import cv2
    import safetensors
    import timm

    return {"python": platform.python_version(), "torch": torch.__version__, "timm": timm.__version__,
            "numpy": np.__version__, "opencv": cv2.__version__, "safetensors": safetensors.__version__,
            "cuda": torch.version.cuda if torch.cuda.is_available() else None, "platform": platform.platform()}


def write_run_json(args: argparse.Namespace, dist: Dist, rows: dict[str, list[dict]]) -> None:
    record = {
        "command": shlex.join(getattr(sys, "orig_argv", sys.argv)),
        "world_size": dist.world_size,
        "device": str(dist.device),
        "args": plain_args(args),
        "preprocessing_version": args.preprocessing,
        "manifest": str(args.manifest),
        "manifest_copy": str(args.split_manifest),
        "manifest_sha256": args.manifest_sha256,
        "train_images": len(rows["train"]),
        "val_images": len(rows["val"]),
        "size_schedule": str(size_schedule(args)),
        "versions": versions(),
        "started": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
    }
    (args.out / "run.json").write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")


def snapshot_manifest(args: argparse.Namespace, dist: Dist) -> None:
    """Copy the manifest into ``--out`` and read only the copy (sets ``args.split_manifest`` and its sha256).

    The curated manifest may be rebuilt while a long run goes on; the copy pins the split this run used.
    """
    copy = args.out / "split_manifest.csv"
    if dist.is_main and not (copy.exists() and copy.samefile(args.manifest)):
        shutil.copyfile(args.manifest, copy)
    if dist.enabled:
        torch_dist.barrier()
    args.split_manifest, args.manifest_sha256 = copy, sha256_file(copy)


def save_best(model, args: argparse.Namespace, metrics: dict, epoch: int, size: int | None = None) -> None:
    """``best.safetensors`` and a model card draft (``meets_bar`` is for the evaluation step to set);
    its input size is ``size``, the one the epoch trained and validated at (default ``args.size``)."""
    arch = get_architecture(args.arch)
    sha = save_weights(model, args.out / "best.safetensors")
    card = ModelCard(
        name=args.out.name, architecture=args.arch, classes=list(CLASSES), input_size=size or args.size,
        in_chans=IN_CHANS, mean=list(arch.mean), std=list(arch.std), preprocessing_version=args.preprocessing,
        weights_file="best.safetensors", weights_sha256=sha,
        training_data={"split_manifest": str(args.manifest), "split_manifest_sha256": args.manifest_sha256},
        validation_metrics={**metrics, "epoch": epoch},
        notes="Draft written by training.train at the best validation macro-F1; "
              "test metrics, temperature and meets_bar come from the evaluation step.",
        created_by_command=shlex.join(getattr(sys, "orig_argv", sys.argv)),
    )
    card.save(args.out / "best.json")


def log_epoch(args: argparse.Namespace, record: dict) -> None:
    with open(args.out / "metrics.jsonl", "a", encoding="utf-8") as handle:
        handle.write(json.dumps(record) + "\n")
    f1 = " ".join(f"{c}={record['f1'][c]:.3f}" for c in CLASSES)
    log.info("epoch %d/%d at %d px: train loss %.4f (%.1f img/s), val loss %.4f acc %.4f macro-F1 %.4f [%s]%s",
             record["epoch"], args.epochs, record["size"], record["train_loss"], record["train_img_per_s"],
             record["val_loss"],
             record["accuracy"], record["macro_f1"], f1, " *best*" if record["is_best"] else "")
    log.info("  per-source val accuracy: %s",
             ", ".join(f"{s} {a:.3f}" for s, a in record["per_source_accuracy"].items()))


# --------------------------------------------------------------------------- main

def run(args: argparse.Namespace, dist: Dist) -> dict:
    """The training loop; returns the final loop state."""
    seed_everything(args.seed + dist.rank)
    snapshot_manifest(args, dist)
    rows = split_rows(args)
    schedule = size_schedule(args)
    if dist.is_main:
        write_run_json(args, dist, rows)
    log.info("train %d images, val %d; %s at %s px on %s x%d", len(rows["train"]), len(rows["val"]), args.arch,
             schedule, dist.device, dist.world_size)

    model = create_model(args, dist)
    optimizer = make_optimizer(model, args.lr, args.weight_decay)
    steps = steps_per_epoch(len(rows["train"]), args, dist)
    scheduler = make_scheduler(optimizer, args, steps)
    scaler = torch.amp.GradScaler("cuda", enabled=dist.device.type == "cuda")
    arch = get_architecture(args.arch)
    criterion = make_criterion(args, arch.mean, arch.std, dist.device, student=model)
    if args.consistency_weight > 0:
        criterion = FramingConsistencyLoss(criterion, args.consistency_weight, args.consistency_anchor)
    state = {"epoch": 0, "best_score": -1.0, "best_epoch": 0, "bad_epochs": 0, "position": EpochPosition()}
    pending_rng = None
    if args.resume:
        state, pending_rng = load_checkpoint(args.resume, model, optimizer, scheduler, scaler, args, dist.world_size)
        log.info("resumed from %s after epoch %d and %d steps of the next (step %d of %d; best macro-F1 %.4f)",
                 args.resume, state["epoch"], state["position"].step, scheduler.last_epoch, args.epochs * steps,
                 state["best_score"])
        if dist.rank > 0:
            # The checkpoint holds rank 0's RNG; other ranks need their own augmentation stream.
            torch.manual_seed(args.seed + dist.rank + 1000 * state["epoch"] + scheduler.last_epoch)
            pending_rng = None
    elif args.restart_from:
        state = restart_from_best(args.restart_from, model, scheduler, steps, args)
    elif args.init_from:
        init_from_best(args.init_from, model, args)
    if args.stop_at_step is not None and scheduler.last_epoch >= args.stop_at_step:
        log.warning("already at step %d, past --stop-at-step %d: nothing to train", scheduler.last_epoch,
                    args.stop_at_step)
        return state
    net, net_head_only = model, None
    started = time.perf_counter()
    # Ranks would disagree on when to stop mid-epoch, so under DDP only whole epochs are skipped.
    deadline = started + args.time_budget_min * 60 if args.time_budget_min and not dist.enabled else None

    def checkpoint(epoch_position: EpochPosition) -> None:
        if dist.is_main:
            save_checkpoint(args.out / "last.pt", model, optimizer, scheduler, scaler,
                            {**{k: state[k] for k in ("epoch", "best_score", "best_epoch", "bad_epochs")},
                             "step_in_epoch": epoch_position.step, "epoch_loss_sum": epoch_position.loss_sum,
                             "epoch_seen": epoch_position.seen, "global_step": scheduler.last_epoch,
                             "world_size": dist.world_size}, args)

    def restore_rng() -> None:
        if pending_rng is not None:
            set_rng_state(pending_rng)

    def after_step(position: EpochPosition, epoch_steps: int) -> bool:
        """Mid-epoch checkpoints and stops (an epoch's last step is the epoch's own checkpoint)."""
        if position.step >= epoch_steps:
            return False
        step = scheduler.last_epoch
        stop = args.stop_at_step is not None and step >= args.stop_at_step
        # Without --checkpoint-every the time budget keeps its old meaning (train_one_epoch's deadline).
        out_of_time = bool(args.checkpoint_every) and deadline is not None and time.perf_counter() > deadline
        if stop or out_of_time or (args.checkpoint_every and step % args.checkpoint_every == 0):
            checkpoint(position)
            log.info("checkpoint at step %d (epoch %d, step %d of %d)", step, state["epoch"] + 1, position.step,
                     epoch_steps)
        if out_of_time:
            log.warning("time budget spent: stopped at step %d; continue with --resume %s", step,
                        args.out / "last.pt")
        return stop or out_of_time

    data = None
    for epoch in range(state["epoch"] + 1, args.epochs + 1):
        if stop_for_time(args, started, state, epoch):
            break
        epoch_start = time.perf_counter()
        size = schedule.size_for_epoch(epoch)
        if data is None or data.size != size:
            data = None  # free the previous size's images before decoding the next
            data = SizedData.build(args, rows, size, dist)
        head_only = epoch <= args.freeze_backbone_epochs
        set_backbone_trainable(model, not head_only)
        if dist.enabled and net_head_only != head_only:
            # DDP syncs only the parameters trainable when it is built: rebuild it when that changes.
            net, net_head_only = wrap_ddp(model, dist), head_only
        position = state.pop("position", None) or EpochPosition()
        data.train_loader.sampler.set_epoch(epoch, start=position.step * args.batch_size)
        # With --checkpoint-every the time budget ends the run at a step boundary, resumable mid-epoch;
        # without it an epoch cut short is validated and counted as done.
        step_deadline = None if args.checkpoint_every else deadline
        record = train_one_epoch(net, data.train_loader, optimizer, scheduler, scaler, criterion, dist, epoch,
                                 step_deadline, position, on_start=restore_rng, on_step=after_step)
        pending_rng = None
        if record["stopped"]:
            break
        record.update(evaluate(model, data.val_loader, data.val_set, dist))
        record["epoch"], record["lr"], record["size"] = epoch, scheduler.get_last_lr()[0], size
        record["step"] = scheduler.last_epoch
        record["head_only"] = head_only
        record["is_best"] = record["macro_f1"] > state["best_score"]
        state["epoch"] = epoch
        if record["is_best"]:
            state.update(best_score=record["macro_f1"], best_epoch=epoch, bad_epochs=0)
        elif not record["head_only"]:
            state["bad_epochs"] += 1
        record["epoch_seconds"] = time.perf_counter() - epoch_start
        state["last_epoch_seconds"] = record["epoch_seconds"]
        if dist.is_main:
            log_epoch(args, record)
            if record["is_best"]:
                save_best(model, args, {k: record[k] for k in ("accuracy", "macro_f1", "f1", "val_loss")}, epoch,
                          size)
        checkpoint(EpochPosition())
        if record["truncated"]:
            break
        if args.stop_at_step is not None and scheduler.last_epoch >= args.stop_at_step:
            log.info("stage done at step %d; continue with --resume %s", scheduler.last_epoch, args.out / "last.pt")
            break
        if state["bad_epochs"] >= args.patience:
            log.info("early stop: no better validation macro-F1 for %d epochs", args.patience)
            break
    if state["best_epoch"]:
        log.info("done: best validation macro-F1 %.4f at epoch %d", state["best_score"], state["best_epoch"])
    else:
        log.info("done at step %d: no epoch finished yet, no best weights", scheduler.last_epoch)
    return state


def wrap_ddp(model, dist: Dist):
    """DistributedDataParallel around ``model`` (broadcasts rank 0's weights on construction)."""
    return torch.nn.parallel.DistributedDataParallel(
        model, device_ids=[dist.device.index] if dist.device.type == "cuda" else None)


def stop_for_time(args: argparse.Namespace, started: float, state: dict, epoch: int) -> bool:
    """True when the next epoch, as long as the last one, would overrun ``--time-budget-min``."""
    if args.time_budget_min is None or "last_epoch_seconds" not in state:
        return False
    projected = time.perf_counter() - started + state["last_epoch_seconds"]
    if projected <= args.time_budget_min * 60:
        return False
    log.info("stopping before epoch %d: it would end after the %.0f-minute budget", epoch, args.time_budget_min)
    return True


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if args.size_schedule:
        args.size = SizeSchedule.parse(args.size_schedule).final_size
    args.size = args.size or get_architecture(args.arch).input_size
    if args.threads:
        torch.set_num_threads(args.threads)
    dist = setup_distributed(args.device)
    args.out.mkdir(parents=True, exist_ok=True)
    if dist.device.type == "cuda":
        torch.backends.cudnn.benchmark = True
    # Rank 0 logs INFO to out/train.log (appended: a resumed run keeps its history); others warn only.
    log_file = args.out / "train.log" if dist.is_main else None
    level = logging.INFO if dist.is_main else logging.WARNING
    try:
        with script_logging(log_file, level=level, tag=f"[rank {dist.rank}] ", file_mode="a"):
            run(args, dist)
        if dist.enabled:
            # Rank 0 may still be writing checkpoints: a rank that tears gloo down first can abort
            # ("terminate called without an active exception"), so all ranks finish together.
            torch_dist.barrier()
    finally:
        if dist.enabled:
            torch_dist.destroy_process_group()
    return 0


if __name__ == "__main__":
    sys.exit(main())
