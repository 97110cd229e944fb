"""Train a registry architecture on a split manifest: transfer learning or from scratch, CPU or GPU, DDP.

AdamW; a head-only phase first when ``--freeze-backbone-epochs`` is set (constant learning rate),
then the whole network with a per-step linear warm-up and a cosine decay to zero; label-smoothed
cross-entropy, optionally distilled from a bundled model (``--teacher``, ``training.distill``);
class-balanced sampling from the manifest's ``sample_weight``; CUDA AMP on GPU.
Every epoch is evaluated on the validation split (accuracy, macro-F1, per-class F1, per-source
accuracy); training stops early when macro-F1 has not improved for ``--patience`` epochs.

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
import random
import shlex
import shutil
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
import torch.distributed as torch_dist
from torch.utils.data import DataLoader, Subset

from cxr_engine.model_card import CLASSES, ModelCard
from cxr_engine.preprocessing import PREPROCESSING_VERSION, PREPROCESSING_VERSIONS
from cxr_engine.registry import build_model, get_architecture, list_architectures
from cxr_engine.weights import save_weights, sha256_file

from .data import (AcquisitionShift, Augment, BorderSwap, FramingShift, ManifestDataset, limit_rows, read_manifest,
                   train_sampler)
from .distill import make_criterion
from .pretrained import load_pretrained_backbone
from .script_logging import script_logging

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
                        help="model card JSON of a model to distil from "
                             "(e.g. resources/models/efficientnet-lite0.json; training.distill)")
    parser.add_argument("--distill-weight", type=float, default=0.7,
                        help="share of the loss from the teacher's soft targets (with --teacher)")
    parser.add_argument("--distill-temperature", type=float, default=2.0, help="softmax temperature for distillation")
    parser.add_argument("--out", type=Path, required=True, help="output folder")
    parser.add_argument("--resume", type=Path, default=None, help="last.pt checkpoint to continue from")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    parser.add_argument("--workers", type=int, default=None,
                        help="DataLoader workers (default: 0 on CPU, up to 8 on CUDA)")
    parser.add_argument("--limit", type=int, default=None, help="use at most N images per split (tests, timing)")
    parser.add_argument("--preprocessing", choices=PREPROCESSING_VERSIONS, default=PREPROCESSING_VERSION,
                        help="the model input's preprocessing version (cxr_engine.preprocessing): cxr-pre-1 the "
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
    return args


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


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def rng_state() -> dict:
    """Every RNG's state as tensors and plain values (loadable with ``weights_only=True``)."""
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    state = {
        "python": random.getstate(),
        "numpy": {"kind": kind, "keys": torch.from_numpy(keys.astype(np.int64)), "pos": int(pos),
                  "has_gauss": int(has_gauss), "cached_gaussian": float(cached)},
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict) -> None:
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    n = state["numpy"]
    np.random.set_state((n["kind"], n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"],
                         n["cached_gaussian"]))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


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


def build_datasets(args: argparse.Namespace, size: int, dist: Dist) -> tuple[ManifestDataset, ManifestDataset]:
    arch = get_architecture(args.arch)
    rows = {split: limit_rows(read_manifest(args.split_manifest, split), args.limit, args.seed)
            for split in ("train", "val")}
    rows["val"] = limit_rows(rows["val"], args.val_limit, args.seed)
    for split, split_rows in rows.items():
        if not split_rows:
            raise ValueError(f"{args.manifest}: no rows in the {split!r} split")
    train = ManifestDataset(rows["train"], size, arch.mean, arch.std, IN_CHANS, Augment(),
                            BorderSwap(p=args.border_swap), AcquisitionShift(p=args.acquisition_shift),
                            FramingShift(p=args.framing_shift), preprocessing=args.preprocessing)
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
    """Accuracy, macro-F1, per-class precision/recall/F1, per-source accuracy, confusion matrix."""
    k = len(CLASSES)
    confusion = np.bincount(labels * k + preds, minlength=k * k).reshape(k, k)
    tp = np.diag(confusion).astype(float)
    precision = np.divide(tp, confusion.sum(0), out=np.zeros(k), where=confusion.sum(0) > 0)
    recall = np.divide(tp, confusion.sum(1), out=np.zeros(k), where=confusion.sum(1) > 0)
    f1 = np.divide(2 * precision * recall, precision + recall, out=np.zeros(k), where=precision + recall > 0)
    present = confusion.sum(1) > 0
    per_source = {}
    for source in sorted(set(sources)):
        mask = np.array([s == source for s in sources])
        per_source[source] = float((labels[mask] == preds[mask]).mean())
    return {
        "accuracy": float((labels == preds).mean()) if len(labels) else 0.0,
        "macro_f1": float(f1[present].mean()) if present.any() else 0.0,
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


def train_one_epoch(model, loader, optimizer, scheduler, scaler, criterion, dist: Dist, epoch: int,
                    deadline: float | None = None) -> dict:
    """One pass over ``loader``; stops early once ``time.perf_counter()`` passes ``deadline``."""
    model.train()
    total_loss, seen, start, truncated = 0.0, 0, time.perf_counter(), False
    bar = progress(loader, dist, desc=f"train {epoch}")
    for images, labels in bar:
        if deadline is not None and time.perf_counter() > deadline:
            log.warning("time budget spent: epoch %d cut short after %d images", epoch, seen)
            truncated = True
            break
        images = images.to(dist.device, non_blocking=True, memory_format=torch.channels_last)
        labels = labels.to(dist.device, non_blocking=True)
        with autocast(dist):
            loss = criterion(model(images), labels, images)
        optimizer.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        scaler.step(optimizer)
        scaler.update()
        scheduler.step()
        total_loss += float(loss.detach()) * len(labels)
        seen += len(labels)
        bar.set_postfix(loss=f"{total_loss / seen:.4f}", lr=f"{scheduler.get_last_lr()[0]:.2e}", refresh=False)
    seconds = time.perf_counter() - start
    return {"train_loss": total_loss / max(1, seen), "train_images": seen * dist.world_size, "truncated": truncated,
            "train_seconds": seconds, "train_img_per_s": seen * dist.world_size / max(seconds, 1e-9)}


@torch.no_grad()
def predict(model, loader, dist: Dist) -> tuple[list[int], list[int], list[float]]:
    """(dataset indices, predicted classes, per-image losses) for this rank's validation share."""
    model.eval()
    indices, preds, losses = [], [], []
    subset_indices = loader.dataset.indices
    offset = 0
    for images, labels in progress(loader, dist, desc="val", leave=False):
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


def load_checkpoint(path: Path, model, optimizer, scheduler, scaler, args) -> dict:
    """Restore everything saved by :func:`save_checkpoint`; returns the loop state."""
    checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    saved = checkpoint["args"]
    for key in ("arch", "size", "manifest_sha256"):
        if saved.get(key) != getattr(args, key):
            raise ValueError(f"{path}: checkpoint has {key}={saved.get(key)!r}, this run {getattr(args, key)!r}")
    # A checkpoint from before --preprocessing existed was trained on cxr-pre-1.
    if saved.get("preprocessing", PREPROCESSING_VERSION) != args.preprocessing:
        raise ValueError(f"{path}: checkpoint has preprocessing {saved.get('preprocessing', PREPROCESSING_VERSION)!r}, "
                         f"this run {args.preprocessing!r}")
    model.load_state_dict(checkpoint["model"])
    optimizer.load_state_dict(checkpoint["optimizer"])
    scheduler.load_state_dict(checkpoint["scheduler"])
    scaler.load_state_dict(checkpoint["scaler"])
    set_rng_state(checkpoint["rng"])
    return {k: checkpoint[k] for k in ("epoch", "best_score", "best_epoch", "bad_epochs")}


def versions() -> dict:
    import cv2
    import safetensors
    import timm

    return {"python": platform.python_version(), "torch": torch.__version__, "timm": timm.__version__,
            "numpy": np.__version__, "opencv": cv2.__version__, "safetensors": safetensors.__version__,
            "cuda": torch.version.cuda if torch.cuda.is_available() else None, "platform": platform.platform()}


def write_run_json(args: argparse.Namespace, dist: Dist, datasets: tuple[ManifestDataset, ManifestDataset]) -> None:
    record = {
        "command": shlex.join(getattr(sys, "orig_argv", sys.argv)),
        "world_size": dist.world_size,
        "device": str(dist.device),
        "args": plain_args(args),
        "preprocessing_version": args.preprocessing,
        "manifest": str(args.manifest),
        "manifest_copy": str(args.split_manifest),
        "manifest_sha256": args.manifest_sha256,
        "train_images": len(datasets[0]),
        "val_images": len(datasets[1]),
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


def save_best(model, args: argparse.Namespace, metrics: dict, epoch: int) -> None:
    """``best.safetensors`` and a model card draft (``meets_bar`` is for the evaluation step to set)."""
    arch = get_architecture(args.arch)
    sha = save_weights(model, args.out / "best.safetensors")
    card = ModelCard(
        name=args.out.name, architecture=args.arch, classes=list(CLASSES), input_size=args.size,
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
    log.info("epoch %d/%d: train loss %.4f (%.1f img/s), val loss %.4f acc %.4f macro-F1 %.4f [%s]%s",
             record["epoch"], args.epochs, record["train_loss"], record["train_img_per_s"], record["val_loss"],
             record["accuracy"], record["macro_f1"], f1, " *best*" if record["is_best"] else "")
    log.info("  per-source val accuracy: %s",
             ", ".join(f"{s} {a:.3f}" for s, a in record["per_source_accuracy"].items()))


# --------------------------------------------------------------------------- main

def run(args: argparse.Namespace, dist: Dist) -> dict:
    """The training loop; returns the final loop state."""
    seed_everything(args.seed + dist.rank)
    snapshot_manifest(args, dist)
    train_set, val_set = build_datasets(args, args.size, dist)
    if dist.is_main:
        write_run_json(args, dist, (train_set, val_set))
    log.info("train %d images, val %d; %s at %d px on %s x%d", len(train_set), len(val_set), args.arch,
             args.size, dist.device, dist.world_size)
    train_loader = build_train_loader(train_set, args, dist)
    val_loader = build_val_loader(val_set, args, dist)

    model = create_model(args, dist)
    optimizer = make_optimizer(model, args.lr, args.weight_decay)
    scheduler = make_scheduler(optimizer, args, len(train_loader))
    scaler = torch.amp.GradScaler("cuda", enabled=dist.device.type == "cuda")
    arch = get_architecture(args.arch)
    criterion = make_criterion(args, arch.mean, arch.std, dist.device)
    state = {"epoch": 0, "best_score": -1.0, "best_epoch": 0, "bad_epochs": 0}
    if args.resume:
        state = load_checkpoint(args.resume, model, optimizer, scheduler, scaler, args)
        log.info("resumed from %s after epoch %d (best macro-F1 %.4f)", args.resume, state["epoch"],
                 state["best_score"])
        if dist.rank > 0:
            # The checkpoint holds rank 0's RNG; other ranks need their own augmentation stream.
            torch.manual_seed(args.seed + dist.rank + 1000 * state["epoch"])
    net, net_head_only = model, None
    started = time.perf_counter()
    # Ranks would disagree on when to stop mid-epoch, so under DDP only whole epochs are skipped.
    deadline = started + args.time_budget_min * 60 if args.time_budget_min and not dist.enabled else None
    for epoch in range(state["epoch"] + 1, args.epochs + 1):
        if stop_for_time(args, started, state, epoch):
            break
        epoch_start = time.perf_counter()
        head_only = epoch <= args.freeze_backbone_epochs
        set_backbone_trainable(model, not head_only)
        if dist.enabled and net_head_only != head_only:
            # DDP syncs only the parameters trainable when it is built: rebuild it when that changes.
            net, net_head_only = wrap_ddp(model, dist), head_only
        train_loader.sampler.set_epoch(epoch)
        record = train_one_epoch(net, train_loader, optimizer, scheduler, scaler, criterion, dist, epoch, deadline)
        record.update(evaluate(model, val_loader, val_set, dist))
        record["epoch"], record["lr"] = epoch, scheduler.get_last_lr()[0]
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
                save_best(model, args, {k: record[k] for k in ("accuracy", "macro_f1", "f1", "val_loss")}, epoch)
            save_checkpoint(args.out / "last.pt", model, optimizer, scheduler, scaler,
                            {k: state[k] for k in ("epoch", "best_score", "best_epoch", "bad_epochs")}, args)
        if record["truncated"]:
            break
        if state["bad_epochs"] >= args.patience:
            log.info("early stop: no better validation macro-F1 for %d epochs", args.patience)
            break
    log.info("done: best validation macro-F1 %.4f at epoch %d", state["best_score"], state["best_epoch"])
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
