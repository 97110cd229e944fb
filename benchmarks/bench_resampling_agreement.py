"""Does the numpy resizing (``cxr_engine.pixels.resampling``) give the model input and the call that OpenCV gave?

Classifies each film twice with the bundled model on ONNX Runtime: once as the engine does now, once with
OpenCV's ``cv2.resize`` (``INTER_AREA`` / ``INTER_LINEAR``) put back where the model input, the lung-box
crop and the heat-map are resized, and reports per group the largest model-input difference, top-class
agreement and the largest difference of any class probability, and the time each resize takes:

- every DICOM file in ``--dicom`` folders (the real films of ``../shared/data``);
- ``-n`` seeded test-split images (same number per class) enlarged (bicubic) to ``--long-side`` pixels on
  the long side at a non-integer scale, like a CR/DX film: cxr3's images are 224 px, the model's own
  input size, so as they are they would not be resized at all.

    python -m benchmarks.bench_resampling_agreement -n 300

Needs OpenCV (``opencv-python-headless``, the ``train`` extra) for the reference.
"""
from __future__ import annotations

import argparse
import json
import logging
import time
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path

import numpy as np

from .agreement import add_film_arguments, compare_groups, sample_test_split, source_file, write_rows

#: Modules that import the resize functions by name, where the OpenCV reference is put for the second pass.
USERS = ("cxr_engine.pixels.preprocessing", "cxr_engine.models.classifier", "cxr_engine.models.lung_fields")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.bench_resampling_agreement",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("-n", type=int, default=300, help="test-split images (same number per class; seeded)")
    parser.add_argument("--long-side", type=int, default=2021, help="long side of the enlarged test images, pixels")
    add_film_arguments(parser)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)

    from cxr_engine import load_classifier, read_image

    classifier = load_classifier(args.model, backend="onnx", device="cpu")
    groups: dict[str, list] = {}
    for folder in args.dicom:
        if folder.exists():
            groups[f"real DICOM ({folder.name})"] = [read_image(p) for p in sorted(folder.rglob("*.dcm"))]
    if args.n > 0 and args.manifest.exists():
        groups[f"test split enlarged to {args.long_side} px"] = enlarged_test_films(args.manifest, args.n,
                                                                                    args.long_side, args.seed)
    rows, _ = compare_groups(groups, lambda image: compare(image, classifier), summarise)
    print(f"resize of one film to the model input, median ms: {json.dumps(resize_times(groups))}")
    if args.out:
        write_rows(args.out, rows)
    return 0


def compare(image, classifier) -> dict:
    from cxr_engine.models.classifier import model_input

    ours_input = model_input(classifier.card, image)
    ours = classifier.predict([image])[0]
    with opencv_resizing():
        reference_input = model_input(classifier.card, image)
        reference = classifier.predict([image])[0]
    return {"path": str(image.path), "shape": "x".join(map(str, image.shape)),
            "max_input_difference": float(np.max(np.abs(ours_input - reference_input))),
            "numpy": ours.label, "opencv": reference.label,
            "max_probability_difference": float(np.max(np.abs(np.subtract(ours.probabilities, reference.probabilities))))}


@contextmanager
def opencv_resizing():
    """``cv2.resize`` in place of the numpy functions in every module that uses them (:data:`USERS`)."""
    import importlib

    import cv2

    def area(pixels, rows, cols):
        return cv2.resize(np.ascontiguousarray(pixels), (cols, rows), interpolation=cv2.INTER_AREA)

    def bilinear(pixels, rows, cols):
        return cv2.resize(np.ascontiguousarray(pixels), (cols, rows), interpolation=cv2.INTER_LINEAR)

    saved = []
    for name in USERS:
        module = importlib.import_module(name)
        for attribute, reference in (("resize_area", area), ("resize_bilinear", bilinear)):
            if hasattr(module, attribute):
                saved.append((module, attribute, getattr(module, attribute)))
                setattr(module, attribute, reference)
    try:
        yield
    finally:
        for module, attribute, original in saved:
            setattr(module, attribute, original)


def summarise(results: list[dict]) -> dict:
    if not results:
        return {"films": 0}
    agree = sum(r["numpy"] == r["opencv"] for r in results)
    return {"films": len(results), "top_class_changes": len(results) - agree,
            "largest_input_difference": float(f"{max(r['max_input_difference'] for r in results):.3g}"),
            "largest_probability_difference": float(f"{max(r['max_probability_difference'] for r in results):.3g}"),
            "median_probability_difference": float(f"{np.median([r['max_probability_difference'] for r in results]):.3g}")}


def resize_times(groups: dict[str, list]) -> dict:
    """Median ms to shrink a film's presentation values to 224 × 224, numpy against OpenCV (the largest group)."""
    import cv2

    from cxr_engine.pixels.resampling import resize_area

    films = max(groups.values(), key=len, default=[])[:50]
    times = {"numpy": [], "opencv": []}
    for image in films:
        grey = image.display()
        for name, run in (("numpy", lambda: resize_area(grey, 224, 224)),
                          ("opencv", lambda: cv2.resize(grey, (224, 224), interpolation=cv2.INTER_AREA))):
            started = time.perf_counter()
            run()
            times[name].append(time.perf_counter() - started)
    return {name: round(1000 * float(np.median(t)), 2) for name, t in times.items() if t}


def enlarged_test_films(manifest: Path, n: int, long_side: int, seed: int) -> list:
    """``n`` seeded test-split images (same number per class) as 8-bit ``CxrImage``s enlarged (bicubic)
    to ``long_side`` on the long side; the short side is not a multiple of the model input."""
    import cv2

    from cxr_engine import read_image

    films = []
    for row in sample_test_split(manifest, n, seed):
        image = read_image(source_file(row))
        rows, cols = image.shape
        scale = long_side / max(rows, cols)
        size = (max(1, round(cols * scale * 0.93)), max(1, round(rows * scale)))
        grey = cv2.resize(image.stored.astype(np.float32), size, interpolation=cv2.INTER_CUBIC)
        stored = np.clip(np.rint(grey), 0, 255).astype(np.uint8)
        films.append(replace(image, stored=stored, modality=stored, padding=None))
    return films


if __name__ == "__main__":
    raise SystemExit(main())
