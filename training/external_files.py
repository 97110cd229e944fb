"""Calls on unlabelled images from outside the dataset (``--external DIR``), e.g. real DICOM files.

No labels, so no metric: the table lets a reader see whether the model calls ordinary films from
an unseen source something plausible (a study described as "No Finding" should not be COVID-19),
and whether it calls nearly everything one class, the sign of a source shortcut.
"""
from __future__ import annotations

from pathlib import Path
from typing import Callable

import numpy as np

from cxr_engine.errors import ImageReadError
from cxr_engine.model_card import CLASSES

from . import metrics as M

SUFFIXES = {".dcm", ".dicom", ".png", ".jpg", ".jpeg", ".tif", ".tiff", ""}


def external_files(folder: Path) -> list[Path]:
    """Image-like files under ``folder`` (DICOM files often have no suffix), sorted."""
    return sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in SUFFIXES)


def external_section(classifier, folder: Path, temperature: float) -> dict:
    """One row per file: what the header says and the temperature-scaled probabilities."""
    from cxr_engine.io import read_image

    rows = []
    for path in external_files(folder):
        row = {"file": path.name}
        try:
            image = read_image(path)
        except ImageReadError as error:
            rows.append({**row, "error": str(error)})
            continue
        meta = image.metadata
        probs = M.softmax(M.as_logits(classifier.predict([image])), temperature)[0]  # classifier at T = 1
        rows.append({**row, "modality": meta.modality if meta else "", "view": meta.view_position if meta else "",
                     "description": meta.study_description if meta else "",
                     "predicted": CLASSES[int(np.argmax(probs))],
                     "probabilities": {c: float(p) for c, p in zip(CLASSES, probs)}})
    called = M.prediction_counts((r["predicted"] for r in rows if "predicted" in r), CLASSES)
    return {"folder": str(folder), "files": rows, "predicted": called}


def external_lines(section: dict | None, table: Callable) -> list[str]:
    lines = ["## Unlabelled files from outside the dataset", ""]
    if not section:
        return lines + ["Not run (give `--external DIR`).", ""]
    lines += [f"Every file in `{section['folder']}`, through `read_image` → `Classifier.predict` (T applied). "
              "No diagnoses are known, so this is a plausibility check, not a metric. Called "
              + ", ".join(f"{c} {n}" for c, n in section["predicted"].items()) + ".", ""]
    body = []
    for row in section["files"]:
        if "error" in row:
            body.append([row["file"], "", "", "", "unreadable: " + row["error"], *([None] * len(CLASSES))])
        else:
            body.append([row["file"], row["modality"], row["view"], row["description"], row["predicted"],
                         *(row["probabilities"][c] for c in CLASSES)])
    return lines + table(["file", "modality", "view", "study description", "called", *(f"p({c})" for c in CLASSES)],
                         body)
