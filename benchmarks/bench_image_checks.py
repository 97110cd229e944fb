"""Image-check speed on the CPU (the bundled ``image-checks`` head), per film, beyond decoding.

    python -m benchmarks.bench_image_checks [--repeats 30]

Prints, for each real DICOM film in ``$CXR_DATA/dicom`` and one 256 px cxr3 film (each decoded once
first, as the classifier has it), the median time of a whole ``ImageChecker.check`` call (display
subsampled to about 256 px, 64 px thumbnail, features, the MLP) and of its parts, against the issue's
10 ms budget. Single-threaded numpy/OpenCV work: the figure is CPU time on one core.
"""
from __future__ import annotations

import argparse
import os
import statistics
import time
from pathlib import Path

import numpy as np

from cxr_engine.models.image_checks import ImageChecker, check_card, features, thumbnail
from cxr_engine.reading.read import read_image

DATA = Path(os.environ.get("CXR_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))
TARGET_MS = 10.0


def timed(fn, repeats: int) -> float:
    """Median CPU time of ``fn()`` in milliseconds over ``repeats`` calls (after three warm-ups)."""
    for _ in range(3):
        fn()
    samples = []
    for _ in range(repeats):
        start = time.process_time()
        fn()
        samples.append((time.process_time() - start) * 1000)
    return statistics.median(samples)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.bench_image_checks", description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=30)
    args = parser.parse_args(argv)
    import cv2

    cv2.setNumThreads(1)
    checker = ImageChecker(check_card()).load()
    paths = sorted((DATA / "dicom").glob("*.dcm")) + [DATA / "cxr3" / "images" / "covid" / "01d0f5d504286c71.jpg"]
    films = [(p.name, read_image(p)) for p in paths if p.exists()]
    if not films:
        films = [("synthetic 2000x2000", np.random.default_rng(0).random((2000, 2000)).astype(np.float32))]
    worst = 0.0
    for name, image in films:
        whole = timed(lambda: checker.check(image), args.repeats)
        thumb = thumbnail(image)
        thumb_ms = timed(lambda: thumbnail(image), args.repeats)
        feature_ms = timed(lambda: features(thumb), args.repeats)
        row = features(thumb)[None]
        mlp_ms = timed(lambda: checker.probabilities(row), args.repeats)
        worst = max(worst, whole)
        shape = "x".join(map(str, getattr(image, "shape", ())))
        print(f"{name[:44]:44s} {shape:>11s}  check {whole:5.2f} ms  (thumbnail {thumb_ms:.2f}, "
              f"features {feature_ms:.2f}, MLP {mlp_ms:.2f})")
    verdict = "meets" if worst <= TARGET_MS else "MISSES"
    print(f"slowest film: {worst:.2f} ms CPU per check ({verdict} the {TARGET_MS:.0f} ms budget)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
