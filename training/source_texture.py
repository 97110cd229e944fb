"""How sharp/noisy each source's images are, in the engine's unnormalised model input.

Prints the median "detail" (standard deviation of the Laplacian over that of the image, on the
central 64 % of the unnormalised model input) per label × source of a split manifest, and per file of
an optional folder of outside images (e.g. real DICOM files). When detail lines up with the label,
a model can learn the label from how images were processed: ``AcquisitionShift`` exists for that.

Run: ``python -m training.source_texture --manifest training/work/curated/split_manifest.csv
--folder ../shared/data/dicom``
"""
from __future__ import annotations

import argparse
import random
import sys
from collections import defaultdict
from pathlib import Path
from typing import Sequence

import cv2
import numpy as np


def detail(grey: np.ndarray) -> float:
    """Laplacian standard deviation over image standard deviation, central 64 % of the image."""
    side = grey.shape[0]
    lo, hi = round(side * 0.18), round(side * 0.82)
    centre = grey[lo:hi, lo:hi].astype(np.float32)
    return float(cv2.Laplacian(centre, cv2.CV_32F).std() / (centre.std() + 1e-6))


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m training.source_texture", description=__doc__.split("\n\n")[0])
    p.add_argument("--manifest", type=Path, required=True, help="split manifest from training.curate")
    p.add_argument("--folder", type=Path, help="also measure every image file in this folder")
    p.add_argument("--per-group", type=int, default=150, help="images sampled per label x source (default 150)")
    p.add_argument("--size", type=int, default=224, help="model input size in px (default 224)")
    p.add_argument("--seed", type=int, default=0)
    return p.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    from cxr_engine.errors import ImageReadError
    from cxr_engine.reading.read import read_image
    from cxr_engine.pixels.preprocessing import resize_and_stretch

    from .data import read_manifest, read_unnormalised_input
    from .external_files import external_files

    args = parse_args(argv)
    groups: dict[tuple[str, str], list[dict]] = defaultdict(list)
    for row in read_manifest(args.manifest):
        groups[(row["label"], row.get("source", ""))].append(row)
    rng = random.Random(args.seed)
    print(f"{'label':<10} {'source':<28} {'n':>5} {'median detail':>14}")
    for (label, source), rows in sorted(groups.items()):
        sample = rng.sample(rows, min(args.per_group, len(rows)))
        values = [detail(read_unnormalised_input(r["path"], args.size)) for r in sample]
        print(f"{label:<10} {source:<28} {len(sample):>5} {np.median(values):>14.3f}")
    if args.folder:
        for path in external_files(args.folder):
            try:
                value = f"{detail(resize_and_stretch(read_image(path).display(), args.size)):.3f}"
            except ImageReadError as error:
                value = f"unreadable ({error})"
            print(f"{'file':<10} {path.name:<28} {1:>5} {value:>14}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
