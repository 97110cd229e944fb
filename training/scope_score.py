"""Out-of-scope scores for chest films unlike the training data: fitted, thresholded, measured.

    python -m training.scope_score --card resources/models/efficientnet-lite0.json \
        --manifest training/work/curated/split_manifest.csv \
        --other ../shared/data/cxr_other/manifest.csv --report training/reports/scope_lite0

Three scores from one ONNX Runtime pass of the card's classifier (logits and the pooled last feature
map, the layer its Grad-CAM reads):

- ``msp``: 1 - the top calibrated probability (Hendrycks & Gimpel 2017);
- ``energy``: -T·logsumexp(logits / T) with the card's temperature T (Liu et al. 2020);
- ``mahalanobis``: the smallest class-conditional Mahalanobis distance of the pooled features with a
  shared covariance (Lee et al. 2018), in a 64-dimensional PCA of the features, fitted on training
  films only (``--train-limit`` of them);
- ``knn``: 1 - the cosine similarity of the L2-normalised pooled features to their ``--knn-k``-th nearest
  training film (Sun et al. 2022, "Out-of-distribution detection with deep nearest neighbors", ICML), the
  same training films. Measured only: the engine ships the MSP threshold, and a nearest-neighbour score
  would need the training films' features in the bundle.

Each threshold flags ``--val-flag-rate`` of the untouched validation films (chosen there only). The
report gives, per score, the share of the test split and of ``cxr_other`` (films read as abnormal
without pneumonia-like opacity) flagged at that threshold, the curve (in-scope test flag rate against
cxr_other flag rate over thresholds), the AUROC, and the calls on the cxr_other films left unflagged.
With ``--write-card`` the MSP threshold is recorded in the card (key ``out_of_scope``), where the engine
reads it (``cxr_engine.models.scope_score``): rerun for every new card.

An averaged model's card (``cxr_engine.models.ensemble_card``) has logits z but no pooled features of its
own: it gets ``msp`` and ``energy`` from z on the validation, test and cxr_other films, computed as
``training.evaluate`` does from its members' evaluation caches (``--reports-dir``, ``--member-cache``; a
member not cached there is run), and no Mahalanobis score.
"""
from __future__ import annotations

import argparse
import csv
import json
import logging
import shlex
import sys
import time
from collections import Counter
from pathlib import Path

import numpy as np

from cxr_engine.models.model_card import ModelCard
from cxr_engine.models.scope_score import SCORE_KEY, msp_score

from .script_logging import script_logging

logger = logging.getLogger("training.scope_score")

PCA_DIMS = 64
CURVE_QUANTILES = (0.5, 0.7, 0.8, 0.9, 0.95, 0.97, 0.98, 0.99, 0.995)


def read_rows(manifest: Path, split: str | None, limit: int | None, seed: int = 0) -> list[dict]:
    with open(manifest, newline="", encoding="utf-8") as handle:
        rows = [r for r in csv.DictReader(handle) if split is None or r.get("split") == split]
    if limit and len(rows) > limit:
        rng = np.random.default_rng(seed)
        rows = [rows[i] for i in sorted(rng.choice(len(rows), limit, replace=False))]
    return rows


def row_path(row: dict, manifest: Path) -> Path:
    return Path(row["path"]) if row.get("path") else manifest.parent / row["file"]


def run_model(card: ModelCard, paths: list[Path], batch_size: int = 16) -> tuple[np.ndarray, np.ndarray]:
    """(logits (N, classes), pooled features (N, C)) of the card's ONNX export, through the engine's
    reader and model input."""
    import onnxruntime

    from cxr_engine.reading.read import read_image
    from cxr_engine.models.onnx_backend import FEATURES_NAME, INPUT_NAME, LOGITS_NAME, verified_onnx_bytes
    from cxr_engine.models.classifier import model_input

    session = onnxruntime.InferenceSession(verified_onnx_bytes(card), providers=["CPUExecutionProvider"])
    logits, pooled = [], []
    for start in range(0, len(paths), batch_size):
        batch = np.stack([model_input(card, read_image(p)) for p in paths[start:start + batch_size]])
        out_logits, features = session.run([LOGITS_NAME, FEATURES_NAME], {INPUT_NAME: batch})
        logits.append(out_logits)
        pooled.append(features.mean(axis=(2, 3)))
        if start % (batch_size * 20) == 0:
            logger.info("%d / %d films", start + len(batch), len(paths))
    return np.concatenate(logits), np.concatenate(pooled)


def energy(logits: np.ndarray, temperature: float) -> np.ndarray:
    scaled = logits.astype(np.float64) / temperature
    top = scaled.max(axis=1, keepdims=True)
    return -temperature * (top[:, 0] + np.log(np.exp(scaled - top).sum(axis=1)))


class Mahalanobis:
    """Class means and a shared (Ledoit–Wolf shrunk) covariance in a PCA of the pooled features."""

    def __init__(self, features: np.ndarray, labels: np.ndarray):
        from sklearn.covariance import LedoitWolf
        from sklearn.decomposition import PCA

        self.pca = PCA(PCA_DIMS, random_state=0).fit(features)
        z = self.pca.transform(features)
        self.means = np.stack([z[labels == c].mean(axis=0) for c in np.unique(labels)])
        centred = z - self.means[np.searchsorted(np.unique(labels), labels)]
        self.precision = LedoitWolf().fit(centred).precision_

    def score(self, features: np.ndarray) -> np.ndarray:
        z = self.pca.transform(features)
        d = z[:, None, :] - self.means[None]
        return np.sqrt(np.einsum("nkd,de,nke->nk", d, self.precision, d).min(axis=1))


class NearestNeighbours:
    """Distance to the k-th nearest training film in the L2-normalised pooled features (Sun et al. 2022)."""

    def __init__(self, features: np.ndarray, k: int):
        if not 1 <= k <= len(features):
            raise ValueError(f"--knn-k {k} must lie in 1..{len(features)} (the training films read)")
        self.bank, self.k = _unit_rows(features), k

    def score(self, features: np.ndarray) -> np.ndarray:
        """(N,) float64: 1 - the cosine similarity to the k-th most similar training film."""
        similarity = _unit_rows(features) @ self.bank.T
        kth = -np.partition(-similarity, self.k - 1, axis=1)[:, self.k - 1]
        return 1.0 - kth.astype(np.float64)


def _unit_rows(features: np.ndarray) -> np.ndarray:
    features = np.asarray(features, dtype=np.float32)
    return features / np.maximum(np.linalg.norm(features, axis=1, keepdims=True), 1e-12)


def auroc(inside: np.ndarray, outside: np.ndarray) -> float:
    """P(score of an outside film > score of an inside film), ties counting half."""
    from scipy.stats import rankdata

    ranks = rankdata(np.concatenate([inside, outside]))
    n_in, n_out = len(inside), len(outside)
    return float((ranks[n_in:].sum() - n_out * (n_out + 1) / 2) / (n_in * n_out))


def measure(name: str, val: np.ndarray, test: np.ndarray, other: np.ndarray, flag_rate: float) -> dict:
    threshold = float(np.quantile(val, 1 - flag_rate))
    curve = []
    for q in CURVE_QUANTILES:
        t = float(np.quantile(val, q))
        curve.append({"val_quantile": q, "threshold": t, "test_flagged": float((test > t).mean()),
                      "other_flagged": float((other > t).mean())})
    return {"score": name, "threshold": threshold, "val_flagged": float((val > threshold).mean()),
            "test_flagged": float((test > threshold).mean()), "other_flagged": float((other > threshold).mean()),
            "auroc_test_vs_other": auroc(test, other), "curve": curve}


def ensemble_outputs(args, card) -> tuple[dict[str, list[dict]], dict[str, np.ndarray]]:
    """An averaged model's rows and logits z per split (val, test, other), through ``training.evaluate``'s
    member caches (so the films and their order are the evaluation's)."""
    from .evaluate import parse_args as evaluate_args
    from .evaluate import split_logits, split_rows
    from .populations import read_other_manifest

    argv = ["--card", str(args.card), "--manifest", str(args.manifest), "--reports-dir", str(args.reports_dir)]
    for option, values in (("--member-cache", args.member_cache), ("--member-run", args.member_run)):
        for name, value in values.items():
            argv += [option, f"{name}={value}"]
    evaluation = evaluate_args(argv)
    rows = {"val": split_rows(args.manifest, "val", None, 0), "test": split_rows(args.manifest, "test", None, 0),
            "other": read_other_manifest(args.other)}
    return rows, {split: split_logits(evaluation, None, card, None, split, split_rows_)
                  for split, split_rows_ in rows.items()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--card", type=Path, required=True)
    parser.add_argument("--manifest", type=Path, default=Path("training/work/curated/split_manifest.csv"))
    parser.add_argument("--other", type=Path, required=True, help="cxr_other's manifest.csv")
    parser.add_argument("--report", type=Path, required=True)
    parser.add_argument("--train-limit", type=int, default=3000, help="training films the Mahalanobis fit reads")
    parser.add_argument("--knn-k", type=int, default=50, help="the nearest training film counted by the knn score")
    parser.add_argument("--val-flag-rate", type=float, default=0.05)
    parser.add_argument("--write-card", action="store_true", help="record the MSP threshold in the card")
    from .evaluate import add_member_options, parse_member_options

    add_member_options(parser)  # an averaged model's members' evaluation caches
    args = parser.parse_args(argv)
    parse_member_options(parser, args)
    args.command = shlex.join(["python", "-m", "training.scope_score", *(sys.argv[1:] if argv is None else argv)])
    args.report.mkdir(parents=True, exist_ok=True)
    with script_logging(args.report / "scope_score.log"):
        return _run(args)


def _run(args) -> int:
    started = time.time()
    from cxr_engine.models.model_card import load_card

    card = load_card(args.card)
    if card.architecture == "ensemble":
        rows, logits = ensemble_outputs(args, card)
        scores = {"msp": {k: msp_score(card, v) for k, v in logits.items()},
                  "energy": {k: energy(v, card.temperature) for k, v in logits.items()}}
        return _finish(args, card, rows, scores, logits["other"], started)
    rows = {"train": read_rows(args.manifest, "train", args.train_limit), "val": read_rows(args.manifest, "val", None),
            "test": read_rows(args.manifest, "test", None), "other": read_rows(args.other, None, None)}
    outputs = {}
    for split, split_rows in rows.items():
        manifest = args.other if split == "other" else args.manifest
        logger.info("%s: %d films", split, len(split_rows))
        outputs[split] = run_model(card, [row_path(r, manifest) for r in split_rows])
    work = Path("training/work/scope")  # logits and features: too large for the report folder
    work.mkdir(parents=True, exist_ok=True)
    np.savez(work / f"{card.name}_outputs.npz", **{f"{k}_logits": v[0] for k, v in outputs.items()},
             **{f"{k}_features": v[1] for k, v in outputs.items()})
    labels = np.array([card.classes.index(r["label"]) for r in rows["train"]])
    maha = Mahalanobis(outputs["train"][1], labels)
    scores = {
        "msp": {k: msp_score(card, v[0]) for k, v in outputs.items()},
        "energy": {k: energy(v[0], card.temperature) for k, v in outputs.items()},
        "mahalanobis": {k: maha.score(v[1]) for k, v in outputs.items()},
    }
    neighbours = NearestNeighbours(outputs["train"][1], args.knn_k)
    scores["knn"] = {k: neighbours.score(v[1]) for k, v in outputs.items()}
    return _finish(args, card, rows, scores, outputs["other"][0], started)


def _finish(args, card, rows: dict, scores: dict, other_logits: np.ndarray, started: float) -> int:
    """Thresholds on validation, the test and cxr_other figures, the summary and (``--write-card``) the card."""
    results = {name: measure(name, s["val"], s["test"], s["other"], args.val_flag_rate) for name, s in scores.items()}
    for name, result in results.items():
        flagged = scores[name]["other"] > result["threshold"]
        calls = np.array(card.classes)[other_logits.argmax(axis=1)]
        result["other_calls_unflagged"] = dict(Counter(calls[~flagged].tolist()))
        result["other_calls_flagged"] = dict(Counter(calls[flagged].tolist()))
        logger.info("%s: test flagged %.3f, cxr_other flagged %.3f, AUROC %.3f", name, result["test_flagged"],
                    result["other_flagged"], result["auroc_test_vs_other"])
    summary = {"card": str(args.card), "val_flag_rate": args.val_flag_rate, "films": {k: len(v) for k, v in rows.items()},
               "scores": results}
    (args.report / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    if args.write_card:
        _record(args.card, results["msp"], args)
    logger.info("done in %.0f s", time.time() - started)
    return 0


def _record(card_path: Path, msp: dict, args) -> None:
    """Add the MSP threshold to the card's JSON (every other key kept as it is)."""
    from .card_keys import set_card_keys

    set_card_keys(card_path, {SCORE_KEY: {
        "score": "msp", "threshold": msp["threshold"], "val_flag_rate": args.val_flag_rate,
        "test_flagged": msp["test_flagged"], "cxr_other_flagged": msp["other_flagged"],
        "created_by_command": args.command,
    }})


if __name__ == "__main__":
    raise SystemExit(main())
