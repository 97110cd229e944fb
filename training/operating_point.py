"""Choose a model's operating point on the validation split: one logit offset per class.

A network trained on class-balanced draws ends with class boundaries that suit the draws, not
the reading room: here it calls a few percent of normal adults COVID-19 and misses a third of
adult pneumonia, while the acceptance list (issue 12) bounds exactly those rates. Adding a
constant offset ``b_k`` to class k's logit moves the boundaries without touching what the network
reads (the Grad-CAM gradients, ``d z_k / d features``, are unchanged; temperature scaling is fitted
afterwards on top). The offsets are chosen on the validation split only, on a grid, as the
offsets that satisfy the population bars with margin and then find the most adult pneumonia; they
are written into the classifier's bias of a copy of the run (``<run>_op``), so every later step
(``training.evaluate``, ``training.export``, the engine) sees an ordinary model.

Run: ``python -m training.operating_point --run training/work/runs/lite0_224_sqrt
[--logits training/reports/lite0_224_sqrt/logits.npz]``
"""
from __future__ import annotations

import argparse
import itertools
import json
import logging
import shutil
import sys
from pathlib import Path
from typing import Sequence

import numpy as np

from cxr_engine.models.model_card import CLASSES

from . import metrics as M
from .evaluate import (
    LogitCache,
    card_from_run,
    fingerprint,
    label_indices,
    make_classifier,
    predict_logits,
    prediction_rows,
    run_manifest,
    split_rows,
)
from .populations import population_section
from .script_logging import script_logging

log = logging.getLogger("training.operating_point")

#: The rates the operating point must hold on validation; a margin inside issue 12's bars
#: (adult normals called COVID-19 <= 3 %, children's normals called pneumonia <= 10 %,
#: adult pneumonia precision >= 0.80, accuracy >= 0.92, F1 >= 0.90) because 30-700 films
#: per population leave a few points of sampling error.
CONSTRAINTS = {"adult_normal_called_covid_max": 0.025, "pediatric_normal_called_pneumonia_max": 0.08,
               "adult_pneumonia_precision_min": 0.85, "accuracy_min": 0.925, "f1_min": 0.905}
GRID = np.round(np.arange(-1.5, 1.5001, 0.125), 3)
BIAS_KEY = "classifier.bias"


def figures(rows: Sequence[dict], logits: np.ndarray, offsets: np.ndarray) -> dict:
    """Accuracy, per-class F1 and the population rates of ``logits + offsets`` (shape (N, K))."""
    shifted = logits + offsets
    labels = label_indices(rows)
    preds = shifted.argmax(axis=1)
    _, _, f1 = M.precision_recall_f1(M.confusion_matrix(labels, preds, len(CLASSES)))
    populations = population_section(prediction_rows(rows, shifted))
    rsna = populations["adult_pneumonia_rsna"]
    return {"accuracy": M.accuracy(labels, preds), "f1": np.nan_to_num(f1).tolist(),
            "adult_pneumonia_recall": rsna["recall"] or 0.0,
            "adult_pneumonia_precision": rsna["precision"] if rsna["precision"] is not None else 1.0,
            "adult_normal_called_covid": populations["adult_normal_called_covid"]["rate"] or 0.0,
            "pediatric_normal_called_pneumonia": populations["pediatric_normal_called_pneumonia"]["rate"] or 0.0}


def violations(f: dict) -> float:
    """How far ``f`` is outside :data:`CONSTRAINTS` (0 when inside), in summed rate units."""
    c = CONSTRAINTS
    return (max(0.0, f["adult_normal_called_covid"] - c["adult_normal_called_covid_max"])
            + max(0.0, f["pediatric_normal_called_pneumonia"] - c["pediatric_normal_called_pneumonia_max"])
            + max(0.0, c["adult_pneumonia_precision_min"] - f["adult_pneumonia_precision"])
            + max(0.0, c["accuracy_min"] - f["accuracy"])
            + sum(max(0.0, c["f1_min"] - x) for x in f["f1"]))


def choose(rows: Sequence[dict], logits: np.ndarray) -> tuple[np.ndarray, dict, list[dict]]:
    """The offsets (normal's fixed at 0) that meet the constraints, or come nearest, and then have
    the highest adult pneumonia recall, the highest macro-F1 and the smallest size; with every
    grid point's figures."""
    table = []
    for b_pneumonia, b_covid in itertools.product(GRID, GRID):
        offsets = np.array([0.0, b_pneumonia, b_covid])
        f = figures(rows, logits, offsets)
        table.append({"offsets": offsets.tolist(), **f, "violation": violations(f)})
    best = min(table, key=lambda t: (round(t["violation"], 6), -t["adult_pneumonia_recall"],
                                     -float(np.mean(t["f1"])), float(np.abs(t["offsets"]).sum())))
    return np.array(best["offsets"]), best, table


def val_logits(run: Path, logits_file: Path | None, threads: int) -> tuple[list[dict], np.ndarray]:
    """The run's whole validation split and its logits: from an evaluation's cache when its
    fingerprint matches the run's weights, else computed (and cached in ``run/val_logits.npz``)."""
    card = card_from_run(run)
    rows = split_rows(run_manifest(run), "val", None, 0)
    key = fingerprint(card, [r["path"] for r in rows], "plain")
    for path in [p for p in (logits_file, run / "val_logits.npz") if p]:
        found = LogitCache(path).get("val", key) if path.exists() else None
        if found is not None:
            log.info("validation logits from %s", path)
            return rows, found
    import torch

    torch.set_num_threads(threads)
    classifier = make_classifier(card, "cpu")
    logits = predict_logits(classifier, [r["path"] for r in rows], 32, "val")
    LogitCache(run / "val_logits.npz").put("val", key, logits)
    return rows, logits


def write_run(run: Path, out: Path, offsets: np.ndarray, chosen: dict, base: dict, command: str) -> None:
    """``run`` copied to ``out`` with ``offsets`` added to the classifier's bias."""
    from safetensors.numpy import load_file, save_file

    out.mkdir(parents=True, exist_ok=True)
    tensors = load_file(str(run / "best.safetensors"))
    if BIAS_KEY not in tensors or tensors[BIAS_KEY].shape != (len(CLASSES),):
        raise ValueError(f"{run}/best.safetensors: no {BIAS_KEY} of shape ({len(CLASSES)},)")
    tensors[BIAS_KEY] = (tensors[BIAS_KEY].astype(np.float64) + offsets).astype(tensors[BIAS_KEY].dtype)
    save_file(tensors, str(out / "best.safetensors"))
    for name in ("metrics.jsonl", "train.log", "split_manifest.csv"):
        if (run / name).exists():
            shutil.copy2(run / name, out / name)
    if (run / "best.json").exists():
        _write_draft_card(run, out)
    info = json.loads((run / "run.json").read_text(encoding="utf-8"))
    info["operating_point"] = {
        "base_run": str(run), "logit_offsets": dict(zip(CLASSES, offsets.tolist())),
        "chosen_on": "validation split (all of it)", "constraints": CONSTRAINTS,
        "validation_before": base, "validation_after": chosen, "command": command}
    (out / "run.json").write_text(json.dumps(info, indent=2) + "\n", encoding="utf-8")


def _write_draft_card(run: Path, out: Path) -> None:
    """``run/best.json`` (the draft card of the best epoch: its input size among others) into ``out``, naming the
    new weights when it named the run's: ``training.evaluate`` takes the input size from the draft only when its
    sha256 is the weights' own, so a copy naming the old ones put a 160-px epoch of a ``--size-schedule`` run
    through evaluation at the run's last size."""
    from cxr_engine.models.weights import sha256_file

    draft = json.loads((run / "best.json").read_text(encoding="utf-8"))
    if draft.get("weights_sha256") == sha256_file(run / "best.safetensors"):
        draft["weights_sha256"] = sha256_file(out / "best.safetensors")
    (out / "best.json").write_text(json.dumps(draft, indent=2) + "\n", encoding="utf-8")


def summary(name: str, f: dict) -> str:
    return (f"{name}: acc {f['accuracy']:.3f}, F1 {'/'.join(f'{x:.3f}' for x in f['f1'])}, adult pneumonia "
            f"recall {f['adult_pneumonia_recall']:.3f} precision {f['adult_pneumonia_precision']:.3f}, adult "
            f"normals called COVID-19 {f['adult_normal_called_covid']:.3f}, children's normals called pneumonia "
            f"{f['pediatric_normal_called_pneumonia']:.3f}")


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m training.operating_point", description=__doc__.split("\n")[0])
    parser.add_argument("--run", type=Path, required=True, help="training run folder (run.json, best.safetensors)")
    parser.add_argument("--logits", type=Path, help="an evaluation's logits.npz to take the validation logits from")
    parser.add_argument("--out", type=Path, help="new run folder (default: <run>_op)")
    parser.add_argument("--threads", type=int, default=1)
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    command = " ".join(["python -m training.operating_point", *(argv if argv is not None else sys.argv[1:])])
    out = args.out or args.run.with_name(args.run.name + "_op")
    out.mkdir(parents=True, exist_ok=True)
    with script_logging(out / "operating_point.log"):
        rows, logits = val_logits(args.run, args.logits, args.threads)
        base = figures(rows, logits, np.zeros(len(CLASSES)))
        offsets, chosen, table = choose(rows, logits)
        log.info("%s", summary("validation, no offsets", base))
        log.info("%s", summary(f"validation, offsets {offsets.tolist()}", chosen))
        if chosen["violation"] > 0:
            log.warning("no grid point meets the constraints on validation; the nearest is kept")
        write_run(args.run, out, offsets, chosen, base, command)
        (out / "operating_point_grid.json").write_text(json.dumps(table) + "\n", encoding="utf-8")
        log.info("wrote %s", out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
