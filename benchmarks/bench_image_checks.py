"""Image-check speed on the CPU (the bundled ``image-checks`` head), per film, beyond decoding.

    python -m benchmarks.bench_image_checks [--repeats 30]

Prints, for each real DICOM film in ``$CXR_DATA/dicom`` and one 256 px cxr3 film (each decoded once
first, as the classifier has it), the median time of a whole ``ImageChecker.check`` call (display
subsampled to about 256 px, 64 px thumbnail, features, the MLP) and of its parts, against the issue's
10 ms budget. Single-threaded numpy/OpenCV work: the figure is CPU time on one core. Then what the
out-of-scope heads add to the classifier's pass (:func:`heads_cost`).
"""
from __future__ import annotations

import argparse
import functools
import os
import time
from pathlib import Path

import numpy as np

from cxr_engine.models.image_checks import ImageChecker, check_card, features, thumbnail
from cxr_engine.reading.read import read_image

from .timing import median_ms

DATA = Path(os.environ.get("CXR_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))
TARGET_MS = 10.0
#: This benchmark's measure: CPU time of this process, after three warm-ups.
timed = functools.partial(median_ms, warmups=3, clock=time.process_time)


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
    heads_cost(films[-1][1], args.repeats)
    return 0


def heads_cost(image, repeats: int) -> None:
    """What the out-of-scope heads (``cxr_engine.models.scope_heads``) add to a classification: the
    bundled classifier's ONNX pass asked for the pooled features too (one film, one thread, against the
    logits alone) and the heads on those features. Skipped without ONNX Runtime or heads."""
    try:
        import onnxruntime
    except ImportError:
        print("out-of-scope heads: ONNX Runtime missing, not measured")
        return
    from cxr_engine.models.classifier import model_input
    from cxr_engine.models.ensemble_card import networks
    from cxr_engine.models.model_card import default_card
    from cxr_engine.models.onnx_backend import FEATURES_NAME, INPUT_NAME, LOGITS_NAME, verified_onnx_bytes
    from cxr_engine.models.scope_heads import film_reasons, heads_for

    # An averaged model has no features of its own: its members' heads run, each on its member's pass.
    for card in networks(default_card()):
        if heads_for(card) is None:
            print(f"out-of-scope heads: the card {card.name} names none, not measured")
            continue
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = 1
        session = onnxruntime.InferenceSession(verified_onnx_bytes(card), options, providers=["CPUExecutionProvider"])
        batch = {INPUT_NAME: model_input(card, image)[None]}
        logits_ms = timed(lambda: session.run([LOGITS_NAME], batch), repeats)
        both_ms = timed(lambda: session.run([LOGITS_NAME, FEATURES_NAME], batch)[1].mean(axis=(2, 3)), repeats)
        pooled = session.run([FEATURES_NAME], batch)[0].mean(axis=(2, 3))[0]
        heads_ms = timed(lambda: film_reasons(card, pooled, image), repeats)
        print(f"out-of-scope heads ({card.name}): ONNX pass {logits_ms:.2f} ms with logits only, {both_ms:.2f} ms "
              f"with the pooled features too; heads {heads_ms:.3f} ms; added {both_ms - logits_ms + heads_ms:.2f} ms "
              f"CPU per film")


if __name__ == "__main__":
    raise SystemExit(main())
