"""Processing-shift test: does the call survive a change in how the image was made?

Sources differ in resolution, sharpening, noise and compression, and in cxr3 those differences
line up with the label (the adult normals are the smoothest images). A model that reads them
calls a sharp or noisy normal film COVID-19, and every real detector's image is sharper and
noisier than a resampled web JPEG. Each shift below is applied, with fixed settings, to the
unnormalised model input of each test image before it goes through ``Classifier.predict`` again; a robust model's
accuracy barely moves. The settings sit inside the ranges that ``training.data.AcquisitionShift``
draws from during training, so this measures whether that invariance was learned, not how the
model does on an unseen hospital (the leave-one-source-out run estimates that).
"""
from __future__ import annotations

import hashlib
from typing import Callable, Sequence

import cv2
import numpy as np

from cxr_engine.models.model_card import CLASSES

from . import metrics as M
from .degradation import recompressed, resampled, sharpened
from .report_sections import section_lines

#: Largest accuracy drop under any shift that still counts as "reads the disease, not the processing".
SHIFT_MARGIN = 0.05


def _seed(path: str) -> int:
    """A per-file noise seed, so a shifted image (and its cached logits) never changes between runs."""
    return int.from_bytes(hashlib.sha256(path.encode()).digest()[:4], "little")


def sharpen(grey: np.ndarray, path: str) -> np.ndarray:
    return sharpened(grey, 1.0, 1.0)


def blur(grey: np.ndarray, path: str) -> np.ndarray:
    return cv2.GaussianBlur(grey, (0, 0), 0.8)


def noise(grey: np.ndarray, path: str) -> np.ndarray:
    return grey + np.random.default_rng(_seed(path)).normal(0.0, 0.015, grey.shape).astype(np.float32)


def half_resolution(grey: np.ndarray, path: str) -> np.ndarray:
    return resampled(grey, 2.0)


def jpeg_q40(grey: np.ndarray, path: str) -> np.ndarray:
    return recompressed(np.clip(grey, 0.0, 1.0), 40)


#: name -> (what it does, function of (unnormalised model input, file path)).
SHIFTS: dict[str, tuple[str, Callable[[np.ndarray, str], np.ndarray]]] = {
    "sharpen": ("unsharp mask, sigma 1 px, amount 1", sharpen),
    "blur": ("Gaussian blur, sigma 0.8 px", blur),
    "noise": ("additive Gaussian noise, sd 0.015 of the grey range (seeded per file)", noise),
    "half resolution": ("down-sampled 2x (area) and back (bilinear)", half_resolution),
    "jpeg q40": ("JPEG recompression at quality 40", jpeg_q40),
}


def whole_film_unnormalised_input(path: str, size: int) -> np.ndarray:
    """The engine's unnormalised model input of the film at ``path``: (size, size) float32 in [0, 1], always
    the whole film (cxr-pre-1 steps 1–3), which the processing and framing shifts change. The classifier
    then applies its own preprocessing to the shifted image, so a cxr-pre-2 (lung box) model segments
    the shifted film again and crops that."""
    from cxr_engine.reading.read import read_image
    from cxr_engine.models.classifier import unnormalised_input

    return unnormalised_input(read_image(path), size)


def shifted_display(path: str, size: int, name: str) -> np.ndarray:
    """:func:`whole_film_unnormalised_input` of ``path`` after shift ``name``, clipped to [0, 1]."""
    return np.clip(SHIFTS[name][1](whole_film_unnormalised_input(path, size), path), 0.0, 1.0).astype(np.float32)


def shift_section(labels: Sequence[int], plain_logits: np.ndarray, shifted: dict[str, np.ndarray],
                  temperature: float, shifts: dict | None = None, margin: float = SHIFT_MARGIN) -> dict:
    """Per shift: accuracy, its drop from the plain test, macro-F1, recalls, predictions changed.

    ``shifts`` is the registry the names come from (default: this module's ``SHIFTS``); ``margin``
    is the limit its check applies, recorded with the section.
    """
    shifts = SHIFTS if shifts is None else shifts
    labels = np.asarray(labels)
    plain = M.summarise(labels, M.softmax(plain_logits, temperature), CLASSES)
    plain_preds = np.argmax(plain_logits, axis=1)
    rows = {}
    for name, logits in shifted.items():
        summary = M.summarise(labels, M.softmax(logits, temperature), CLASSES)
        preds = np.argmax(logits, axis=1)
        rows[name] = {
            "description": shifts[name][0], "n": summary["n"], "accuracy": summary["accuracy"],
            "accuracy_drop": plain["accuracy"] - summary["accuracy"], "macro_f1": summary["macro_f1"],
            "recall": summary["recall"], "changed": float(np.mean(preds != plain_preds)) if len(preds) else 0.0,
            "predicted": M.prediction_counts((CLASSES[p] for p in preds), CLASSES),
        }
    return {"plain_accuracy": plain["accuracy"], "margin": margin, "shifts": rows}


def shifts_over(section: dict | None, key: str, margin: float, message: Callable[[str, float], str]) -> list[str]:
    """``message(name, value)`` for every shift of ``section`` whose ``key`` exceeds ``margin``."""
    if not section:
        return []
    return [message(name, row[key]) for name, row in section["shifts"].items() if row[key] > margin]


def check_shifts(section: dict | None) -> list[str]:
    """A failure line for every shift that costs more than ``SHIFT_MARGIN`` of accuracy."""
    return shifts_over(section, "accuracy_drop", SHIFT_MARGIN,
                       lambda name, drop: f"accuracy under '{name}' drops {drop:.3f} > {SHIFT_MARGIN:.2f}: "
                                          "the model reads how the image was processed")


def shift_lines(section: dict | None, table: Callable) -> list[str]:
    """The report's section (``table`` is the report's markdown table helper)."""
    def body(section: dict) -> list[str]:
        return ["Each shift was applied with fixed settings to every test image's unnormalised model input, "
                "which then went through `Classifier.predict` again. Sources differ in exactly these respects, "
                "so a model that loses accuracy here reads how an image was made rather than the lungs. The settings lie inside "
                "the training's `AcquisitionShift` ranges: this shows whether that invariance was learned. "
                f"Plain test accuracy {section['plain_accuracy']:.3f}; allowed drop {section['margin']:.2f}.", ""
                ] + shifts_table(section, table, before_recall=[("macro-F1", "macro_f1")],
                                 after_recall=[("predictions changed", "changed")])
    return section_lines("Processing-shift test", section, "Not run (`--no-shift-test`).", body)


def shifts_table(section: dict, table: Callable, before_recall: Sequence[tuple[str, str]],
                 after_recall: Sequence[tuple[str, str]] = ()) -> list[str]:
    """One row per shift of ``section``: name, description, accuracy, drop, the ``(header, key)`` measures of
    ``before_recall``, each class's recall, those of ``after_recall``, the predicted counts (n/p/c)."""
    header = ["shift", "what", "accuracy", "drop", *(h for h, _ in before_recall), *(f"recall {c}" for c in CLASSES),
              *(h for h, _ in after_recall), "predicted n/p/c"]
    return table(header, [[name, row["description"], row["accuracy"], row["accuracy_drop"],
                           *(row[key] for _, key in before_recall), *(row["recall"][c] for c in CLASSES),
                           *(row[key] for _, key in after_recall), "/".join(str(row["predicted"][c]) for c in CLASSES)]
                          for name, row in section["shifts"].items()])
