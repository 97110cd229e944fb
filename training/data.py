"""Training data: split-manifest rows -> (model input tensor, class index).

Per image: ``read_image`` -> ``unnormalised_input(image, size, version=...)`` (the engine's own steps
1–3 of the run's preprocessing version, cxr-pre-1 or cxr-pre-2's lung box, so training sees exactly
what inference sees) -> augmentation (training only: border swap, geometry
and intensity, acquisition shift) -> ``normalise``.
Unnormalised model inputs are cached in memory as float16, one cache per split and size, so only the
first epoch decodes files (or none, after :meth:`ImageCache.precompute`).

Sampling: ``WeightedRandomSampler`` over the manifest's ``sample_weight`` (class- and
source-balanced by the curation step), or :class:`DistributedWeightedSampler` under DDP.
"""
from __future__ import annotations

import csv
import dataclasses
import math
import random
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Sequence

import cv2
import numpy as np
import torch
from torch.utils.data import Dataset, Sampler

from cxr_engine.reading.read import read_image
from cxr_engine.models.model_card import CLASSES
from cxr_engine.models.classifier import unnormalised_input
from cxr_engine.pixels.preprocessing import PREPROCESSING_VERSION, contrast_stretch, normalise

from .degradation import (MARKER_TEXTS, cropped, recompressed, repositioned, resampled, sharpened, with_markers,
                          zoomed_out)

REQUIRED_COLUMNS = ("path", "label", "split", "sample_weight")


def read_manifest(path: str | Path, split: str | None = None) -> list[dict]:
    """Rows of a split manifest (optionally one split); checks columns and labels."""
    path = Path(path)
    with open(path, newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        missing = [c for c in REQUIRED_COLUMNS if c not in (reader.fieldnames or [])]
        if missing:
            raise ValueError(f"{path}: split manifest lacks column(s) {', '.join(missing)}")
        rows = [row for row in reader if split is None or row["split"] == split]
    unknown = sorted({row["label"] for row in rows} - set(CLASSES))
    if unknown:
        raise ValueError(f"{path}: unknown label(s) {unknown}; expected {CLASSES}")
    return rows


def limit_rows(rows: list[dict], limit: int | None, seed: int = 0) -> list[dict]:
    """At most ``limit`` rows, drawn round-robin across labels so tiny subsets keep every class."""
    if not limit or limit >= len(rows):
        return rows
    by_label: dict[str, list[dict]] = defaultdict(list)
    for row in rows:
        by_label[row["label"]].append(row)
    rng = random.Random(seed)
    queues = []
    for label in sorted(by_label):
        members = by_label[label][:]
        rng.shuffle(members)
        queues.append(members)
    picked: list[dict] = []
    while len(picked) < limit:
        for queue in queues:
            if queue and len(picked) < limit:
                picked.append(queue.pop())
    return picked


def read_unnormalised_input(path: str | Path, size: int, version: str = PREPROCESSING_VERSION) -> np.ndarray:
    """The engine's steps 1–3 of preprocessing ``version`` for one file: (size, size) float32 in [0, 1]
    (pixel padding left out of the stretch; cxr-pre-2 crops to the lung box first)."""
    return unnormalised_input(read_image(path), size, version=version)


class ImageCache:
    """Unnormalised model inputs of one split at one size and preprocessing version, float16, filled lazily
    or all at once.

    With DataLoader workers each worker holds its own copy of what it fills lazily, so call
    :meth:`precompute` first when using workers (forked workers then share the filled array).
    """

    def __init__(self, paths: Sequence[str], size: int, version: str = PREPROCESSING_VERSION):
        self.paths = list(paths)
        self.size = size
        self.version = version
        self.images = np.zeros((len(self.paths), size, size), dtype=np.float16)
        self.filled = np.zeros(len(self.paths), dtype=bool)

    def __len__(self) -> int:
        return len(self.paths)

    def get(self, index: int) -> np.ndarray:
        """float32 (size, size) image ``index``, decoded on first use."""
        if not self.filled[index]:
            self.images[index] = read_unnormalised_input(self.paths[index], self.size, self.version)
            self.filled[index] = True
        return self.images[index].astype(np.float32)

    def precompute(self, threads: int = 2, progress: bool = True, desc: str = "decode") -> None:
        """Decode every image not yet cached (cv2 and the JPEG decoders release the GIL)."""
        from tqdm import tqdm

        todo = np.flatnonzero(~self.filled).tolist()
        with ThreadPoolExecutor(max_workers=max(1, threads)) as pool:
            results = pool.map(lambda i: (i, read_unnormalised_input(self.paths[i], self.size, self.version)), todo)
            for index, image in tqdm(results, total=len(todo), desc=desc, disable=not progress, mininterval=5):
                self.images[index] = image
                self.filled[index] = True

    def save(self, path: Path) -> None:
        np.save(path, self.images)

    def load(self, path: Path) -> bool:
        """Fill from an ``.npy`` written by :meth:`save`; False when absent or of another shape."""
        if not path.exists():
            return False
        images = np.load(path)
        if images.shape != self.images.shape or images.dtype != np.float16:
            return False
        self.images = images
        self.filled[:] = True
        return True


@dataclass(frozen=True)
class Augment:
    """Radiograph-safe augmentation of a [0, 1] greyscale image; no flips, no colour operations.

    One affine warp (rotation in degrees, isotropic scale, shift as a fraction of the side) with
    replicated borders, then gamma, contrast about the image mean and additive brightness.
    """

    rotation: float = 10.0
    scale: tuple[float, float] = (0.9, 1.1)
    shift: float = 0.06
    brightness: float = 0.1
    contrast: tuple[float, float] = (0.85, 1.15)
    gamma: tuple[float, float] = (0.8, 1.25)

    def __call__(self, grey: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """A new float32 image in [0, 1] of the same shape; ``grey`` is not modified."""
        return self.intensity(self.geometry(grey, rng), rng)

    def geometry(self, grey: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        height, width = grey.shape
        angle = rng.uniform(-self.rotation, self.rotation)
        scale = rng.uniform(*self.scale)
        matrix = cv2.getRotationMatrix2D((width / 2.0, height / 2.0), angle, scale)
        matrix[0, 2] += rng.uniform(-self.shift, self.shift) * width
        matrix[1, 2] += rng.uniform(-self.shift, self.shift) * height
        return cv2.warpAffine(grey, matrix, (width, height), flags=cv2.INTER_LINEAR,
                              borderMode=cv2.BORDER_REPLICATE)

    def intensity(self, grey: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        # Log-uniform gamma so that darkening and brightening are equally likely.
        gamma = math.exp(rng.uniform(math.log(self.gamma[0]), math.log(self.gamma[1])))
        out = np.power(np.clip(grey, 0.0, 1.0), gamma)
        contrast = rng.uniform(*self.contrast)
        out = (out - out.mean()) * contrast + out.mean()
        out = out + rng.uniform(-self.brightness, self.brightness)
        return np.clip(out, 0.0, 1.0).astype(np.float32)


@dataclass(frozen=True)
class AcquisitionShift:
    """Randomised image processing, against shortcuts in how a source's images were made.

    In cxr3 the adult normals are smooth (one source, resampled once to 224 px) while the COVID
    sources are sharper and noisier: a model learns "texture = COVID" and calls nearly every
    sharpened or slightly noisy normal COVID-19, which is what a real detector's DICOM looks like.
    With probability ``p`` an image goes through a random chain of the steps below, each applied
    with its own probability, so that resolution, sharpness, noise and compression carry no label:
    a resolution loss (down- then up-sampling), a blur or an unsharp mask, additive noise whose
    strength follows the signal (quantum-like) or not, and JPEG recompression.
    """

    p: float = 0.0
    resample: tuple[float, float, float] = (0.3, 1.2, 2.5)  # probability, smallest and largest factor
    blur: tuple[float, float, float] = (0.25, 0.3, 1.2)  # probability, Gaussian sigma range in px
    sharpen: tuple[float, float, float, float, float] = (0.35, 0.6, 1.6, 0.3, 1.5)  # p, sigma range, amount range
    noise: tuple[float, float, float] = (0.5, 0.003, 0.03)  # probability, standard deviation range
    jpeg: tuple[float, int, int] = (0.3, 35, 95)  # probability, quality range

    def __call__(self, grey: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """A new float32 image in [0, 1] (``grey`` is unchanged); the identity when the draw misses ``p``."""
        out = grey.astype(np.float32, copy=True)
        if rng.random() >= self.p:
            return out
        if rng.random() < self.resample[0]:
            out = resampled(out, rng.uniform(*self.resample[1:]))
        filter_draw = rng.random()
        if filter_draw < self.blur[0]:
            out = cv2.GaussianBlur(out, (0, 0), rng.uniform(*self.blur[1:]))
        elif filter_draw < self.blur[0] + self.sharpen[0]:
            out = sharpened(out, rng.uniform(*self.sharpen[1:3]), rng.uniform(*self.sharpen[3:5]))
        if rng.random() < self.noise[0]:
            sigma = rng.uniform(*self.noise[1:])
            scale = np.sqrt(np.clip(out, 0.0, 1.0)) * 1.4 if rng.random() < 0.5 else 1.0
            out = out + rng.normal(0.0, sigma, out.shape).astype(np.float32) * scale
        out = np.clip(out, 0.0, 1.0)
        if rng.random() < self.jpeg[0]:
            out = recompressed(out, int(rng.integers(self.jpeg[1], self.jpeg[2] + 1)))
        return out.astype(np.float32)


@dataclass(frozen=True)
class FramingShift:
    """Randomised framing, against shortcuts in how a source framed its films.

    cxr3's adult normals come from one hospital with one framing; other hospitals crop tightly to
    the thorax, leave wide borders, position the patient off-centre and burn in markers, and a
    model that learned the one framing calls such normal films COVID-19. With probability ``p``
    the unnormalised model input is either cropped (a box of ``crop`` of each side, anywhere in the
    image: a tight thorax crop is the extreme), or zoomed out onto a black, white or grey canvas
    (``zoom`` of each side) or shifted and rotated leaving uncovered corners; then, with
    ``markers_p``, burned-in text is added. The result is contrast-stretched again, as
    ``resize_and_stretch`` would stretch such a film at inference.
    """

    p: float = 0.0
    crop: tuple[float, float] = (0.72, 0.95)  # fraction of each side kept
    zoom: tuple[float, float] = (0.65, 0.95)  # fraction of each side the film fills
    angle: float = 12.0
    shift: float = 0.12
    weights: tuple[float, float, float] = (0.45, 0.35, 0.2)  # crop, zoom out, reposition
    markers_p: float = 0.4

    def __call__(self, grey: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """A new float32 image in [0, 1] of the same shape; the identity (a copy) when the draw misses ``p``."""
        out = grey.astype(np.float32, copy=True)
        if rng.random() >= self.p:
            return out
        kind = rng.choice(3, p=np.asarray(self.weights) / sum(self.weights))
        if kind == 0:
            keep_y, keep_x = rng.uniform(*self.crop, size=2)
            top, left = rng.uniform(0.0, 1.0 - keep_y), rng.uniform(0.0, 1.0 - keep_x)
            out = cropped(out, top, top + keep_y, left, left + keep_x)
        elif kind == 1:
            fill = float(rng.choice([0.0, 0.0, 1.0, rng.uniform(0.1, 0.7)]))
            scale_y, scale_x = rng.uniform(*self.zoom, size=2)
            out = zoomed_out(out, scale_y, scale_x, fill, rng.uniform(0.0, 1.0), rng.uniform(0.0, 1.0))
        else:
            out = repositioned(out, rng.uniform(-self.angle, self.angle), rng.uniform(-self.shift, self.shift),
                               rng.uniform(-self.shift, self.shift), float(rng.choice([0.0, 1.0])))
        if rng.random() < self.markers_p:
            texts = tuple((str(rng.choice(MARKER_TEXTS)), rng.uniform(0.05, 0.95), rng.uniform(0.0, 0.85),
                           rng.uniform(0.03, 0.08), float(rng.choice([0.0, 1.0])))
                          for _ in range(int(rng.integers(1, 4))))
            out = with_markers(out, texts)
        return contrast_stretch(np.clip(out, 0.0, 1.0))


@dataclass(frozen=True)
class BorderSwap:
    """Counterfactual augmentation against shortcuts outside the lungs.

    With probability ``p`` the image keeps a randomly jittered central rectangle (the thorax)
    and takes everything around it from another training image, blended over a soft edge. The
    donor is drawn with the sampling weights, so borders come from every class and source alike:
    laterality markers, burned-in text, collimation, a child's arms or head then carry no label
    information, and the loss rewards only what lies in the centre. The rectangle's jitter keeps
    it from matching the evaluation's fixed lungs-masked rectangle exactly.
    """

    p: float = 0.0
    top: tuple[float, float] = (0.06, 0.20)
    bottom: tuple[float, float] = (0.84, 0.96)
    left: tuple[float, float] = (0.06, 0.20)
    right: tuple[float, float] = (0.80, 0.94)
    feather: float = 0.03

    def keep_mask(self, size: int, rng: np.random.Generator) -> np.ndarray:
        """(size, size) float32 weights: 1 inside the kept rectangle, 0 outside, a soft edge between."""
        coords = (np.arange(size, dtype=np.float32) + 0.5) / size
        sigma = max(self.feather, 1e-6)

        def ramp(low: float, high: float) -> np.ndarray:
            return np.clip(np.minimum(coords - low, high - coords) / sigma + 0.5, 0.0, 1.0)

        rows = ramp(rng.uniform(*self.top), rng.uniform(*self.bottom))
        cols = ramp(rng.uniform(*self.left), rng.uniform(*self.right))
        return np.outer(rows, cols).astype(np.float32)

    def __call__(self, grey: np.ndarray, donor: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """``grey``'s centre over ``donor``'s surroundings (both (size, size) in [0, 1])."""
        keep = self.keep_mask(grey.shape[0], rng)
        return (keep * grey + (1.0 - keep) * donor).astype(np.float32)


class ManifestDataset(Dataset):
    """(C, size, size) float32 tensors and class indices for the rows of one split."""

    def __init__(self, rows: list[dict], size: int, mean: Sequence[float], std: Sequence[float],
                 in_chans: int = 3, augment: Augment | None = None, border_swap: BorderSwap | None = None,
                 acquisition: AcquisitionShift | None = None, framing: FramingShift | None = None,
                 preprocessing: str = PREPROCESSING_VERSION, framing_pairs: bool = False):
        self.rows = rows
        self.labels = [CLASSES.index(row["label"]) for row in rows]
        self.cache = ImageCache([row["path"] for row in rows], size, preprocessing)
        self.mean, self.std, self.in_chans = tuple(mean), tuple(std), in_chans
        self.augment = augment
        self.border_swap = border_swap if border_swap is not None and border_swap.p > 0 else None
        self.acquisition = acquisition if acquisition is not None and acquisition.p > 0 else None
        self.framing = framing if framing is not None and framing.p > 0 else None
        # Pairs for training.consistency: (view without framing shift, the same film framing-shifted).
        self.framing_pairs = framing_pairs
        if framing_pairs and self.framing is None:
            raise ValueError("framing_pairs needs a framing shift (FramingShift with p > 0)")
        weights = self.sample_weights().numpy() if rows else np.ones(0)
        self.donor_probabilities = weights / weights.sum() if weights.sum() > 0 else None

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        """((C, size, size) float32 tensor, class index); with ``framing_pairs`` the tensor is
        (2, C, size, size): the film without framing shift, then framing-shifted (at p = 1), both
        through the same border swap, augmentation and acquisition-shift draws."""
        grey = self.cache.get(index)
        if not any(step is not None for step in (self.augment, self.border_swap, self.acquisition, self.framing)):
            return torch.from_numpy(normalise(grey, self.mean, self.std, self.in_chans)), self.labels[index]
        # Drawn from torch's RNG, which the DataLoader seeds per worker from the run's seed.
        rng = np.random.default_rng(int(torch.randint(0, 2**31 - 1, (1,)).item()))
        if self.border_swap is not None and rng.random() < self.border_swap.p:
            donor = int(rng.choice(len(self.rows), p=self.donor_probabilities))
            grey = self.border_swap(grey, self.cache.get(donor), rng)
        if not self.framing_pairs:
            if self.framing is not None:
                grey = self.framing(grey, rng)
            return torch.from_numpy(self._normalised(self._after_framing(grey, rng))), self.labels[index]
        framed = dataclasses.replace(self.framing, p=1.0)(grey, rng)
        seed = int(rng.integers(0, 2**31 - 1))
        views = [self._after_framing(view, np.random.default_rng(seed)) for view in (grey, framed)]
        return torch.from_numpy(np.stack([self._normalised(view) for view in views])), self.labels[index]

    def _after_framing(self, grey: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        if self.augment is not None:
            grey = self.augment(grey, rng)
        if self.acquisition is not None:
            grey = self.acquisition(grey, rng)
        return grey

    def _normalised(self, grey: np.ndarray) -> np.ndarray:
        return normalise(grey, self.mean, self.std, self.in_chans)

    def sample_weights(self) -> torch.Tensor:
        return torch.tensor([float(row["sample_weight"]) for row in self.rows], dtype=torch.double)


class DistributedWeightedSampler(Sampler[int]):
    """Weighted sampling with replacement, split across DDP ranks.

    Every rank draws the same ``num_samples`` indices (seeded by ``seed`` + epoch) and keeps every
    ``world_size``-th one from its rank on, so ranks see disjoint shares of one weighted draw.
    Call :meth:`set_epoch` each epoch, as with ``DistributedSampler``; ``start`` skips the first
    draws of this rank's share (a run resumed mid-epoch).
    """

    def __init__(self, weights: torch.Tensor, num_samples: int, rank: int, world_size: int, seed: int = 0):
        self.weights = weights
        self.num_samples = int(math.ceil(num_samples / world_size)) * world_size
        self.rank, self.world_size, self.seed, self.epoch, self.start = rank, world_size, seed, 0, 0

    def set_epoch(self, epoch: int, start: int = 0) -> None:
        self.epoch, self.start = epoch, start

    @property
    def epoch_length(self) -> int:
        """Draws of one whole epoch on this rank (``len`` is what is left after ``start``)."""
        return self.num_samples // self.world_size

    def __len__(self) -> int:
        return max(0, self.epoch_length - self.start)

    def __iter__(self) -> Iterator[int]:
        generator = torch.Generator().manual_seed(self.seed + self.epoch)
        draw = torch.multinomial(self.weights, self.num_samples, replacement=True, generator=generator)
        return iter(draw[self.rank::self.world_size][self.start:].tolist())


class EpochWeightedSampler(torch.utils.data.WeightedRandomSampler):
    """``WeightedRandomSampler`` reseeded by ``set_epoch``, so a resumed run draws what it would have;
    ``start`` skips the epoch's first draws (a run resumed mid-epoch)."""

    def __init__(self, weights: torch.Tensor, num_samples: int, seed: int = 0):
        super().__init__(weights, num_samples, replacement=True, generator=torch.Generator())
        self.seed = seed
        self.set_epoch(0)

    def set_epoch(self, epoch: int, start: int = 0) -> None:
        self.generator.manual_seed(self.seed + epoch)
        self.start = start

    @property
    def epoch_length(self) -> int:
        """Draws of one whole epoch (``len`` is what is left after ``start``)."""
        return self.num_samples

    def __len__(self) -> int:
        return max(0, self.num_samples - self.start)

    def __iter__(self) -> Iterator[int]:
        draw = list(super().__iter__())
        return iter(draw[self.start:])


def train_sampler(dataset: ManifestDataset, epoch_samples: int | None, rank: int, world_size: int,
                  seed: int) -> Sampler[int]:
    """The class-balanced sampler for ``dataset``: one epoch draws ``epoch_samples`` (default: all rows)."""
    num_samples = epoch_samples or len(dataset)
    if world_size > 1:
        return DistributedWeightedSampler(dataset.sample_weights(), num_samples, rank, world_size, seed)
    return EpochWeightedSampler(dataset.sample_weights(), num_samples, seed)
