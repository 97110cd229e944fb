"""Contact sheets of the bundled lung model's masks, to look at films it was not trained on.

    python -m training.lung_gallery --out training/work/lung_gallery --kermany 20 \
        --files ../shared/data/dicom ../shared/data/dicom_rsna

Each tile is one film (read with the engine, shown with its default window) with the lung mask's
outline (red) and, under it, the file name and "ok" or the plausibility warning. Writes
``<group>.png`` per group (Kermany children drawn with a fixed seed from cxr3's manifest; the
given files and folders) and ``lung_gallery.csv`` (file, rows, cols, lung share, found, warning).
"""
from __future__ import annotations

import argparse
import csv
import os
import sys
from pathlib import Path
from typing import Sequence

import cv2
import numpy as np

from cxr_engine import find_images
from cxr_engine.reading.read import read_image
from cxr_engine.models.lung_fields import LungSegmenter, lung_card

DEFAULT_DATA = Path(os.environ.get("CXR_DATA", "../shared/data"))
TILE = 256


def tile(path: Path, segmenter: LungSegmenter) -> tuple[np.ndarray, dict]:
    image = read_image(path)
    display = image.display()
    fields = segmenter.segment(image)
    scale = TILE / max(display.shape)
    size = (max(1, round(display.shape[1] * scale)), max(1, round(display.shape[0] * scale)))
    grey = cv2.resize(display.astype(np.float32), size, interpolation=cv2.INTER_AREA)
    canvas = np.zeros((TILE + 36, TILE, 3), np.uint8)
    rgb = cv2.cvtColor((np.clip(grey, 0, 1) * 255).astype(np.uint8), cv2.COLOR_GRAY2BGR)
    mask = cv2.resize(fields.mask.astype(np.uint8), size, interpolation=cv2.INTER_NEAREST)
    contours, _ = cv2.findContours(mask, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
    cv2.drawContours(rgb, contours, -1, (0, 0, 255), 1)
    canvas[:size[1], :size[0]] = rgb
    cv2.putText(canvas, path.name[:34], (2, TILE + 14), cv2.FONT_HERSHEY_SIMPLEX, 0.38, (255, 255, 255), 1)
    verdict = "ok" if fields.found else "NOT FOUND"
    cv2.putText(canvas, f"{verdict}  lung {fields.mask.mean():.2f}", (2, TILE + 30), cv2.FONT_HERSHEY_SIMPLEX, 0.42,
                (0, 255, 0) if fields.found else (0, 128, 255), 1)
    return canvas, {"file": str(path), "rows": display.shape[0], "cols": display.shape[1],
                    "lung_share": round(float(fields.mask.mean()), 4), "found": fields.found,
                    "warning": fields.warning or ""}


def sheet(tiles: list[np.ndarray], columns: int = 5) -> np.ndarray:
    rows = [tiles[i:i + columns] for i in range(0, len(tiles), columns)]
    blank = np.zeros_like(tiles[0])
    return np.vstack([np.hstack(row + [blank] * (columns - len(row))) for row in rows])


def kermany_children(data: Path, count: int, seed: int) -> list[Path]:
    with open(data / "cxr3" / "manifest.csv", newline="", encoding="utf-8") as handle:
        rows = [r for r in csv.DictReader(handle) if r["source"] == "kermany_pediatric"]
    rng = np.random.default_rng(seed)
    picked = rng.choice(len(rows), size=min(count, len(rows)), replace=False)
    return [data / "cxr3" / rows[i]["file"] for i in sorted(picked)]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m training.lung_gallery", description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="the shared data folder")
    parser.add_argument("--kermany", type=int, default=20, help="Kermany children drawn from cxr3 (0 = none)")
    parser.add_argument("--files", nargs="*", default=[], help="files or folders; each argument is one sheet")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    segmenter = LungSegmenter(lung_card()).load()
    groups = {}
    if args.kermany:
        groups["kermany_children"] = kermany_children(args.data, args.kermany, args.seed)
    for entry in args.files:
        groups[Path(entry).name or "files"] = find_images([entry]).files
    records = []
    for name, paths in groups.items():
        tiles = []
        for path in paths:
            try:
                canvas, record = tile(path, segmenter)
            except Exception as exc:  # a film the engine refuses is listed, not fatal
                record = {"file": str(path), "warning": f"not read: {exc}"}
                canvas = None
            records.append(dict(record, group=name))
            if canvas is not None:
                tiles.append(canvas)
        if tiles:
            cv2.imwrite(str(args.out / f"{name}.png"), sheet(tiles))
        found = sum(1 for r in records if r["group"] == name and r.get("found"))
        print(f"{name}: {found} of {len(paths)} with two plausible lungs")
    with open(args.out / "lung_gallery.csv", "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=["group", "file", "rows", "cols", "lung_share", "found", "warning"])
        writer.writeheader()
        writer.writerows(records)
    return 0


if __name__ == "__main__":
    sys.exit(main())
