"""Per-film features for the out-of-scope and child heads, computed once and cached.

    python -m training.scope_features --card resources/models/efficientnet-lite0.json \
        --manifest training/work/curated/split_manifest.csv \
        --other ../shared/data/cxr_other/manifest.csv --threads 1

For every film of the in-scope splits (``--train-limit`` training films drawn with a fixed seed, plus
every NIH and RSNA training film, which the child head needs) and of ``cxr_other``, through the
engine's reader and model inputs:

- ``logits`` (N, classes) and ``pooled`` (N, C): the classifier's raw logits and its last feature map
  averaged over space (the layer its Grad-CAM reads), from the card's ONNX export;
- ``checks`` (N, 919): the image checks' thumbnail features (``cxr_engine.models.image_checks.features``);
- ``lung`` (N, S, S) uint8: the lung model's probability at its input grid, times 255;
- ``ctr`` (N,): the cardiothoracic ratio proposed from the lung mask (NaN where none is found).

Written to ``<out>/<card name>/<split>.npz`` with the films' ``id``; a split already there is kept (delete
the file to recompute it). ``--threads`` limits ONNX Runtime's threads per session.
"""
from __future__ import annotations

import argparse
import csv
import hashlib
import logging
import time
from pathlib import Path

import numpy as np

from .script_logging import script_logging

logger = logging.getLogger("training.scope_features")

#: In-scope training films from these sources are always read (the child head's non-Kermany films).
ALWAYS_TRAIN_SOURCES = ("nih_cxr14", "rsna_pneumonia")


def read_manifest(path: Path) -> list[dict]:
    with open(path, newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def film_path(row: dict, manifest: Path) -> Path:
    return Path(row["path"]) if row.get("path") else manifest.parent / row["file"]


def split_rows(rows: list[dict], train_limit: int, seed: int = 0) -> dict[str, list[dict]]:
    """The in-scope films read per split: all of val and test; of train, every NIH/RSNA film plus
    ``train_limit`` others drawn with ``seed``."""
    out = {split: [r for r in rows if r["split"] == split] for split in ("val", "test")}
    train = [r for r in rows if r["split"] == "train"]
    always = [r for r in train if r["source"] in ALWAYS_TRAIN_SOURCES]
    rest = [r for r in train if r["source"] not in ALWAYS_TRAIN_SOURCES]
    rng = np.random.default_rng(seed)
    drawn = [rest[i] for i in sorted(rng.choice(len(rest), min(train_limit, len(rest)), replace=False))]
    out["train"] = always + drawn
    return out


class Extractor:
    """The classifier's and the lung model's ONNX sessions (``threads`` each) and the image checks."""

    def __init__(self, card_path: Path, threads: int):
        import onnxruntime

        from cxr_engine.models.lung_fields import LungSegmenter, lung_card
        from cxr_engine.models.model_card import ModelCard
        from cxr_engine.models.onnx_backend import verified_onnx_bytes

        self.card = ModelCard.load(card_path)
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        self.session = onnxruntime.InferenceSession(verified_onnx_bytes(self.card), options,
                                                    providers=["CPUExecutionProvider"])
        self.segmenter = LungSegmenter(lung_card(), backend="onnx", threads=threads).load()

    def films(self, paths: list[Path]) -> dict[str, np.ndarray]:
        from cxr_engine.models.cardiothoracic import CtrNotFound, propose_ctr
        from cxr_engine.models.classifier import model_input
        from cxr_engine.models.image_checks import features, thumbnail
        from cxr_engine.models.lung_fields import fields_from_probability
        from cxr_engine.models.onnx_backend import FEATURES_NAME, INPUT_NAME, LOGITS_NAME
        from cxr_engine.reading.read import read_image

        out: dict[str, list] = {"logits": [], "pooled": [], "checks": [], "lung": [], "ctr": []}
        for path in paths:
            image = read_image(path)
            display = image.display()
            logits, feature_map = self.session.run([LOGITS_NAME, FEATURES_NAME],
                                                   {INPUT_NAME: model_input(self.card, image, display)[None]})
            out["logits"].append(logits[0])
            out["pooled"].append(feature_map[0].mean(axis=(1, 2)))
            out["checks"].append(features(thumbnail(image)))
            prob = self.segmenter.predict(self.segmenter.model_input(display, image.padding)[None])[0]
            out["lung"].append(np.round(prob * 255).astype(np.uint8))
            fields = fields_from_probability(prob, display.shape, self.segmenter.card.threshold)
            try:
                ctr = propose_ctr(fields.mask, display).ratio if fields.found else np.nan
            except CtrNotFound:
                ctr = np.nan
            out["ctr"].append(ctr)
        return {k: np.asarray(v, dtype=np.float32 if k != "lung" else np.uint8) for k, v in out.items()}


def extract(extractor: Extractor, rows: list[dict], manifest: Path, target: Path, chunk: int = 200) -> None:
    """Features of ``rows`` into ``target`` (.npz), computed in chunks (a partial file per chunk, so an
    interrupted run resumes)."""
    if target.exists():
        logger.info("%s exists: kept", target)
        return
    parts_dir = target.with_suffix(".parts")
    parts_dir.mkdir(parents=True, exist_ok=True)
    started = time.time()
    for start in range(0, len(rows), chunk):
        part = parts_dir / f"{start:06d}.npz"
        if part.exists():
            continue
        batch = rows[start:start + chunk]
        arrays = extractor.films([film_path(r, manifest) for r in batch])
        np.savez_compressed(part, id=np.array([r["id"] for r in batch]), **arrays)
        done = start + len(batch)
        logger.info("%s: %d / %d films (%.0f ms per film)", target.stem, done, len(rows),
                    1000 * (time.time() - started) / max(1, done - start))
    parts = [np.load(p) for p in sorted(parts_dir.glob("*.npz"))]
    merged = {k: np.concatenate([p[k] for p in parts]) for k in parts[0].files}
    np.savez_compressed(target, **merged)
    for p in parts_dir.glob("*.npz"):
        p.unlink()
    parts_dir.rmdir()


def load(folder: Path, split: str) -> dict[str, np.ndarray]:
    """A cached split's arrays (``id``, ``logits``, ``pooled``, ``checks``, ``lung``, ``ctr``)."""
    with np.load(folder / f"{split}.npz") as data:
        return {k: data[k] for k in data.files}


def add_input_arguments(parser: argparse.ArgumentParser) -> None:
    """``--card``, ``--manifest``, ``--other``: what the features are computed from (here and in
    ``training.scope_heads``, which computes missing features with the same three)."""
    parser.add_argument("--card", type=Path, default=Path("resources/models/efficientnet-lite0.json"))
    parser.add_argument("--manifest", type=Path, default=Path("training/work/curated/split_manifest.csv"))
    parser.add_argument("--other", type=Path, required=True, help="cxr_other's manifest.csv")


def features_folder(root: Path, card, manifest: Path) -> Path:
    """Where the features of ``card``'s weights on ``manifest``'s films are cached: the folder name
    holds the card's name, its weights' sha256 and the manifest's, so features of other weights (a
    retrained model under the same name) or of another split are never read back."""
    manifest_sha = hashlib.sha256(Path(manifest).read_bytes()).hexdigest()
    return root / f"{card.name}-{card.weights_sha256[:12]}-{manifest_sha[:12]}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    add_input_arguments(parser)
    parser.add_argument("--out", type=Path, default=Path("training/work/scope_features"))
    parser.add_argument("--train-limit", type=int, default=1500)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--splits", nargs="+", default=["other", "val", "test", "train"])
    args = parser.parse_args(argv)
    extractor = Extractor(args.card, args.threads)
    folder = features_folder(args.out, extractor.card, args.manifest)
    folder.mkdir(parents=True, exist_ok=True)
    with script_logging(folder / "scope_features.log", file_mode="a"):
        rows = split_rows(read_manifest(args.manifest), args.train_limit)
        rows["other"] = read_manifest(args.other)
        for split in args.splits:
            manifest = args.other if split == "other" else args.manifest
            extract(extractor, rows[split], manifest, folder / f"{split}.npz")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
