"""The one definition of the model's input, shared by training and inference.

A model card records the preprocessing version its model was trained with
(``preprocessing_version``); the engine refuses a card whose version it does not know
(:data:`PREPROCESSING_VERSIONS`). Three versions exist:

- ``cxr-pre-1`` (:data:`PREPROCESSING_VERSION`, the default): steps 1–4 below on the whole image.
- ``cxr-pre-2`` (:data:`LUNG_BOX_VERSION`, "lung box"): the bundled lung model segments the image
  (``cxr_engine.models.lung_fields.segment_lungs``, on ONNX Runtime when it is installed, else torch); the
  image is cropped to the lungs' bounding box widened by :data:`LUNG_BOX_MARGIN` (10 %) of the box's
  height and width on each side and clipped to the image; then steps 2–4 run on the crop. When the
  lung fields are not found (the plausibility check fails) the whole image is used, as cxr-pre-1, and a
  warning is logged naming the file. The crop box is where the heat-map is placed back
  (``cxr_engine.pixels.input_frame``, ``cxr_engine.models.classifier.heatmap_in_image_geometry``).
- ``cxr-pre-3`` (:data:`WIDE_LUNG_BOX_VERSION`): cxr-pre-2 with the box widened by 10 % of its height above, 25 %
  below and 15 % of its width at each side (:data:`LUNG_BOX_MARGINS`).

Both versions first cut off a border of padding (Pixel Padding Value, PS3.3 C.7.5.1.1.2: not image data;
``cxr_engine.pixels.input_frame.content_box``): a DICOM film whose padding frames its image data is seen
inside the data's bounding box, and its heat-map is placed back there. The training films (PNG/JPEG) carry
no padding, so this changes nothing the models were trained or measured on.

Pipeline of cxr-pre-1:

1. Start from the presentation values: ``CxrImage.display()`` — modality LUT, the default VOI and
   MONOCHROME1 / Presentation LUT Shape INVERSE inversion applied (PS3.3 C.11), float32 in [0, 1] at
   full dynamic range (not 8-bit). PNG/JPEG files are their pixel values / 255.
2. Resize the whole image (no crop, no padding) to ``size``×``size`` with area interpolation
   when shrinking; the aspect ratio is not kept, so a heat-map resized back to the image's
   shape lines up with it exactly. Padding was avoided on purpose: black bars would appear
   only on non-square sources and become a shortcut.
3. Robust contrast stretch: map the 0.5th..99.5th percentile to 0..1 and clip, so that the
   model does not learn a source's exposure, bit depth or window habits. Pixels marked as
   padding (``CxrImage.padding``: Pixel Padding Value, PS3.3 C.7.5.1.1.2) do not count towards
   the percentiles, so a padded border cannot wash the anatomy out; without padding nothing changes.
4. Replicate to ``in_chans`` channels and normalise with the model's mean and std.

Steps 1–3 give ``resize_and_stretch``'s greyscale [0, 1] image, the unnormalised model input, where
training applies its augmentations; step 4 is ``normalise`` (input normalisation with the card's mean
and std).
"""
from __future__ import annotations

import numpy as np

from .resampling import resize_area, resize_bilinear

PREPROCESSING_VERSION = "cxr-pre-1"
LUNG_BOX_VERSION = "cxr-pre-2"
#: cxr-pre-3, "lung box, open at the bases": cxr-pre-2 with the box widened more below and at the sides, since the
#: lung model stops at the visible edge of a basal consolidation (its worst test films all lose the bases) and a
#: cxr-pre-2 network lost adult pneumonia (training/README, ``lite0_224_sqrt_pre2``). Measured, not used by a
#: bundled model: it gained little of the adult decision and lost the framing (``lite0_224_sqrt_pre3``).
WIDE_LUNG_BOX_VERSION = "cxr-pre-3"
PREPROCESSING_VERSIONS = (PREPROCESSING_VERSION, LUNG_BOX_VERSION, WIDE_LUNG_BOX_VERSION)
#: cxr-pre-2: the lungs' bounding box is widened by this share of its height and width on every side.
LUNG_BOX_MARGIN = 0.10
#: The lung-box versions' margins, each a share of the box's height (top, bottom) or width (left and right alike).
LUNG_BOX_MARGINS = {LUNG_BOX_VERSION: {"top": LUNG_BOX_MARGIN, "bottom": LUNG_BOX_MARGIN, "sides": LUNG_BOX_MARGIN},
                    WIDE_LUNG_BOX_VERSION: {"top": 0.10, "bottom": 0.25, "sides": 0.15}}
STRETCH_PERCENTILES = (0.5, 99.5)


def is_lung_box(version: str | None) -> bool:
    """Whether preprocessing ``version`` crops the image to its lungs first (:data:`LUNG_BOX_MARGINS`)."""
    return version in LUNG_BOX_MARGINS


def check_preprocessing_version(version: str, where: object) -> None:
    """``ValueError`` naming ``where`` (a model card, a run) when ``version`` is not one this engine knows."""
    if version not in PREPROCESSING_VERSIONS:
        raise ValueError(f"{where}: unknown preprocessing_version {version!r} "
                         f"(this engine knows {', '.join(PREPROCESSING_VERSIONS)})")


def _as_unit_float(display: np.ndarray) -> np.ndarray:
    if display.dtype == np.uint8:
        return display.astype(np.float32) / 255.0
    if display.dtype.kind != "f":
        raise ValueError(f"presentation values must be uint8 or float in [0, 1], got {display.dtype}")
    if display.size and (np.nanmin(display) < -1e-3 or np.nanmax(display) > 1 + 1e-3):
        raise ValueError(
            f"presentation values must lie in [0, 1], got {np.nanmin(display):.3g}..{np.nanmax(display):.3g}"
        )
    return np.nan_to_num(display.astype(np.float32, copy=False), nan=0.0)


#: The fewest non-padding samples the stretch's percentiles are taken from; with fewer, all pixels count.
MIN_STRETCH_SAMPLES = 16


def contrast_stretch(grey: np.ndarray, keep: np.ndarray | None = None) -> np.ndarray:
    """Map the STRETCH_PERCENTILES of ``grey`` to [0, 1] and clip (float32).

    ``keep`` (bool, ``grey``'s shape) limits the pixels the percentiles are taken from (False =
    padding); every pixel is stretched either way.
    """
    step = max(1, min(grey.shape) // 256)
    sample = grey[::step, ::step]
    if keep is not None:
        kept = sample[keep[::step, ::step]]
        sample = kept if kept.size >= MIN_STRETCH_SAMPLES else sample
    low, high = np.percentile(sample, STRETCH_PERCENTILES)
    if high - low < 1e-6:
        return np.zeros_like(grey, dtype=np.float32)
    return np.clip((grey - low) / (high - low), 0.0, 1.0).astype(np.float32)


def resize_and_stretch(display: np.ndarray, size: int, padding: np.ndarray | None = None) -> np.ndarray:
    """Steps 1–3, the unnormalised model input: ``display`` (2-D presentation values, float in [0, 1] or
    uint8) resized to a (size, size) float32 greyscale image and contrast-stretched to [0, 1].

    ``ValueError`` for an array that is not 2-D or not in [0, 1], or a ``padding`` of another shape.
    ``padding`` (bool, ``display``'s shape, True = padding) is left out of the contrast stretch's
    percentiles; a model-input pixel counts as padding when more than half of it was.
    """
    if display.ndim != 2:
        raise ValueError(f"expected a 2-D greyscale image, got shape {display.shape}")
    grey = _as_unit_float(display)
    height, width = grey.shape
    shrinking = height >= size and width >= size
    resize = resize_area if shrinking else resize_bilinear
    resized = resize(grey, size, size)
    keep = None
    if padding is not None:
        if padding.shape != grey.shape:
            raise ValueError(f"padding mask {padding.shape} does not match the image {grey.shape}")
        keep = resize(padding.astype(np.float32), size, size) <= 0.5
    return contrast_stretch(resized, keep)


def normalise(grey: np.ndarray, mean: tuple[float, ...], std: tuple[float, ...], in_chans: int = 3) -> np.ndarray:
    """Step 4: (in_chans, H, W) float32 from a [0, 1] greyscale image."""
    if len(mean) != in_chans or len(std) != in_chans:
        raise ValueError(f"mean/std need {in_chans} values, got {mean} / {std}")
    mean_arr = np.asarray(mean, dtype=np.float32)[:, None, None]
    std_arr = np.asarray(std, dtype=np.float32)[:, None, None]
    stacked = np.broadcast_to(grey[None, :, :], (in_chans, *grey.shape))
    return ((stacked - mean_arr) / std_arr).astype(np.float32)


def to_model_input(
    display: np.ndarray, size: int, mean: tuple[float, ...], std: tuple[float, ...], in_chans: int = 3,
    padding: np.ndarray | None = None,
) -> np.ndarray:
    """The whole pipeline: presentation values → (in_chans, size, size) float32 model input."""
    return normalise(resize_and_stretch(display, size, padding), mean, std, in_chans)
