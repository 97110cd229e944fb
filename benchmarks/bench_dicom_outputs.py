"""Time to make and write the DICOM outputs of one classified film (classification not included).

    python -m benchmarks.bench_dicom_outputs [--repeats 5]

For two real films (a 440×440 CR and a 2128×2000 DX), the median per call of: the Secondary
Capture alone, the Comprehensive SR alone, the Encapsulated PDF alone (its PDF rendered in the
call), all three, and all three de-identified, each into a temporary folder: wall time and CPU
time of the process (the figure to trust on a busy machine).
"""
from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

from cxr_engine.models.backends import create_classifier
from cxr_engine.outputs.dicom_outputs import DicomOutputWriter
from cxr_engine.reading.read import read_image
from cxr_engine.models.model_card import default_card

DATA = Path(os.environ.get("CXR_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))
FILMS = ("CR-MONO1-10-chest.dcm", "966_fixed.dcm")


def median_ms(fn, repeats: int) -> tuple[float, float]:
    """Median wall and CPU (process) milliseconds of ``fn()`` over ``repeats`` calls, after one warm-up."""
    fn()  # imports, fonts
    wall, cpu = [], []
    for _ in range(repeats):
        start, start_cpu = time.perf_counter(), time.process_time()
        fn()
        wall.append((time.perf_counter() - start) * 1000)
        cpu.append((time.process_time() - start_cpu) * 1000)
    return statistics.median(wall), statistics.median(cpu)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args(argv)
    card = default_card()
    classifier = create_classifier(card, backend="onnx", device="cpu")
    classifier.load()
    with tempfile.TemporaryDirectory() as tmp:
        for name in FILMS:
            image = read_image(DATA / "dicom" / name)
            heatmap_result = classifier.predict_with_heatmap(image)
            rows, cols = image.shape
            print(f"{name} ({cols}x{rows}):")
            cases = [("Secondary Capture", ("sc",), False), ("Comprehensive SR", ("sr",), False),
                     ("Encapsulated PDF", ("pdf",), False), ("all three", ("sc", "sr", "pdf"), False),
                     ("all three, de-identified", ("sc", "sr", "pdf"), True)]
            for label, kinds, deidentify in cases:
                writer = DicomOutputWriter(Path(tmp) / label.replace(" ", "_"), card, deidentify=deidentify, kinds=kinds)
                wall, cpu = median_ms(lambda: writer.write(image, heatmap_result), args.repeats)
                print(f"  {label:<26} {wall:8.1f} ms wall {cpu:8.1f} ms CPU")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
