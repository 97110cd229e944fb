"""Calls on unlabelled images from outside the dataset (``--external DIR``), e.g. real DICOM files.

No labels, so no metric: the table lets a reader see whether the model calls ordinary films from
an unseen source something plausible (a study described as "No Finding" should not be COVID-19),
and whether it calls nearly everything one class, the sign of a source shortcut.
"""
from __future__ import annotations

import csv
from pathlib import Path
from typing import Callable

import numpy as np

from cxr_engine.errors import ImageReadError
from cxr_engine.models.model_card import CLASSES

from . import metrics as M

SUFFIXES = {".dcm", ".dicom", ".png", ".jpg", ".jpeg", ".tif", ".tiff", ""}


def external_files(folder: Path) -> list[Path]:
    """Image-like files under ``folder`` (DICOM files often have no suffix), sorted."""
    return sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in SUFFIXES)


def folder_labels(folder: Path) -> dict[str, str]:
    """``file -> label`` from ``folder/labels.csv`` (columns ``file``, ``label``) when present, else empty."""
    path = folder / "labels.csv"
    if not path.is_file():
        return {}
    with open(path, newline="", encoding="utf-8") as f:
        return {row["file"]: row["label"] for row in csv.DictReader(f) if row.get("file") and row.get("label")}


def labelled_summary(rows: list[dict]) -> dict:
    """Per reader's label: how many files and what they were called (``other`` has no right answer)."""
    summary = {}
    for label in sorted({r["label"] for r in rows if r.get("label") and "predicted" in r}):
        called = [r["predicted"] for r in rows if r.get("label") == label and "predicted" in r]
        summary[label] = {"n": len(called), "predicted": M.prediction_counts(called, CLASSES),
                          "correct": sum(c == label for c in called) if label in CLASSES else None}
    return summary


def external_section(classifier, folder: Path, temperature: float) -> dict:
    """One row per file: what the header says, the reader's label when ``labels.csv`` gives one,
    and the temperature-scaled probabilities."""
    from cxr_engine.reading.read import read_image

    labels = folder_labels(folder)
    rows = []
    for path in external_files(folder):
        if path.name == "labels.csv":
            continue
        row = {"file": path.name, "label": labels.get(path.name, "")}
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
    return {"folder": str(folder), "files": rows, "predicted": called,
            "by_label": labelled_summary(rows) if labels else None}


def external_lines(section: dict | None, table: Callable) -> list[str]:
    lines = ["## Unlabelled files from outside the dataset", ""]
    if not section:
        return lines + ["Not run (give `--external DIR`).", ""]
    lines += [f"Every file in `{section['folder']}`, through `read_image` → `Classifier.predict` (T applied). "
              "No diagnoses are known, so this is a plausibility check, not a metric. Called "
              + ", ".join(f"{c} {n}" for c, n in section["predicted"].items()) + ".", ""]
    if section.get("by_label"):
        lines += ["Against the readers' labels in `labels.csv` (`other` = abnormal, none of the three classes):", ""]
        lines += table(["label", "n", "called n/p/c", "correct"],
                       [[label, row["n"], "/".join(str(row["predicted"][c]) for c in CLASSES),
                         "" if row["correct"] is None else row["correct"]] for label, row in section["by_label"].items()])
        lines.append("")
    body = []
    for row in section["files"]:
        if "error" in row:
            body.append([row["file"], row.get("label", ""), "", "", "", "unreadable: " + row["error"],
                         *([None] * len(CLASSES))])
        else:
            body.append([row["file"], row.get("label", ""), row["modality"], row["view"], row["description"],
                         row["predicted"], *(row["probabilities"][c] for c in CLASSES)])
    return lines + table(["file", "label", "modality", "view", "study description", "called",
                          *(f"p({c})" for c in CLASSES)], body)
