"""Where a lung-box preprocessing's box lies on validation films: radiologist-read adult pneumonia against adult normals.

    python -m training.lung_box_extent --manifest training/work/curated_sqrt/split_manifest.csv --version cxr-pre-2

A cxr-pre-2 network lost adult pneumonia (training/README, ``lite0_224_sqrt_pre2``); this measures one suspected
cause: the lung model stops at the visible edge of a basal consolidation, so the box ends higher on those films.
Prints, for the validation split's ``rsna_pneumonia`` pneumonia films and its first ``--normals`` adult normals of
``nih_cxr14`` and ``rsna_pneumonia``, the median top and bottom edge of the box (shares of the film's height), its
10th-percentile bottom edge, its median area (share of the film) and how many films fell back to the whole image.
"""
from __future__ import annotations

import argparse
import csv
import logging
from pathlib import Path

import numpy as np

from cxr_engine.pixels.input_frame import input_frame
from cxr_engine.pixels.preprocessing import LUNG_BOX_VERSION, PREPROCESSING_VERSIONS
from cxr_engine.reading.read import read_image

ADULT_SOURCES = ("nih_cxr14", "rsna_pneumonia")


def groups(manifest: Path, normals: int) -> dict[str, list[dict]]:
    """The validation rows measured: RSNA pneumonia, and the first ``normals`` adult normals of ``ADULT_SOURCES``."""
    rows = [r for r in csv.DictReader(manifest.open(encoding="utf-8")) if r["split"] == "val"]
    pneumonia = [r for r in rows if r["source"] == "rsna_pneumonia" and r["label"] == "pneumonia"]
    normal = [r for r in rows if r["source"] in ADULT_SOURCES and r["label"] == "normal"
              and r.get("age_group") != "pediatric"][:normals]
    return {"pneumonia": pneumonia, "normal": normal}


def extent(path: str, version: str) -> tuple[float, float, float, bool]:
    """(top, bottom, area) of ``version``'s box on the film at ``path`` as shares of its height / area, and whether
    the lung fields were not found (the whole image is the box)."""
    frame = input_frame(read_image(path), version)
    (r0, c0, r1, c1), (height, width) = frame.box, frame.shape
    return r0 / height, r1 / height, (r1 - r0) * (c1 - c0) / (height * width), bool(frame.warning)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m training.lung_box_extent", description=__doc__.split("\n")[0])
    parser.add_argument("--manifest", type=Path, required=True, help="curated split manifest (training.curate)")
    parser.add_argument("--version", choices=PREPROCESSING_VERSIONS, default=LUNG_BOX_VERSION)
    parser.add_argument("--normals", type=int, default=40, help="adult normal films measured (default 40)")
    args = parser.parse_args(argv)
    logging.getLogger("cxr_engine").setLevel(logging.ERROR)  # the per-film fallback warnings are counted instead
    for name, rows in groups(args.manifest, args.normals).items():
        measured = np.array([extent(r["path"], args.version) for r in rows])
        top, bottom, area = np.median(measured[:, :3], axis=0)
        print(f"{name}: {len(rows)} films; box top {top:.3f}, bottom {bottom:.3f} (10th percentile "
              f"{np.percentile(measured[:, 1], 10):.3f}), area {area:.3f} of the film; "
              f"{int(measured[:, 3].sum())} without lung fields")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
