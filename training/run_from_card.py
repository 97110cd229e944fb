"""A run folder from a bundled model card, for the tools that take runs (``training.ensemble_choice``,
``training.operating_point``, ``training.framing_choice``) when the run the card was exported from is gone.

The folder holds ``run.json`` (the card's architecture and input size, the split manifest given),
``best.safetensors`` (the card's weights, checked against its sha256 first: float16 as shipped, with any
operating-point offsets already in the classifier's bias) and ``best.json`` (the card itself, naming them).
What the tools then compute is the shipped model's raw logits, before the card's temperature.

Run: ``python -m training.run_from_card --card resources/models/efficientnet-lite0.json
--manifest training/work/curated_sqrt/split_manifest.csv --out training/work/runs/shipped_efficientnet-lite0``
"""
from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path
from typing import Sequence

from cxr_engine.models.model_card import CLASSES, ModelCard
from cxr_engine.models.registry import get_architecture
from cxr_engine.models.weights import sha256_file


def write_run(card_path: Path, manifest: Path, out: Path) -> Path:
    """Write the run folder ``out`` for the card at ``card_path``; returns ``out``.

    Raises ``cxr_engine.models.model_card.ModelError`` for a card that is not a single classifier's (an averaged
    model's, the lung model's), ``FileNotFoundError`` when its weights or the manifest are missing,
    ``ValueError`` when the weights do not match its sha256 or its classes, mean or std are not those a
    training run of its architecture has, and ``FileExistsError`` when ``out`` already holds a run."""
    card = ModelCard.load(card_path)
    weights = card.weights_path
    if not weights.is_file():
        raise FileNotFoundError(f"{card_path}: its weights {weights} are missing")
    if not Path(manifest).is_file():
        raise FileNotFoundError(f"no split manifest at {manifest}")
    if sha256_file(weights) != card.weights_sha256:
        raise ValueError(f"{weights}: sha256 differs from the card's {card.weights_sha256[:12]}…")
    # A run's card is rebuilt from its architecture (training.evaluate.card_from_run): a card that differs
    # from it in classes or normalisation would be read wrongly, silently.
    arch = get_architecture(card.architecture)
    if list(card.classes) != list(CLASSES) or list(card.mean) != list(arch.mean) or list(card.std) != list(arch.std):
        raise ValueError(f"{card_path}: classes, mean or std differ from {card.architecture}'s as training runs use "
                         "them; a run folder would misread it")
    if (out / "run.json").exists():
        raise FileExistsError(f"{out}: already a run folder")
    out.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(weights, out / "best.safetensors")
    draft = json.loads(card_path.read_text(encoding="utf-8"))
    # The raw network only: no ONNX file comes along, and the tools fit their own temperature and offsets.
    draft.update(weights_file="best.safetensors", onnx_file="", onnx_sha256="", temperature=1.0)
    (out / "best.json").write_text(json.dumps(draft, indent=2) + "\n", encoding="utf-8")
    info = {"args": {"arch": card.architecture, "size": card.input_size, "manifest": str(manifest)},
            "preprocessing_version": card.preprocessing_version,
            "from_card": {"card": str(card_path), "weights_sha256": card.weights_sha256}}
    (out / "run.json").write_text(json.dumps(info, indent=2) + "\n", encoding="utf-8")
    return out


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m training.run_from_card", description=__doc__.split("\n")[0])
    parser.add_argument("--card", type=Path, required=True, help="a bundled classifier card (.json)")
    parser.add_argument("--manifest", type=Path, required=True, help="the split manifest the card was tested on")
    parser.add_argument("--out", type=Path, required=True, help="the new run folder")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    print(write_run(args.card, args.manifest, args.out))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
