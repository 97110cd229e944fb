"""Bundle a ``training.segment`` run: safetensors (float16 when the test Dice does not change) + ONNX + card.

    python -m training.export_lung_unet --run training/work/seg_runs/unet224 --out-dir resources/models

Writes ``<name>.safetensors``, ``<name>.onnx`` (opset 17, dynamic batch: ``input`` (B, 3, S, S)
float32 -> ``probability`` (B, 1, S, S), the sigmoid already applied; batch norms kept as nodes and
weights float16 holds exactly stored as float16 + Cast, as ``training.export_onnx`` does) and the
segmentation model card ``<name>.json`` (``cxr_engine.models.lung_fields.LungModelCard``: sha256 of both
files, training data, licence, Dice figures, input size, preprocessing version, intended use and
the commands). ONNX Runtime must reproduce torch (probabilities within 1e-4) before anything is
written; the card's Dice figures are then measured through ``cxr_engine.models.lung_fields`` on ONNX
Runtime, at each test film's own pixel grid.
"""
from __future__ import annotations

import argparse
import csv
import hashlib
import io
import json
import logging
import shlex
import sys
import warnings
from pathlib import Path
from typing import Sequence

import numpy as np
import torch

from cxr_engine.outputs.atomic import write_bytes_atomic
from cxr_engine.errors import ModelError
from cxr_engine.reading.read import read_image
from cxr_engine.models.lung_fields import (FORMAT, INPUT_NAME, INTENDED_USE, META_FORMAT, META_MODEL, META_WEIGHTS_SHA256,
                                    OUTPUT_NAME, LungModelCard, LungSegmenter)
from cxr_engine.models.weights import save_weights

from .export_onnx import OPSET, _add_metadata, _store_exact_float16
from .segment import DATA_LICENCE, build_unet, dice, evaluate_at_grid, read_mask, summarise

log = logging.getLogger("training.export_lung_unet")

PROBABILITY_TOLERANCE = 1e-4
# float16 weights count as "Dice unchanged" when the test mean moves by at most HALF_MEAN_TOLERANCE
# (it is reported to 3 decimals) and no single test mask's Dice by more than HALF_MASK_TOLERANCE.
HALF_MEAN_TOLERANCE = 5e-4
HALF_MASK_TOLERANCE = 5e-3


class WithSigmoid(torch.nn.Module):
    def __init__(self, model: torch.nn.Module):
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.model(x))


def sha256_of(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def trace(model: torch.nn.Module, size: int) -> bytes:
    buffer = io.BytesIO()
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(WithSigmoid(model).eval(), (torch.zeros(1, 3, size, size),), buffer,
                          input_names=[INPUT_NAME], output_names=[OUTPUT_NAME],
                          dynamic_axes={INPUT_NAME: {0: "batch"}, OUTPUT_NAME: {0: "batch"}},
                          opset_version=OPSET, do_constant_folding=True, dynamo=False,
                          training=torch.onnx.TrainingMode.PRESERVE)
    return buffer.getvalue()


def check_against_torch(data: bytes, model: torch.nn.Module, size: int) -> float:
    import onnxruntime

    example = torch.randn(3, 3, size, size, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        expected = torch.sigmoid(model(example)).numpy()
    session = onnxruntime.InferenceSession(data, providers=["CPUExecutionProvider"])
    (actual,) = session.run([OUTPUT_NAME], {INPUT_NAME: example.numpy()})
    diff = float(np.abs(actual - expected).max())
    log.info("ONNX Runtime vs torch on a batch of 3: largest probability difference %.2e", diff)
    if diff > PROBABILITY_TOLERANCE:
        raise ModelError(f"ONNX export differs from torch (largest probability difference {diff:.2e}); not written")
    return diff


def engine_dice(card: LungModelCard, data: Path, rows: list[dict]) -> tuple[dict, list[dict]]:
    """Dice per film through ``cxr_engine.models.lung_fields`` on ONNX Runtime, at each film's own grid."""
    segmenter = LungSegmenter(card, backend="onnx")
    results = []
    for row in rows:
        fields = segmenter.segment(read_image(data / row["image"]))
        results.append({"id": row["id"], "dice": dice(fields.mask, read_mask(data / row["mask"])),
                        "plausible": fields.found})
    summary = summarise([r["dice"] for r in results])
    summary["share_plausible"] = float(np.mean([r["plausible"] for r in results]))
    return summary, sorted(results, key=lambda r: r["dice"])


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = argparse.ArgumentParser(prog="python -m training.export_lung_unet", description=__doc__.split("\n\n")[0])
    parser.add_argument("--run", type=Path, required=True, help="a training.segment output folder")
    parser.add_argument("--data", type=Path, default=None, help="the cxr3 folder (default: the run's)")
    parser.add_argument("--out-dir", type=Path, default=Path("resources/models"))
    parser.add_argument("--name", default="lung-unet")
    parser.add_argument("--half", choices=("auto", "yes", "no"), default="auto",
                        help="store float16 weights: auto = when the test mean Dice changes by at most "
                             f"{HALF_MEAN_TOLERANCE} and no mask's by more than {HALF_MASK_TOLERANCE}")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")

    run = json.loads((args.run / "run.json").read_text(encoding="utf-8"))
    data = args.data or Path(run["args"]["data"])
    size = int(run["input_size"])
    with open(args.run / "split.csv", newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    by_split = {s: [r for r in rows if r["split"] == s] for s in ("train", "val", "test")}

    from safetensors.torch import load_file

    model = build_unet(run["decoder_channels"])
    model.load_state_dict(load_file(str(args.run / "best.safetensors")))
    model.eval()
    full, full_rows = evaluate_at_grid(model, data, by_split["test"], size)
    half_model = build_unet(run["decoder_channels"])
    half_model.load_state_dict({k: v.half().float() if v.is_floating_point() else v
                                for k, v in model.state_dict().items()})
    half_model.eval()
    half, half_rows = evaluate_at_grid(half_model, data, by_split["test"], size)
    change = max(abs(a["dice"] - b["dice"]) for a, b in zip(full_rows, half_rows))
    log.info("test Dice float32 %.4f, float16 %.4f; largest change of one mask %.2e", full["dice_mean"],
             half["dice_mean"], change)
    mean_change = abs(full["dice_mean"] - half["dice_mean"])
    use_half = args.half == "yes" or (args.half == "auto" and mean_change <= HALF_MEAN_TOLERANCE
                                      and change <= HALF_MASK_TOLERANCE)
    if use_half:
        model = half_model

    args.out_dir.mkdir(parents=True, exist_ok=True)
    onnx_bytes = _store_exact_float16(trace(model, size))
    weights_path = args.out_dir / f"{args.name}.safetensors"
    weights_sha = save_weights(model, weights_path, half=use_half)
    onnx_bytes = _add_metadata(onnx_bytes, {META_FORMAT: FORMAT, META_MODEL: args.name,
                                            META_WEIGHTS_SHA256: weights_sha})
    check_against_torch(onnx_bytes, model, size)
    onnx_path = args.out_dir / f"{args.name}.onnx"
    write_bytes_atomic(onnx_path, onnx_bytes)

    masks_csv = data / "lung_masks.csv"
    training_data = {
        "masks": "cxr3/lung_masks.csv (../shared/data)", "masks_sha256": sha256_of(masks_csv),
        "split": str(args.run / "split.csv"), "split_sha256": sha256_of(args.run / "split.csv"),
        "films": {s: len(v) for s, v in by_split.items()},
        "patients": {s: len({r["patient_id"] for r in v}) for s, v in by_split.items()},
        "split_rule": "patient-disjoint: patients shuffled with the seed, dealt to test, val, train by share of films",
        "image_source": "ieee8023_covid_chestxray (Cohen et al. COVID-19 image data collection; adult films, "
                        "many abnormal; per-image licences vary, some NC/ND)",
        "mask_source": DATA_LICENCE,
        "test_ids": sorted(r["id"] for r in by_split["test"]),
        "augmentation": "paired framing (crop/zoom-out/reposition, markers), affine jitter, flips, quarter turns, "
                        "intensity, AcquisitionShift",
    }
    card = LungModelCard(
        name=args.name, architecture="smp-unet", encoder=run["encoder"], decoder_channels=run["decoder_channels"],
        input_size=size, in_chans=run["in_chans"], mean=run["mean"], std=run["std"],
        preprocessing_version=run["preprocessing_version"], weights_file=weights_path.name,
        weights_sha256=weights_sha, weights_dtype="float16" if use_half else "float32",
        onnx_file=onnx_path.name, onnx_sha256=hashlib.sha256(onnx_bytes).hexdigest(),
        training_data=training_data,
        licence=f"Weights: research use only (trained on {DATA_LICENCE}, over images whose licences vary). "
                "Masks: CC BY 4.0, V7 Labs. Encoder start: ImageNet EfficientNet-Lite0 (Apache-2.0).",
        intended_use=INTENDED_USE + " Outlines the lung fields of a frontal chest film for the heat-map check and "
                                    "the cardiothoracic ratio; not validated for children or lateral films.",
        notes=(f"U-Net (segmentation-models-pytorch {run['smp_version']}) with a timm {run['encoder']} encoder "
               "started from the ImageNet EfficientNet-Lite0 weights (training.pretrained). Input: the "
               "classifier's preprocessing steps 1-3 at input_size, replicated to 3 channels; output: lung "
               "probability at input_size, resized back to the image's pixel grid (bilinear), thresholded at "
               "0.5, specks and holes removed (cxr_engine.models.lung_fields.clean_mask). Float16 rounding of the "
               f"weights: test mean Dice change {mean_change:.1e}, largest change of one test mask's Dice "
               f"{change:.1e}. Dice figures are at each film's own pixel grid, through cxr_engine.models.lung_fields on "
               "ONNX Runtime."),
        created_by_command=run["command"] + " && python -m training.export_lung_unet " + shlex.join(argv),
    )
    card.path = args.out_dir / f"{args.name}.json"
    test, worst = engine_dice(card, data, by_split["test"])
    val, _ = engine_dice(card, data, by_split["val"])
    test["worst"] = worst[:5]
    card.test_metrics, card.validation_metrics = test, val
    card.save(card.path)
    log.info("wrote %s, %s (%.1f MB) and %s; test %s", weights_path, onnx_path, len(onnx_bytes) / 1e6, card.path,
             {k: v for k, v in test.items() if k != "worst"})
    return 0


if __name__ == "__main__":
    sys.exit(main())
