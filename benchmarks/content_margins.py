"""How far every real film lies from the "no image content" thresholds (``cxr_engine.pixels.content``).

Reads the DICOMs of ``dicom/`` and ``dicom_rsna/``, the images of ``cxr_other/`` and a seeded sample of
``cxr3/`` under the shared data folder, and prints the narrowest 0.5th–99.5th percentile span of their
presentation values (against ``UNIFORM_SPAN``), their shortest side at full resolution (against
``MIN_SIDE_PX``) and every film the check would catch (none is expected):

    python -m benchmarks.content_margins --data ../shared/data -n 1500
"""
from __future__ import annotations

import argparse
import random
from pathlib import Path

import numpy as np

from cxr_engine.pixels.content import MIN_SIDE_PX, UNIFORM_SPAN, no_content_reason
from cxr_engine.pixels.preprocessing import STRETCH_PERCENTILES
from cxr_engine.reading.read import read_image


def films(data: Path, sample: int, seed: int) -> list[Path]:
    """The real films checked: all DICOMs and cxr_other images, ``sample`` cxr3 images (seeded shuffle)."""
    found = sorted((data / "dicom").glob("*.dcm")) + sorted((data / "dicom_rsna").glob("*.dcm"))
    found += sorted((data / "cxr_other" / "images").glob("*.jpg"))
    cxr3 = sorted((data / "cxr3" / "images").rglob("*.jpg"))
    random.Random(seed).shuffle(cxr3)
    return found + cxr3[:sample]


def span(image) -> float:
    """The 0.5th–99.5th percentile span of the presentation values, padding left out."""
    values, padding = image.display_sample()
    if padding is not None and (~padding).any():
        values = values[~padding]
    low, high = np.percentile(values, STRETCH_PERCENTILES)
    return float(high - low)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=Path("../shared/data"))
    parser.add_argument("-n", type=int, default=1500, help="cxr3 images sampled (default 1500)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    rows = []
    for path in films(args.data, args.n, args.seed):
        image = read_image(path)
        rows.append((span(image), min(side * image.reduction for side in image.shape), no_content_reason(image), path))
    narrowest, shortest = min(rows, key=lambda row: row[0]), min(rows, key=lambda row: row[1])
    print(f"{len(rows)} films")
    print(f"narrowest span {narrowest[0]:.3f} (threshold {UNIFORM_SPAN}): {narrowest[3]}")
    print(f"shortest side {shortest[1]} px (threshold {MIN_SIDE_PX}): {shortest[3]}")
    caught = [row for row in rows if row[2]]
    print(f"caught: {len(caught)}")
    for row in caught:
        print(f"  {row[3]}: {row[2]}")


if __name__ == "__main__":
    main()
