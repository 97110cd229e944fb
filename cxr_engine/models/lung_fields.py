"""Lung fields: the bundled lung U-Net's mask at an image's own pixel grid, and a plausibility check.

``segment_lungs(image)`` returns :class:`LungFields`: a bool mask of the image's
shape (rows, columns of ``CxrImage.shape``), whatever the model's input size, the two lungs found in
it and, when they do not look like two lungs of a frontal chest film, a warning
(:data:`NOT_FOUND_WARNING`).

The model sees the classifier's own preprocessing steps 1–3 (``cxr_engine.pixels.preprocessing``: the
whole image resized without crop or padding, robust contrast stretch) at the card's input size;
its probability map is resized back the same way (bilinear) and thresholded. The ONNX Runtime
path imports numpy and onnxruntime only, never torch; a torch path (the safetensors, built
with ``segmentation-models-pytorch``) is there for a machine that has them. Both files are checked
against the sha256 in the segmentation model card (``resources/models/lung-unet.json``), which
the classifier registry never lists (``task`` is ``segmentation``).
"""
from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np

from ..errors import ModelError
from ..pixels.components import connected_components
from ..pixels.resampling import resize_bilinear
from .model_card import NetworkCard
from .weights import verified_bytes

logger = logging.getLogger(__name__)

TASK = "segmentation"
DEFAULT_NAME = "lung-unet"
INPUT_NAME, OUTPUT_NAME = "input", "probability"
FORMAT = "cxr-seg-onnx-1"
META_FORMAT, META_MODEL, META_WEIGHTS_SHA256 = "cxr.format", "cxr.model_name", "cxr.weights_sha256"
NOT_FOUND_WARNING = "lung fields not found: not a frontal chest film?"

# Plausibility: each lung's share of the image area, where its centre may lie (fractions of the
# side), how unequal the two may be, and how much of the mask may lie outside the two.
LUNG_AREA_SHARE = (0.015, 0.40)
CENTRE_ROWS = (0.15, 0.85)
MIN_AREA_RATIO = 0.2
MAX_ROW_OFFSET = 0.3
MAX_STRAY_SHARE = 0.25


@dataclass
class LungModelCard(NetworkCard):
    """What the lung model is, where its files are and how well it segments (JSON beside the files);
    ``weights_file`` is the safetensors weights (torch path)."""

    onnx_file: str
    onnx_sha256: str
    task: str = TASK
    weights_dtype: str = "float32"
    encoder: str = ""
    decoder_channels: list[int] = field(default_factory=list)
    threshold: float = 0.5

    REQUIRED = ("name", "input_size", "in_chans", "mean", "std", "preprocessing_version",
                "weights_file", "weights_sha256", "onnx_file", "onnx_sha256")

    @property
    def onnx_path(self) -> Path:
        """The ONNX export (ONNX Runtime path), relative to the card's folder."""
        return self.beside(self.onnx_file)

    @classmethod
    def load(cls, path: str | Path) -> "LungModelCard":
        """The segmentation card at ``path``; ``ModelError`` when it is unreadable, incomplete, has
        mean/std of another length than ``in_chans``, or is not a segmentation card (``task``)."""
        path = Path(path)
        data = cls.read_json(path)
        if not isinstance(data, dict) or data.get("task") != TASK:
            raise ModelError(f"{path}: not a segmentation model card (task is not {TASK!r})")
        card = cls.from_json_data(data, path)
        card.check_input(path)
        return card


def lung_card(name_or_path: str | None = None, models_dir: Path | None = None) -> LungModelCard:
    """The bundled lung model's card (default ``lung-unet``), or a card JSON by path."""
    return LungModelCard.named(name_or_path, DEFAULT_NAME, "lung segmentation model", models_dir)


# --------------------------------------------------------------------------- geometry and plausibility

def mask_at_grid(probability: np.ndarray, shape: tuple[int, int], threshold: float = 0.5) -> np.ndarray:
    """A (size, size) lung probability at the model's input grid -> a bool mask of ``shape`` (rows, cols).

    The model input is the whole image resized without crop or padding (preprocessing step 2), so the
    probability map is resized back the same way (bilinear) before thresholding.
    """
    rows, cols = int(shape[0]), int(shape[1])
    prob = np.ascontiguousarray(probability, dtype=np.float32)
    if prob.shape != (rows, cols):
        prob = resize_bilinear(prob, rows, cols)
    return prob >= threshold


def clean_mask(mask: np.ndarray, speck_share: float = 0.005, speck_of_largest: float = 0.1) -> np.ndarray:
    """``mask`` without specks and holes: components smaller than ``speck_share`` of the image and
    ``speck_of_largest`` of the largest component are dropped, and holes enclosed by a lung are filled
    (the reference masks cover the whole lung, opacities included)."""
    mask = np.ascontiguousarray(mask, dtype=np.uint8)
    parts = connected_components(mask, connectivity=8)
    if parts.count > 0:
        areas = parts.areas[1:]
        small = (areas < speck_share * mask.size) & (areas < speck_of_largest * areas.max())
        keep = np.concatenate([[False], ~small])
        mask = keep[parts.labels].astype(np.uint8)
    # Holes: background not connected to the border (padded by one pixel so the border is one region).
    padded = np.pad(1 - mask, 1, constant_values=1)
    background = connected_components(padded, connectivity=4).labels
    outside = background[1:-1, 1:-1] == background[0, 0]
    return ~outside


@dataclass(frozen=True)
class Lung:
    """One lung's connected component: pixels, bounding box (row0, col0, row1, col1; ends exclusive)
    and centroid (row, col), in the image's pixel grid (measured at the model's grid and scaled, so to
    within one model pixel; ``LungFields.mask`` itself is at full resolution). ``side`` is where it
    lies in the image (``image-left`` is the patient's right on a PA or AP film in the usual orientation)."""

    side: str
    area: int
    bbox: tuple[int, int, int, int]
    centroid: tuple[float, float]


@dataclass(frozen=True)
class LungFields:
    """A lung mask in the image's own pixel grid and what the plausibility check made of it."""

    mask: np.ndarray  # bool (rows, cols)
    lungs: tuple[Lung, ...]  # the two lungs, image-left first; empty when not found
    warning: str | None
    model_name: str = ""

    @property
    def found(self) -> bool:
        """True when the mask passed the plausibility check (two lungs, no warning)."""
        return self.warning is None

    def as_png_array(self) -> np.ndarray:
        """uint8 (rows, cols): 255 = lung, 0 elsewhere."""
        return np.where(self.mask, 255, 0).astype(np.uint8)

    def box(self, margin: float = 0.05, bottom: float | None = None, sides: float | None = None
            ) -> tuple[int, int, int, int] | None:
        """The lungs' bounding box (row0, col0, row1, col1; ends exclusive) widened by ``margin`` of the
        box's height above, ``bottom`` (default ``margin``) of it below, and ``sides`` (default ``margin``) of its
        width left and right, clipped to the image; ``None`` when not found.

        The classifier input of the lung-box preprocessings (cxr-pre-2, cxr-pre-3) is cropped to it
        (``cxr_engine.pixels.input_frame``).
        """
        if not self.found:
            return None
        rows = np.flatnonzero(self.mask.any(axis=1))
        cols = np.flatnonzero(self.mask.any(axis=0))
        r0, r1, c0, c1 = int(rows[0]), int(rows[-1]) + 1, int(cols[0]), int(cols[-1]) + 1
        bottom = margin if bottom is None else bottom
        sides = margin if sides is None else sides
        up, down = int(round(margin * (r1 - r0))), int(round(bottom * (r1 - r0)))
        dc = int(round(sides * (c1 - c0)))
        height, width = self.mask.shape
        return max(0, r0 - up), max(0, c0 - dc), min(height, r1 + down), min(width, c1 + dc)


def check_plausibility(mask: np.ndarray, scale: tuple[float, float] = (1.0, 1.0)
                       ) -> tuple[tuple[Lung, ...], str | None]:
    """The two lungs in ``mask`` and ``None``, or ``()`` and :data:`NOT_FOUND_WARNING`.

    ``scale`` (rows, cols) maps ``mask``'s pixels to the image's: the lungs' areas, boxes and
    centroids are given in the image's pixel grid (to within one ``mask`` pixel).

    Plausible: the two largest connected components each cover a sensible share of the image
    (``LUNG_AREA_SHARE``), lie on either side of the image's vertical midline at a similar height
    within ``CENTRE_ROWS``, are not too unequal (``MIN_AREA_RATIO``), and what lies outside them is
    small (``MAX_STRAY_SHARE`` of the mask). Positions are fractions of the sides, so the check does
    not depend on the image's size or aspect.
    """
    rows, cols = mask.shape
    parts = connected_components(mask, connectivity=8)
    if parts.count < 2:
        return (), NOT_FOUND_WARNING
    centroids = parts.centroids
    two = sorted(parts.largest_first()[:2], key=lambda i: centroids[i][0])
    areas = [int(parts.areas[i]) for i in two]
    total = rows * cols
    shares = [a / total for a in areas]
    centres = [(float(centroids[i][1]) / rows, float(centroids[i][0]) / cols) for i in two]
    stray = 1.0 - sum(areas) / max(1, int(mask.sum()))
    plausible = (
        all(LUNG_AREA_SHARE[0] <= s <= LUNG_AREA_SHARE[1] for s in shares)
        and centres[0][1] < 0.5 < centres[1][1]
        and all(CENTRE_ROWS[0] <= c[0] <= CENTRE_ROWS[1] for c in centres)
        and abs(centres[0][0] - centres[1][0]) <= MAX_ROW_OFFSET
        and min(areas) / max(areas) >= MIN_AREA_RATIO
        and stray <= MAX_STRAY_SHARE
    )
    if not plausible:
        return (), NOT_FOUND_WARNING
    lungs = []
    sy, sx = scale
    for side, i, area in zip(("image-left", "image-right"), two, areas):
        x, y, w, h = (int(v) for v in parts.boxes[i])
        box = (int(round(y * sy)), int(round(x * sx)), int(round((y + h) * sy)), int(round((x + w) * sx)))
        centre = ((float(centroids[i][1]) + 0.5) * sy - 0.5, (float(centroids[i][0]) + 0.5) * sx - 0.5)
        lungs.append(Lung(side, int(round(area * sy * sx)), box, centre))
    return tuple(lungs), None


# --------------------------------------------------------------------------- the segmenter

def fields_from_probability(probability: np.ndarray, shape: tuple[int, int], threshold: float = 0.5,
                            model_name: str = "") -> LungFields:
    """:class:`LungFields` at ``shape`` (rows, cols) from the model-grid lung probability.

    Specks and holes are removed at the model grid (``clean_mask``), where it is cheap, by clamping the
    probability below the threshold outside the cleaned mask and to at least the threshold inside it;
    bilinear resizing then cannot bring a removed speck or hole back (a value interpolated between
    values on one side of the threshold stays there). The plausibility check also runs at the model
    grid; the lungs' geometry is scaled to the image.
    """
    prob = np.asarray(probability, dtype=np.float32)
    low = clean_mask(prob >= threshold)
    below = np.nextafter(np.float32(threshold), np.float32(0))
    adjusted = np.where(low, np.maximum(prob, threshold), np.minimum(prob, below)).astype(np.float32)
    mask = mask_at_grid(adjusted, shape, threshold)
    scale = (shape[0] / prob.shape[0], shape[1] / prob.shape[1])
    lungs, warning = check_plausibility(low, scale)
    return LungFields(mask, lungs, warning, model_name)


def _display_and_padding(image) -> tuple[np.ndarray, np.ndarray | None]:
    from ..pixels.image import CxrImage

    if isinstance(image, CxrImage):
        return image.display(), image.padding
    return np.asarray(image), None


class LungSegmenter:
    """The lung model on ONNX Runtime (``backend="onnx"``, torch-free) or torch; thread-safe, loads lazily."""

    def __init__(self, card: LungModelCard, backend: str = "auto", threads: int | None = None):
        if backend not in ("auto", "onnx", "torch"):
            raise ValueError(f"backend must be auto, onnx or torch, got {backend!r}")
        self.card = card
        self.backend = backend
        self.threads = threads
        self._run = None
        self._lock = threading.RLock()

    @property
    def name(self) -> str:
        return self.card.name

    def load(self) -> "LungSegmenter":
        """Verify the model file against the card's sha256 and load it now (otherwise the first call
        does). ``ModelIntegrityError`` on a digest mismatch; ``ModelError`` when the file cannot be
        read, is not the export of the card's weights, or (torch) its dependencies are missing."""
        with self._lock:
            if self._run is not None:
                return self
            backend = self.backend
            if backend == "auto":
                from ..libraries import library_installed

                backend = "onnx" if library_installed("onnxruntime") else "torch"
            self._run = self._load_onnx() if backend == "onnx" else self._load_torch()
            self.backend = backend
        return self

    def _load_onnx(self):
        from ..libraries import import_onnxruntime

        onnxruntime = import_onnxruntime()

        data = verified_bytes(self.card.onnx_path, self.card.onnx_sha256, "ONNX file named by the lung model card")
        options = onnxruntime.SessionOptions()
        if self.threads:
            options.intra_op_num_threads = self.threads
        try:
            session = onnxruntime.InferenceSession(data, options, providers=["CPUExecutionProvider"])
        except Exception as exc:  # onnxruntime raises its own, unexported error types
            raise ModelError(f"{self.card.onnx_path}: ONNX Runtime cannot load it ({exc})") from exc
        meta = session.get_modelmeta().custom_metadata_map
        if meta.get(META_FORMAT) != FORMAT or meta.get(META_WEIGHTS_SHA256) != self.card.weights_sha256.lower():
            raise ModelError(f"{self.card.onnx_path}: not the export of the weights the lung model card names")
        shape = session.get_inputs()[0].shape
        if list(shape[1:]) != [self.card.in_chans, self.card.input_size, self.card.input_size]:
            raise ModelError(f"{self.card.onnx_path}: input shape {shape} does not fit the model card")

        def run(batch: np.ndarray) -> np.ndarray:
            return session.run([OUTPUT_NAME], {INPUT_NAME: batch})[0][:, 0]

        return run

    def _load_torch(self):
        try:
            import segmentation_models_pytorch as smp
            import torch
            from safetensors.torch import load
        except ImportError as exc:
            raise ModelError(f"the torch lung-model path needs torch and segmentation-models-pytorch ({exc}); "
                             "use the ONNX Runtime backend") from exc
        data = verified_bytes(self.card.weights_path, self.card.weights_sha256, "weights file named by the lung model card")
        model = smp.Unet(self.card.encoder, encoder_weights=None, in_channels=self.card.in_chans, classes=1,
                         decoder_channels=tuple(self.card.decoder_channels))
        state = {k: v.float() for k, v in load(data).items()}
        try:
            model.load_state_dict(state, strict=True)
        except RuntimeError as exc:
            raise ModelError(f"{self.card.weights_path}: weights do not fit the lung U-Net ({exc})") from exc
        model.eval()

        def run(batch: np.ndarray) -> np.ndarray:
            with torch.no_grad():
                return torch.sigmoid(model(torch.from_numpy(batch)))[:, 0].numpy()

        return run

    def model_input(self, display: np.ndarray, padding: np.ndarray | None = None) -> np.ndarray:
        """(in_chans, size, size) float32: the engine's preprocessing at the card's input size."""
        from ..pixels.preprocessing import normalise, resize_and_stretch

        grey = resize_and_stretch(display, self.card.input_size, padding)
        return normalise(grey, tuple(self.card.mean), tuple(self.card.std), self.card.in_chans)

    def predict(self, batch: np.ndarray) -> np.ndarray:
        """(N, in_chans, size, size) float32 model input (:meth:`model_input`) -> (N, size, size) float32
        lung probabilities in [0, 1] at the model's input grid; loads the model first if needed."""
        with self._lock:
            self.load()
            return np.asarray(self._run(batch), dtype=np.float32)

    def probabilities(self, images: Sequence) -> np.ndarray:
        """(N, size, size) float32 lung probabilities at the model's input grid."""
        return self.predict(np.stack([self.model_input(*_display_and_padding(image)) for image in images]))

    def segment(self, image, display: np.ndarray | None = None) -> LungFields:
        """Lung fields of one ``CxrImage`` (or a 2-D array of presentation values) at its own pixel grid;
        ``display`` is the image's presentation values when the caller already has them."""
        if display is None:
            display, padding = _display_and_padding(image)
        else:
            padding = image.padding if hasattr(image, "padding") else None
        if display.ndim != 2:
            raise ValueError(f"expected a 2-D greyscale image, got shape {display.shape}")
        prob = self.predict(self.model_input(display, padding)[None])[0]
        return fields_from_probability(prob, display.shape, self.card.threshold, self.card.name)

    def close(self) -> None:
        with self._lock:
            self._run = None


_DEFAULT: LungSegmenter | None = None
_DEFAULT_LOCK = threading.Lock()


def default_segmenter() -> LungSegmenter:
    """One shared segmenter for the bundled lung model (created on first use)."""
    global _DEFAULT
    with _DEFAULT_LOCK:
        if _DEFAULT is None:
            _DEFAULT = LungSegmenter(lung_card())
        return _DEFAULT


def segment_lungs(image, segmenter: LungSegmenter | None = None) -> LungFields:
    """Lung fields of ``image`` (a ``CxrImage`` or a 2-D array of presentation values) at its own pixel grid."""
    return (segmenter or default_segmenter()).segment(image)
