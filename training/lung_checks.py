"""Checks against each film's own lung fields (the bundled lung-field model, ``cxr_engine.models.lung_fields``).

- **Lungs-masked test with the film's own mask**: the unnormalised model input's lung fields, dilated
  by ``DILATE_FRACTION`` of the side (so the lung edges and costophrenic angles go too), are
  filled with the median of the rest of the image; a model that still scores well reads
  something outside the lungs. A film whose lung fields are not found falls back to the fixed
  rectangle of ``training.evaluate`` (counted in the report).
- **Heat-map in lungs**: the share of a Grad-CAM's positive mass that lies inside the lung mask,
  per predicted class. A model looking at the lungs scores high; one looking at the heart,
  the mediastinum, the shoulders or text scores low.
"""
from __future__ import annotations

from typing import Callable, Sequence

import cv2
import numpy as np

from cxr_engine.models.model_card import CLASSES

#: Dilation of the lung mask before blanking, as a fraction of the image side.
DILATE_FRACTION = 0.03


def mask_at_size(mask: np.ndarray, size: int) -> np.ndarray:
    """A bool mask resized (nearest) to ``size`` x ``size``, the unnormalised model input's grid."""
    return cv2.resize(mask.astype(np.uint8), (size, size), interpolation=cv2.INTER_NEAREST).astype(bool)


def dilated(mask: np.ndarray, fraction: float = DILATE_FRACTION) -> np.ndarray:
    radius = max(1, int(round(fraction * min(mask.shape))))
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius + 1, 2 * radius + 1))
    return cv2.dilate(mask.astype(np.uint8), kernel).astype(bool)


def blank_lungs(grey: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """A copy of the unnormalised model input with ``mask`` filled by the median of the pixels outside it."""
    out = grey.copy()
    outside = grey[~mask]
    out[mask] = float(np.median(outside)) if outside.size else 0.5
    return out


def own_lungs_masked_display(path: str, size: int, segmenter, fallback: Callable[[np.ndarray], np.ndarray]
                             ) -> tuple[np.ndarray, bool]:
    """(unnormalised model input of ``path`` with its own dilated lung fields blanked, lungs found?).

    When the lung fields are not found, ``fallback`` (the fixed-rectangle blanking) is applied instead.
    """
    from cxr_engine.reading.read import read_image
    from cxr_engine.models.classifier import unnormalised_input

    image = read_image(path)
    grey = unnormalised_input(image, size)
    fields = segmenter.segment(image)
    if not fields.found:
        return fallback(grey), False
    return blank_lungs(grey, dilated(mask_at_size(fields.mask, size))), True


def heatmap_share_in_mask(heatmap: np.ndarray, mask: np.ndarray) -> float | None:
    """Share of the heat-map's positive mass inside ``mask`` (same shape); None for an empty map."""
    positive = np.clip(heatmap.astype(np.float64), 0.0, None)
    total = positive.sum()
    return float(positive[mask].sum() / total) if total > 0 else None


def heatmap_in_lungs_section(classifier, segmenter, rows: Sequence[dict], per_class: int, seed: int) -> dict:
    """Grad-CAM of the predicted class on up to ``per_class`` test films of each true class (seeded):
    the share of its positive mass inside the film's own lung mask, per predicted class."""
    from cxr_engine.reading.read import read_image

    rng = np.random.default_rng(seed)
    picked = []
    for label in CLASSES:
        pool = [r for r in rows if r["label"] == label]
        take = rng.choice(len(pool), size=min(per_class, len(pool)), replace=False) if pool else []
        picked += [pool[i] for i in sorted(take)]
    films, not_found = [], 0
    for row in picked:
        image = read_image(row["path"])
        fields = segmenter.segment(image)
        if not fields.found:
            not_found += 1
            continue
        heatmap_result = classifier.predict_with_heatmap(image)
        share = heatmap_share_in_mask(heatmap_result.heatmap, fields.mask)
        if share is not None:
            films.append({"file": row["path"], "label": row["label"], "pred": heatmap_result.target_class,
                          "share_in_lungs": share, "lung_area_share": float(fields.mask.mean())})
    by_class = {}
    for label in CLASSES:
        values = np.array([f["share_in_lungs"] for f in films if f["pred"] == label])
        by_class[label] = _distribution(values)
    values = np.array([f["share_in_lungs"] for f in films])
    lowest = sorted(films, key=lambda f: f["share_in_lungs"])[:5]
    return {"n": len(films), "lungs_not_found": not_found, "all": _distribution(values), "by_predicted_class": by_class,
            "mean_lung_area_share": float(np.mean([f["lung_area_share"] for f in films])) if films else None,
            "lowest": lowest}


def _distribution(values: np.ndarray) -> dict:
    if not len(values):
        return {"n": 0}
    q = np.percentile(values, [10, 25, 50, 75, 90])
    return {"n": int(len(values)), "mean": float(values.mean()), "p10": float(q[0]), "p25": float(q[1]),
            "median": float(q[2]), "p75": float(q[3]), "p90": float(q[4])}


def heatmap_in_lungs_lines(section: dict | None, table: Callable) -> list[str]:
    lines = ["## Heat-map in lungs", ""]
    if not section:
        return lines + ["Not run (no lung-field model, or `--no-lung-checks`).", ""]
    lines += ["Share of each Grad-CAM's positive mass (predicted class) inside the film's own lung mask "
              f"(the bundled lung-field model), on {section['n']} test films drawn per true class; the lungs "
              f"cover {section['mean_lung_area_share']:.2f} of the image on average, so a map spread evenly "
              "would score about that. Lung fields not found on "
              f"{section['lungs_not_found']} films (left out).", ""]
    body = [["all", *(_cells(section["all"]))]]
    body += [[label, *(_cells(d))] for label, d in section["by_predicted_class"].items()]
    lines += table(["predicted", "n", "mean", "p10", "median", "p90"], body)
    lines += ["", "Lowest shares: " + "; ".join(f"`{f['file'].rsplit('/', 1)[-1]}` ({f['label']} → {f['pred']}, "
                                                 f"{f['share_in_lungs']:.2f})" for f in section["lowest"]), ""]
    return lines


def _cells(d: dict) -> list:
    return [d.get("n", 0), d.get("mean"), d.get("p10"), d.get("median"), d.get("p90")]


def main(argv: Sequence[str] | None = None) -> int:
    """Heat-map in lungs for one model card on a split, without a whole evaluation.

    ``python -m training.lung_checks --card resources/models/efficientnet-lite0.json --manifest
    training/work/curated/split_manifest.csv`` prints the section's JSON (the five lowest included).
    """
    import argparse
    import json
    from pathlib import Path

    from cxr_engine.models.lung_fields import LungSegmenter, lung_card
    from cxr_engine.models.model_card import ModelCard
    from cxr_engine.models.weights import load_model

    from .evaluate import make_classifier, split_rows

    parser = argparse.ArgumentParser(prog="python -m training.lung_checks", description=main.__doc__.split("\n\n")[0])
    parser.add_argument("--card", type=Path, required=True, help="classifier model card JSON")
    parser.add_argument("--manifest", type=Path, required=True, help="split manifest from training.curate")
    parser.add_argument("--split", default="test", choices=("train", "val", "test"))
    parser.add_argument("--films-per-class", type=int, default=50, help="films per true class (default 50)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--lung-model", default=None, help="lung-field model card (default: the bundled lung-unet)")
    args = parser.parse_args(argv)
    card = ModelCard.load(args.card)
    classifier = make_classifier(card, "cpu", model=load_model(card))
    segmenter = LungSegmenter(lung_card(args.lung_model))
    rows = split_rows(args.manifest, args.split, None, args.seed)
    section = heatmap_in_lungs_section(classifier, segmenter, rows, args.films_per_class, args.seed)
    print(json.dumps({"card": str(args.card), "split": args.split, "heatmap_in_lungs": section}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
