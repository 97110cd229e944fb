"""Does ``cxr-classify`` reproduce a bundled model's test-split figures from the image files?

Runs the installed command line (``python -m cxr_engine``, exactly what a user runs) on every
test-split image of the split manifest, reads its CSV, and compares accuracy, per-class F1 and
the confusion matrix with the ``test_metrics`` in the model card. Exit status 1 when the
accuracy differs by more than ``--tolerance``.

    python -m training.check_cli --model efficientnet-lite0 --manifest training/work/curated/split_manifest.csv
"""
from __future__ import annotations

import argparse
import csv
import json
import subprocess
import sys
import tempfile
from pathlib import Path

from cxr_engine.models.model_card import CLASSES

from .data import read_manifest
from .metrics import accuracy, confusion_matrix, precision_recall_f1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m training.check_cli", description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", required=True, help="bundled model name or card .json")
    parser.add_argument("--manifest", type=Path, required=True, help="the split manifest the card was tested on")
    parser.add_argument("--backend", default="auto", choices=("auto", "torch", "onnx"))
    parser.add_argument("--tolerance", type=float, default=0.001, help="allowed accuracy difference")
    parser.add_argument("--out", type=Path, default=None, help="write the comparison as JSON here")
    args = parser.parse_args(argv)

    from cxr_engine.models.model_card import find_card

    card = find_card(args.model)
    rows = read_manifest(args.manifest, "test")
    with tempfile.TemporaryDirectory(prefix="cxr-check-cli-") as temp:
        csv_path = Path(temp) / "results.csv"
        paths = [row["path"] for row in rows]
        command = [sys.executable, "-m", "cxr_engine", *paths, "--model", str(card.path),
                   "--backend", args.backend, "--csv", str(csv_path)]
        done = subprocess.run(command, capture_output=True, text=True, check=False)
        if done.returncode not in (0, 1) or not csv_path.exists():
            print(done.stderr[-2000:], file=sys.stderr)
            return 2
        with open(csv_path, newline="", encoding="utf-8") as handle:
            results = {row["path"]: row for row in csv.DictReader(handle)}

    labels, preds, failed = [], [], []
    for row in rows:
        result = results.get(row["path"])
        if result is None or result["status"] != "ok":
            failed.append(row["path"])
            continue
        labels.append(CLASSES.index(row["label"]))
        preds.append(CLASSES.index(result["prediction"]))
    confusion = confusion_matrix(labels, preds, len(CLASSES))
    _, _, f1 = precision_recall_f1(confusion)
    expected = card.test_metrics
    report = {
        "model": card.name, "backend": args.backend, "images": len(rows), "classified": len(labels),
        "failed": failed, "accuracy": accuracy(labels, preds),
        "f1": {cls: float(value) for cls, value in zip(CLASSES, f1)},
        "confusion": confusion.tolist(),
        "card_accuracy": expected.get("accuracy"), "card_confusion": expected.get("confusion"),
    }
    report["accuracy_difference"] = (None if report["card_accuracy"] is None
                                     else report["accuracy"] - report["card_accuracy"])
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    print(json.dumps(report, indent=2))
    difference = report["accuracy_difference"]
    return 0 if difference is not None and abs(difference) <= args.tolerance and not failed else 1


if __name__ == "__main__":
    sys.exit(main())
