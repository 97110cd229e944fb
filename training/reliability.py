"""Validation reliability figures for a bundled model card: "of 100 validation films given a COVID-19
probability of 90–100 %, N were COVID-19", as the app and the PDF state them (``cxr_engine.models.model_limits``).

    python -m training.reliability --card resources/models/efficientnet-lite0.json \\
        --manifest training/work/curated/split_manifest.csv --write

Each film of the split (default ``val``; only the sources the card was trained on, unless
``--all-sources``) goes through the engine as in the app: ``read_image`` -> the card's classifier
with its temperature (``--backend``, default ONNX Runtime). The table (one-vs-rest per class over
ten equal-width probability bins, ``model_limits.reliability_table``) is printed as JSON and, with
``--write``, stored in the card as ``validation_metrics.reliability`` together with the weights'
sha256, the manifest's sha256, the sources, n and this command; nothing else in the card changes.
The temperature was fitted on the same validation split, so these figures are slightly kinder
than the test split's would be (the card's ``test_metrics.ece`` is the independent check).
"""
from __future__ import annotations

import argparse
import hashlib
import json
import logging
import shlex
import sys
from pathlib import Path
from typing import Sequence

import numpy as np

log = logging.getLogger("training.reliability")


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def split_rows(manifest: Path, split: str, sources: set[str] | None) -> list[dict]:
    """The manifest's rows of ``split`` (from ``sources`` when given); ``ValueError`` when none."""
    import csv

    with open(manifest, newline="", encoding="utf-8") as handle:
        rows = [r for r in csv.DictReader(handle) if r.get("split") == split
                and (sources is None or r.get("source") in sources)]
    if not rows:
        raise ValueError(f"{manifest}: no rows in the {split!r} split" + (" from those sources" if sources else ""))
    return rows


def classify(card, rows: Sequence[dict], backend: str, batch_size: int = 16) -> np.ndarray:
    """(N, K) probabilities, as the app computes them (the card's temperature). A film that cannot be
    read stops the run with its path: the split's films are all readable by construction."""
    from tqdm import tqdm

    from cxr_engine.models.backends import create_classifier
    from cxr_engine.reading.read import read_image

    classifier = create_classifier(card, backend=backend, device="cpu")
    classifier.load()
    out = []
    for start in tqdm(range(0, len(rows), batch_size), desc=card.name, unit="batch",
                      mininterval=5 if not sys.stderr.isatty() else 0.5):
        images = [read_image(r["path"]) for r in rows[start:start + batch_size]]
        out.extend(p.probabilities for p in classifier.predict(images))
    return np.asarray(out, dtype=np.float64)


def reliability_section(card, manifest: Path, split: str, rows: Sequence[dict], probs: np.ndarray,
                        sources: Sequence[str], command: str, n_bins: int = 10) -> dict:
    """The card's ``validation_metrics.reliability`` object."""
    from cxr_engine.models.model_limits import reliability_table

    from training.curate import coarse_age

    labels = np.array([list(card.classes).index(r["label"]) for r in rows], dtype=np.int64)
    table = reliability_table(probs, labels, card.classes, n_bins)
    # Children's and adults' own tables: 93 % of the pneumonia films are children, so the pooled bins speak for
    # children; an adult's film is told what the probability meant for adults (a reading radiologist's finding).
    ages = np.array([coarse_age(r.get("age_group", "")) for r in rows])
    by_age_group = {group: {"n": int((ages == group).sum()),
                            **reliability_table(probs[ages == group], labels[ages == group], card.classes, n_bins)}
                    for group in ("pediatric", "adult") if (ages == group).any()}
    for group in by_age_group.values():
        del group["edges"]  # the pooled table's
    return {"split": split, "n": len(rows), "sources": sorted(sources), "manifest": str(manifest),
            "manifest_sha256": sha256_of(manifest), "weights_sha256": card.weights_sha256,
            "temperature": card.temperature, **table, "by_age_group": by_age_group,
            "note": "one-vs-rest per class: count[b] films got that class's probability in bin b, positives[b] "
                    "of them had that label; through the engine with the card's temperature, which was "
                    "fitted on this split",
            "command": command}


def write_into_card(card_path: Path, section: dict) -> None:
    """Store ``section`` as ``validation_metrics.reliability``, keeping every other key as it was."""
    from .card_keys import update_card

    def edit(data: dict) -> None:
        data.setdefault("validation_metrics", {})["reliability"] = section

    update_card(card_path, edit)


def main(argv: Sequence[str] | None = None) -> int:
    from cxr_engine.models.model_card import load_card

    parser = argparse.ArgumentParser(prog="python -m training.reliability", description=__doc__.split("\n\n")[0])
    parser.add_argument("--card", type=Path, required=True, help="model card JSON")
    parser.add_argument("--manifest", type=Path, required=True, help="split manifest from training.curate")
    parser.add_argument("--split", default="val", choices=("train", "val", "test"))
    parser.add_argument("--all-sources", action="store_true",
                        help="every source of the split, not only those the card was trained on")
    parser.add_argument("--bins", type=int, default=10)
    parser.add_argument("--backend", default="onnx", choices=("onnx", "torch"))
    parser.add_argument("--write", action="store_true", help="store the table in the card")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")

    card = load_card(args.card)  # an ensemble's card too
    trained = set((card.training_data or {}).get("sources", {}))
    sources = None if args.all_sources or not trained else trained
    rows = split_rows(args.manifest, args.split, sources)
    used = sorted({r.get("source", "") for r in rows})
    log.info("%s: %d %s films from %s", card.name, len(rows), args.split, ", ".join(used))
    probs = classify(card, rows, args.backend)
    command = "python -m training.reliability " + " ".join(shlex.quote(a) for a in (argv or sys.argv[1:]))
    section = reliability_section(card, args.manifest, args.split, rows, probs, used, command, args.bins)
    print(json.dumps(section, indent=1))
    if args.write:
        write_into_card(args.card, section)
        log.info("wrote validation_metrics.reliability into %s", args.card)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
