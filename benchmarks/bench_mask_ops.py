"""The lung-mask and heat-map operations that left OpenCV (issue 16), against OpenCV's, on the CPU.

    python -m benchmarks.bench_mask_ops [--repeats 10]

On the full-resolution lung mask of a 2128×2000 DICOM (the bundled lung model on ONNX Runtime) prints
the median time of the numpy connected components and outer contours (the viewer's lung outline),
the CTR proposal (components + Gaussian smoothing), and the same OpenCV calls when cv2 is importable.
"""
from __future__ import annotations

import argparse
import os
from pathlib import Path

import numpy as np

from cxr_engine.models.cardiothoracic import propose_ctr
from cxr_engine.models.lung_fields import LungSegmenter, lung_card
from cxr_engine.pixels.components import connected_components
from cxr_engine.pixels.contours import outer_contours
from cxr_engine.reading.read import read_image

from .timing import median_ms

DATA = Path(os.environ.get("CXR_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))
FILM = DATA / "dicom" / "966_fixed.dcm"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.bench_mask_ops", description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=10)
    args = parser.parse_args(argv)
    image = read_image(FILM)
    display = image.display()
    fields = LungSegmenter(lung_card(), backend="onnx").load().segment(image, display=display)
    mask = fields.mask.astype(np.uint8)
    print(f"{FILM.name}: mask {mask.shape[1]}×{mask.shape[0]}, lungs found: {fields.found}")
    rows = [("connected components (8)", lambda: connected_components(mask, 8)),
            ("outer contours", lambda: outer_contours(mask)),
            ("propose_ctr", lambda: propose_ctr(fields.mask, display, image.spacing_mm))]
    try:
        import cv2
    except ImportError:
        cv2 = None
    if cv2 is not None:
        rows += [("cv2.connectedComponentsWithStats", lambda: cv2.connectedComponentsWithStats(mask, connectivity=8)),
                 ("cv2.findContours", lambda: cv2.findContours(mask, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE))]
    for name, call in rows:
        print(f"{name:34s} {median_ms(call, args.repeats):8.1f} ms")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
