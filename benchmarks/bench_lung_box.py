"""Time added per film by preprocessing cxr-pre-2 (lung box) over cxr-pre-1, on the CPU.

    python -m benchmarks.bench_lung_box [--repeats 20] [--threads N]

For a 256 px cxr3 film and a 2128×2000 DICOM (decoded once; the presentation values computed once, as the
classifiers do), prints the median time of the classifier's unnormalised model input (steps 1–3 at 224 px)
under cxr-pre-1 (whole image) and cxr-pre-2 (lung model on ONNX Runtime, box, crop, then the same
steps), and the difference: the time cxr-pre-2 adds to each classified film.
"""
from __future__ import annotations

import argparse
import os
from pathlib import Path

from cxr_engine.reading.read import read_image
from cxr_engine.models.lung_fields import LungSegmenter, lung_card
from cxr_engine.models.classifier import unnormalised_input_in_frame
from cxr_engine.pixels.preprocessing import LUNG_BOX_VERSION, PREPROCESSING_VERSION

from .bench_lung_fields import timed

DATA = Path(os.environ.get("CXR_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))
FILMS = (DATA / "cxr3" / "images" / "covid" / "01d0f5d504286c71.jpg", DATA / "dicom" / "966_fixed.dcm")
SIZE = 224


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.bench_lung_box", description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--threads", type=int, default=None, help="ONNX Runtime intra-op threads (default: all cores)")
    args = parser.parse_args(argv)
    segmenter = LungSegmenter(lung_card(), backend="onnx", threads=args.threads).load()

    def segment(image, display):
        return segmenter.segment(image, display=display)

    from cxr_engine.pixels.input_frame import input_frame

    for path in FILMS:
        if not path.exists():
            print(f"{path}: not found (set CXR_DATA)")
            continue
        image = read_image(path)
        display = image.display()
        whole_ms = timed(lambda: unnormalised_input_in_frame(image, SIZE, display, PREPROCESSING_VERSION), args.repeats)
        box_ms = timed(lambda: unnormalised_input_in_frame(image, SIZE, display, LUNG_BOX_VERSION,
                                                     input_frame(image, LUNG_BOX_VERSION, display, segment)),
                       args.repeats)
        frame = input_frame(image, LUNG_BOX_VERSION, display, segment)
        print(f"{path.name} {display.shape[0]}x{display.shape[1]} (box {frame.box}): "
              f"{PREPROCESSING_VERSION} {whole_ms:.1f} ms, {LUNG_BOX_VERSION} {box_ms:.1f} ms, "
              f"added {box_ms - whole_ms:.1f} ms per film (ONNX Runtime, {args.threads or 'all'} threads)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
