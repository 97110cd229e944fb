"""Engine speed on this machine: decode, render, scan and classify (+ Grad-CAM) per image.

    python -m benchmarks.bench_engine [--scan-files 2000] [--repeats 5]

Prints one line per figure. Architectures without bundled weights are timed with random
weights: speed does not depend on the values of the weights.
"""
from __future__ import annotations

import argparse
import os
from pathlib import Path

import numpy as np

from cxr_engine.pixels.image import CxrImage
from cxr_engine.reading.read import read_image
from cxr_engine.pixels.rendering import Renderer
from cxr_engine.pixels.windowing import Window

from .timing import median_ms

DATA = Path(os.environ.get("CXR_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))


def bench_decode(repeats: int) -> None:
    """Decode in process and through the isolated worker (the CLI's and the app's default)."""
    from cxr_engine.reading.isolation import IsolatedReader

    with IsolatedReader() as isolated:
        for path in sorted((DATA / "dicom").glob("*.dcm")):
            ms = median_ms(lambda: read_image(path), max(1, repeats // 2))
            iso_ms = median_ms(lambda: isolated.read(path), max(1, repeats // 2))
            image = read_image(path)
            print(f"decode  {path.name[:40]:40s} {image.shape[0]}×{image.shape[1]}: {ms:7.1f} ms in process, "
                  f"{iso_ms:7.1f} ms isolated (+{iso_ms - ms:.1f} ms)")


def bench_render(repeats: int) -> None:
    rng = np.random.default_rng(0)
    values = rng.integers(0, 65536, size=(2000, 2000), dtype=np.uint16)
    synthetic = CxrImage(path=Path("synthetic"), stored=values, modality=values, bits_stored=16)
    real = read_image(DATA / "dicom" / "966_fixed.dcm")
    for label, image in (("2000×2000 16-bit synthetic", synthetic), ("966_fixed 2128×2000 12-bit", real)):
        renderer = Renderer(image)
        low, high = image.value_range
        windows = [Window(low + (high - low) * f, (high - low) * 0.5) for f in np.linspace(0.3, 0.7, 8)]
        counter = iter(range(10**9))
        per_window = median_ms(lambda: renderer.render(windows[next(counter) % len(windows)]), repeats * 4)
        setup = median_ms(lambda: Renderer(image), repeats)
        print(f"render  {label}: {per_window:6.1f} ms per window change (renderer set-up {setup:.1f} ms once per image)")


def bench_scan(n_files: int) -> None:
    from benchmarks.bench_scan import benchmark_scan

    r = benchmark_scan(n_files, DATA / "cxr3")
    print(f"scan    {r['files_seen']} files, {r['instances']} instances, {r['studies']} studies: "
          f"{r['scan_s']:.2f} s = {r['files_per_s']:.0f} files/s")


def _classifiers():
    from cxr_engine.models.torch_backend import Classifier
    from cxr_engine.models.model_card import CLASSES, ModelCard, list_bundled
    from cxr_engine.pixels.preprocessing import PREPROCESSING_VERSION
    from cxr_engine.models.registry import build_model, get_architecture

    for card in list_bundled():
        yield f"{card.name} (bundled, torch)", Classifier(card, device="cpu")
        if card.onnx_file:
            from cxr_engine.models.onnx_backend import OnnxClassifier

            yield f"{card.name} (bundled, onnx)", OnnxClassifier(card)
    for name in ("densenet121", "efficientnet_b1"):
        arch = get_architecture(name)
        card = ModelCard(name=f"{name}-random", architecture=name, classes=list(CLASSES), input_size=arch.input_size,
                         in_chans=3, mean=list(arch.mean), std=list(arch.std),
                         preprocessing_version=PREPROCESSING_VERSION, weights_file="-", weights_sha256="-")
        yield f"{name} (random weights)", Classifier(card, device="cpu", model=build_model(name, len(CLASSES)))


def bench_classify(repeats: int) -> None:
    import torch

    image = read_image(DATA / "dicom" / "966_fixed.dcm")
    print(f"classify on CPU with {torch.get_num_threads()} torch threads, image 2128×2000 (preprocessing included)")
    for label, classifier in _classifiers():
        classifier.load()
        predict = median_ms(lambda: classifier.predict([image]), repeats)
        with_heatmap = median_ms(lambda: classifier.predict_with_heatmap(image), repeats)
        size = classifier.card.input_size
        print(f"classify {label} @{size}px: {predict:7.1f} ms; classify + Grad-CAM: {with_heatmap:7.1f} ms")
        classifier.close()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--scan-files", type=int, default=2000)
    parser.add_argument("--skip", nargs="*", default=[], choices=("decode", "render", "scan", "classify"))
    args = parser.parse_args(argv)
    if not DATA.exists():
        raise SystemExit(f"shared data not found at {DATA} (set CXR_DATA)")
    steps = {"decode": lambda: bench_decode(args.repeats), "render": lambda: bench_render(args.repeats),
             "scan": lambda: bench_scan(args.scan_files), "classify": lambda: bench_classify(args.repeats)}
    for name, step in steps.items():
        if name not in args.skip:
            step()


if __name__ == "__main__":
    main()
