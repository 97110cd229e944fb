"""Torch vs ONNX Runtime on the same images: do they agree, and how fast is each?

Every test-split image of a split manifest is decoded once and classified by both backends of
one bundled model; the script counts top-class disagreements and the largest probability
difference, and lists every disagreement. On the first ``--heatmap-images`` images it times
classify + heat-map for both backends in the same run (interleaved, median) and compares the
heat-maps.

    python -m benchmarks.compare_backends --model efficientnet-lite0 \\
        --manifest training/work/curated/split_manifest.csv --out out/compare_backends.json
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import numpy as np


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.compare_backends", description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="efficientnet-lite0", help="bundled model name or card .json")
    parser.add_argument("--manifest", type=Path, required=True, help="split manifest (its test split is used)")
    parser.add_argument("--split", default="test")
    parser.add_argument("--limit", type=int, default=None, help="at most N images (development)")
    parser.add_argument("--heatmap-images", type=int, default=40, help="images timed with heat-maps")
    parser.add_argument("--cam-images", dest="heatmap_images", type=int, help=argparse.SUPPRESS)  # the earlier name
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", type=Path, default=Path("out/compare_backends.json"))
    args = parser.parse_args(argv)

    import torch
    from tqdm import tqdm

    from cxr_engine.models.backends import create_classifier
    from cxr_engine.models.model_card import find_card
    from cxr_engine.reading.read import read_image
    from training.data import read_manifest

    torch.set_num_threads(args.threads)
    card = find_card(args.model)
    torch_model = create_classifier(card, backend="torch", device="cpu")
    onnx_model = create_classifier(card, backend="onnx", device="cpu")
    torch_model.load()
    onnx_model.load()
    rows = read_manifest(args.manifest, args.split)[: args.limit]
    warm_up = read_image(rows[0]["path"])
    for model in (torch_model, onnx_model):  # first calls build caches and hooks: not timed
        model.predict_with_heatmap(warm_up)

    disagreements, max_diff, compared = [], 0.0, 0
    heatmap_times: dict[str, list[float]] = {"torch": [], "onnx": []}
    heatmap_diff = 0.0
    for index, row in enumerate(tqdm(rows, desc=f"{args.split} images", mininterval=5)):
        image = read_image(row["path"])
        if index < args.heatmap_images:
            results = {}
            for name, model in (("torch", torch_model), ("onnx", onnx_model))[:: 1 if index % 2 else -1]:
                start = time.perf_counter()
                results[name] = model.predict_with_heatmap(image)
                heatmap_times[name].append(time.perf_counter() - start)
            heatmap_diff = max(heatmap_diff, float(np.abs(results["torch"].heatmap - results["onnx"].heatmap).max()))
            first = {name: result.prediction for name, result in results.items()}
        else:
            first = {"torch": torch_model.predict([image])[0], "onnx": onnx_model.predict([image])[0]}
        p_torch, p_onnx = np.asarray(first["torch"].probabilities), np.asarray(first["onnx"].probabilities)
        max_diff = max(max_diff, float(np.abs(p_torch - p_onnx).max()))
        compared += 1
        if first["torch"].label != first["onnx"].label:
            disagreements.append({"path": row["path"], "torch": first["torch"].as_dict(), "onnx": first["onnx"].as_dict()})

    torch_ms = statistics.median(heatmap_times["torch"]) * 1000 if heatmap_times["torch"] else None
    onnx_ms = statistics.median(heatmap_times["onnx"]) * 1000 if heatmap_times["onnx"] else None
    report = {
        "model": card.name, "manifest": str(args.manifest), "split": args.split, "images": compared,
        "top_class_disagreements": len(disagreements), "max_probability_difference": max_diff,
        # The two keys keep the names earlier runs' JSON files have.
        "cam_images_timed": len(heatmap_times["torch"]), "classify_with_cam_ms": {"torch": torch_ms, "onnx": onnx_ms},
        "onnx_speed_up": (torch_ms / onnx_ms) if torch_ms and onnx_ms else None,
        "max_heatmap_difference": heatmap_diff, "threads": args.threads, "disagreements": disagreements,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    print(json.dumps({k: v for k, v in report.items() if k != "disagreements"}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
