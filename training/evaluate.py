"""Evaluate a trained model through the engine: metrics, calibration, shortcut probes, Grad-CAM, report.

Every image goes through ``cxr_engine.reading.read.read_image`` and ``Classifier.predict``: the exact path
of inference in the app. Steps:

1. logits for the validation and test splits (cached in ``OUT/logits.npz``);
2. a temperature fitted on the validation logits only (``training.metrics.fit_temperature``);
3. test metrics before and after it, per source and per age group; confusion matrix and
   reliability diagram PNGs;
4. a lungs-masked test (the central thorax blanked) and per-source shortcut checks;
5. a processing-shift test (sharpened, blurred, noisy, resampled, recompressed test images;
   ``training.processing_shift``);
6. optionally a leave-one-source-out run evaluated on the source it never saw (``--loso-run``; for an
   averaged model one twin per member, averaged), and the calls on unlabelled files from outside the
   dataset (``--external DIR``);
7. a Grad-CAM montage of correct and wrong test cases per class;
8. ``OUT/report.md`` and ``OUT/metrics.json`` (read by ``training.export``).

An averaged model's (``--card`` of an ensemble) logits on any set of images are its members' temperature-1
logits combined by the engine's own formula (``cxr_engine.models.ensemble.ensemble_logits``), so each
member's logits come from, or go to, that member's evaluation cache (``--member-cache NAME=FILE``, default
``<reports-dir>/<member>/logits.npz``): a member evaluated once is not run again for the average. With
``--member-run NAME=RUN`` a member is evaluated from the run its bundled weights were exported from (the
float32 weights, checked to round to the shipped float16 ones), so that run's evaluation cache serves;
``training.check_cli`` then measures the shipped average itself.

Run: ``python -m training.evaluate --run training/work/runs/lite0_224``
"""
from __future__ import annotations

import argparse
import dataclasses
import datetime
import hashlib
import json
import logging
import shlex
import sys
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from cxr_engine.models.ensemble import ensemble_logits
from cxr_engine.models.ensemble_card import EnsembleCard
from cxr_engine.models.model_card import CLASSES, ModelCard
from cxr_engine.models.classifier import unnormalised_input
from cxr_engine.pixels.preprocessing import PREPROCESSING_VERSION, check_preprocessing_version
from cxr_engine.models.registry import get_architecture
from cxr_engine.models.weights import sha256_file

from . import metrics as M
from .external_files import external_lines, external_section
from .framing_shift import FRAMING_CHANGE_MARGIN, FRAMING_SHIFTS, check_framing, framed_display, framing_lines
from .lung_checks import DILATE_FRACTION, heatmap_in_lungs_lines, heatmap_in_lungs_section, own_lungs_masked_display
from .populations import (POPULATION_BAR, check_populations, other_lines, other_section, population_lines,
                          population_section, read_other_manifest)
from .processing_shift import SHIFT_MARGIN, SHIFTS, check_shifts, shift_lines, shift_section, shifted_display
from .script_logging import script_logging
from .seeding import seed_everything

log = logging.getLogger("training.evaluate")

IN_CHANS = 3  # training.train feeds the greyscale image replicated to 3 channels
CACHE_FILE = "logits.npz"
# Blanked region of the unnormalised model input, as fractions of its side: rows 15-90 % and columns
# 15-85 %, a rectangle over both lung fields of a frontal film (an inscribed ellipse left the
# apices and costophrenic angles visible); the border keeps shoulders, markers and text.
MASK_ROWS = (0.15, 0.90)
MASK_COLS = (0.15, 0.85)
MASK = {"shape": "rectangle", "rows": list(MASK_ROWS), "cols": list(MASK_COLS),
        "fill": "median of the unnormalised model input outside the rectangle",
        "applied_to": "unnormalised model input (before normalisation)"}
BAR = {"accuracy": 0.90, "f1": 0.90, "ece": 0.05}
#: How far above the majority-class rate the lungs-masked accuracy may be (see check_shortcuts).
MASKED_MARGIN = 0.10
PEDIATRIC = "pediatric"


# --------------------------------------------------------------------------- the model

def read_run(run: Path) -> dict:
    """``run.json`` of a training run folder."""
    path = run / "run.json"
    if not path.exists():
        raise FileNotFoundError(f"{run}: not a training run folder (no run.json)")
    return json.loads(path.read_text(encoding="utf-8"))


def card_from_run(run: Path) -> ModelCard:
    """An in-memory model card for ``run/best.safetensors`` (temperature 1, sha256 of the file now).

    Its input size is the one the best epoch trained and validated at: ``best.json``'s when that draft
    card names these weights (a ``--size-schedule`` run may keep an epoch of an earlier, smaller size),
    else the run's ``--size``.
    """
    info = read_run(run)
    weights = (run / "best.safetensors").resolve()
    if not weights.exists():
        raise FileNotFoundError(f"{run}: no best.safetensors yet")
    version = info.get("preprocessing_version", PREPROCESSING_VERSION)
    check_preprocessing_version(version, f"{run}/run.json")
    arch = get_architecture(info["args"]["arch"])
    sha = sha256_file(weights)
    return ModelCard(
        name=run.name, architecture=arch.name, classes=list(CLASSES),
        input_size=best_input_size(run, sha) or int(info["args"].get("size") or arch.input_size), in_chans=IN_CHANS,
        mean=list(arch.mean), std=list(arch.std), preprocessing_version=version,
        weights_file=str(weights), weights_sha256=sha,
    )


def best_input_size(run: Path, weights_sha256: str) -> int | None:
    """The input size ``run/best.json`` records for the weights with ``weights_sha256``; None when the
    draft card is absent or names other weights (logged)."""
    path = run / "best.json"
    if not path.exists():
        return None
    draft = json.loads(path.read_text(encoding="utf-8"))
    if draft.get("weights_sha256") != weights_sha256:
        log.warning("%s names other weights than best.safetensors; using the run's --size", path)
        return None
    return int(draft["input_size"])


def run_manifest(run: Path) -> Path:
    """The split manifest a run trained on (its own copy when it made one)."""
    args = read_run(run)["args"]
    return Path(args.get("split_manifest") or args["manifest"])


def make_classifier(card: ModelCard, device: str, model=None):
    """A ``Classifier`` whose probabilities are plain softmax (temperature 1): see ``metrics.as_logits``.
    For an ensemble card (``cxr_engine.models.ensemble_card``) its ``EnsembleClassifier`` on torch, whose
    temperature-1 probabilities are softmax of the ensemble's logits (offsets included)."""
    from cxr_engine.models.ensemble_card import EnsembleCard
    from cxr_engine.models.torch_backend import Classifier

    if isinstance(card, EnsembleCard):
        from cxr_engine.models.backends import create_classifier

        return create_classifier(dataclasses.replace(card, temperature=1.0), backend="torch", device=device)

    return Classifier(dataclasses.replace(card, temperature=1.0), device=device, model=model)


class LazyClassifier:
    """``make_classifier(card)``, loaded on the first ``predict``: an averaged model's member, whose logits
    its evaluation cache usually holds already."""

    def __init__(self, card: ModelCard, device: str):
        self.card, self.device, self._classifier = card, device, None

    @property
    def classes(self) -> tuple[str, ...]:
        return tuple(self.card.classes)

    def predict(self, images):
        if self._classifier is None:
            from cxr_engine.models.weights import load_model

            self._classifier = make_classifier(self.card, self.device, model=load_model(self.card))
        return self._classifier.predict(images)

    def close(self) -> None:
        if self._classifier is not None:
            self._classifier.close()


# --------------------------------------------------------------------------- data

def split_rows(manifest: Path, split: str, limit: int | None, seed: int) -> list[dict]:
    """Rows of one split (at most ``limit``, drawn round-robin over classes)."""
    from .data import limit_rows, read_manifest

    rows = limit_rows(read_manifest(manifest, split), limit, seed)
    if not rows:
        raise ValueError(f"{manifest}: no rows in the {split!r} split")
    return rows


def label_indices(rows: Sequence[dict]) -> np.ndarray:
    return np.array([CLASSES.index(r["label"]) for r in rows], dtype=np.int64)


def is_pediatric(row: dict) -> bool:
    return row.get("age_group", "") == PEDIATRIC


# --------------------------------------------------------------------------- lungs-masked input

def lung_mask(size: int) -> np.ndarray:
    """(size, size) bool: True inside the MASK_ROWS x MASK_COLS rectangle of the image."""
    mask = np.zeros((size, size), dtype=bool)
    top, bottom = (round(f * size) for f in MASK_ROWS)
    left, right = (round(f * size) for f in MASK_COLS)
    mask[top:bottom, left:right] = True
    return mask


def mask_lungs(grey: np.ndarray) -> np.ndarray:
    """A copy of an unnormalised [0, 1] square model input with the lung rectangle filled by the border's median.

    The median of the border, not of the whole image: opaque lungs would brighten a whole-image
    median and leak the diagnosis into the fill.
    """
    mask = lung_mask(grey.shape[0])
    out = grey.copy()
    out[mask] = float(np.median(grey[~mask]))
    return out


def masked_display(path: str, size: int) -> np.ndarray:
    """The engine's unnormalised model input of ``path`` with the lungs blanked.

    Fed to ``Classifier.predict`` as presentation values, it goes through the engine's steps again:
    at size x size the resize is the identity and the contrast stretch nearly so.
    """
    from cxr_engine.reading.read import read_image

    return mask_lungs(unnormalised_input(read_image(path), size))


# --------------------------------------------------------------------------- prediction and cache

def predict_logits(classifier, paths: Sequence[str], batch_size: int, desc: str,
                   loader: Callable | None = None) -> np.ndarray:
    """(N, K) logits (see ``metrics.as_logits``) for ``paths``; ``loader`` maps a path to what is classified."""
    from tqdm import tqdm

    from cxr_engine.reading.read import read_image

    loader = loader or read_image
    chunks = []
    starts = range(0, len(paths), batch_size)
    for start in tqdm(starts, desc=desc, unit="batch", mininterval=5 if not sys.stderr.isatty() else 0.5):
        images = [loader(p) for p in paths[start:start + batch_size]]
        chunks.append(M.as_logits(classifier.predict(images)))
    return np.concatenate(chunks) if chunks else np.zeros((0, len(classifier.classes)))


def fingerprint(card: ModelCard, paths: Sequence[str], variant: str) -> str:
    """What a cached logit array depends on: weights, preprocessing, size, images and variant."""
    parts = [card.weights_sha256, card.preprocessing_version, str(card.input_size), variant,
             json.dumps(MASK) if variant == "masked" else "", *paths]
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()


class LogitCache:
    """Named logit arrays in one ``.npz``, each stored with the fingerprint it was computed for."""

    def __init__(self, path: Path):
        self.path = path
        self.arrays: dict[str, np.ndarray] = {}
        if path.exists():
            with np.load(path, allow_pickle=False) as data:
                self.arrays = {k: data[k] for k in data.files}

    def get(self, name: str, key: str) -> np.ndarray | None:
        if name in self.arrays and str(self.arrays.get(f"{name}__key", "")) == key:
            return self.arrays[name]
        return None

    def put(self, name: str, key: str, logits: np.ndarray) -> None:
        self.arrays[name] = logits
        self.arrays[f"{name}__key"] = np.array(key)
        np.savez_compressed(self.path, **self.arrays)


def cached_logits(cache: LogitCache | None, name: str, key: str, compute: Callable[[], np.ndarray]) -> np.ndarray:
    """``cache[name]`` when its fingerprint matches ``key``, else ``compute()`` (then stored)."""
    found = cache.get(name, key) if cache else None
    if found is not None:
        log.info("%s: %d cached logits from %s", name, len(found), cache.path)
        return found
    logits = compute()
    if cache:
        cache.put(name, key, logits)
    return logits


# --------------------------------------------------------------------------- metrics sections

def prediction_rows(rows: Sequence[dict], logits: np.ndarray) -> list[dict]:
    """``rows`` with a ``pred`` class name added (copies)."""
    preds = np.asarray(logits).argmax(axis=1)
    return [{**row, "pred": CLASSES[p]} for row, p in zip(rows, preds)]


def test_section(rows: Sequence[dict], logits: np.ndarray, temperature: float) -> dict:
    """Test metrics before/after temperature, per source and age group, and the shortcut checks."""
    labels = label_indices(rows)
    scaled = M.softmax(logits, temperature)
    predicted = prediction_rows(rows, logits)
    return {
        "before_temperature": M.summarise(labels, M.softmax(logits), CLASSES, logits, 1.0),
        "after_temperature": M.summarise(labels, scaled, CLASSES, logits, temperature),
        "reliability_before": M.reliability_bins(M.softmax(logits), labels),
        "reliability_after": M.reliability_bins(scaled, labels),
        "by_source": M.group_metrics(predicted, "source", CLASSES, scaled),
        "by_age_group": M.group_metrics(predicted, "age_group", CLASSES, scaled),
        "shortcut_checks": shortcut_checks(predicted),
        "populations": population_section(predicted),
    }


def shortcut_check(name: str, rows: Sequence[dict], target: str, want: str) -> dict:
    """How many of ``rows`` were called ``target`` (``want`` says whether high or low is good)."""
    hits = sum(r["pred"] == target for r in rows)
    return {"check": name, "target": target, "want": want, "n": len(rows), "hits": hits,
            "rate": hits / len(rows) if rows else None,
            "predicted": M.prediction_counts((r["pred"] for r in rows), CLASSES)}


def shortcut_checks(rows: Sequence[dict]) -> list[dict]:
    """Probes for age and source shortcuts: each compares the same disease across ages or sources.

    Nearly all pneumonia films are of children and nearly all others of adults, so a model
    reading age would call adult pneumonia something else and child normals pneumonia.
    """
    def pick(label: str | None, pediatric: bool | None = None, source: str | None = None) -> list[dict]:
        return [r for r in rows if (label is None or r["label"] == label)
                and (pediatric is None or is_pediatric(r) == pediatric)
                and (source is None or r.get("source") == source)]

    checks = [
        shortcut_check("adult pneumonia called pneumonia", pick("pneumonia", False), "pneumonia", "high"),
        shortcut_check("pediatric pneumonia called pneumonia", pick("pneumonia", True), "pneumonia", "high"),
        shortcut_check("adult normal called normal", pick("normal", False), "normal", "high"),
        shortcut_check("pediatric normal called normal", pick("normal", True), "normal", "high"),
        shortcut_check("pediatric normal called pneumonia", pick("normal", True), "pneumonia", "low"),
        shortcut_check("pediatric COVID-19 called covid", pick("covid", True), "covid", "high"),
    ]
    for label in CLASSES:
        for source in sorted({r.get("source", "") for r in pick(label)}):
            checks.append(shortcut_check(f"{label} from {source} called {label}", pick(label, source=source),
                                         label, "high"))
    return [c for c in checks if c["n"]]


def masked_section(rows: Sequence[dict], logits: np.ndarray, temperature: float, segmenter=None) -> dict:
    """Lungs-masked test metrics, with chance and majority-class rates for reference.

    With ``segmenter`` each film's own lung fields were blanked (``training.lung_checks``; the
    fixed rectangle where they were not found), else the fixed rectangle.
    """
    labels = label_indices(rows)
    summary = M.summarise(labels, M.softmax(logits, temperature), CLASSES)
    majority = max(summary["support"].values()) / max(1, summary["n"])
    return {
        "accuracy": summary["accuracy"], "macro_f1": summary["macro_f1"], "recall": summary["recall"],
        "n": summary["n"], "confusion": summary["confusion"],
        "predicted": M.prediction_counts((CLASSES[p] for p in np.argmax(logits, axis=1)), CLASSES),
        "chance_accuracy": 1.0 / len(CLASSES), "majority_class_accuracy": majority,
        "mask": MASK if segmenter is None else {"shape": "own lung fields", "model": segmenter.card.name,
                                                "weights_sha256": segmenter.card.weights_sha256,
                                                "dilate_fraction": DILATE_FRACTION,
                                                "fallback": {**MASK, "when": "lung fields not found"}},
    }


def check_bar(test: dict, limit: int | None = None) -> tuple[bool, list[str]]:
    """The project's bar on the (temperature-scaled) test summary, and every criterion it fails.

    An evaluation on a subset (``--limit``) never meets it.
    """
    failures = [f"evaluated on a subset (--limit {limit}), not the whole test split"] if limit else []
    if test["accuracy"] < BAR["accuracy"]:
        failures.append(f"test accuracy {test['accuracy']:.4f} < {BAR['accuracy']:.2f}")
    for cls, f1 in test["f1"].items():
        if f1 is None or f1 < BAR["f1"]:
            failures.append(f"test F1 {cls} {f1 if f1 is None else round(f1, 4)} < {BAR['f1']:.2f}")
    if test["ece"] > BAR["ece"]:
        failures.append(f"test ECE {test['ece']:.4f} > {BAR['ece']:.2f}")
    return not failures, failures


def check_shortcuts(masked: dict | None, loso: dict | None) -> list[str]:
    """The bar's second half, "from sources it has never seen, without learning shortcuts".

    Fails when the lungs-masked accuracy is more than ``MASKED_MARGIN`` above what always
    guessing the majority class scores (the model reads something other than the lungs), when
    no leave-one-source-out run was evaluated, or when its accuracy is below the bar.
    """
    failures = []
    if masked is not None:
        ceiling = masked["majority_class_accuracy"] + MASKED_MARGIN
        if masked["accuracy"] > ceiling:
            failures.append(f"lungs-masked accuracy {masked['accuracy']:.3f} > {ceiling:.3f} "
                            "(majority class + margin): the model reads something other than the lungs")
    if loso is None:
        failures.append("leave-one-source-out not evaluated: performance on unseen sources is unmeasured")
    elif loso["accuracy"] < BAR["accuracy"]:
        failures.append(f"leave-one-source-out accuracy {loso['accuracy']:.3f} on {loso['held_out_source']} "
                        f"< {BAR['accuracy']:.2f}")
    return failures


# --------------------------------------------------------------------------- leave one source out

def held_out_source(loso_run: Path, rows: Sequence[dict], requested: str | None) -> str:
    """The source the LOSO run never trained on (``requested``, or the one source it lacks)."""
    seen = trained_sources(run_manifest(loso_run))
    if requested:
        if requested in seen:
            raise ValueError(f"{loso_run} trained or validated on {requested!r}: it is not held out")
        source = requested
    else:
        missing = sorted({r.get("source", "") for r in rows} - seen)
        if len(missing) != 1:
            raise ValueError(f"{loso_run}: cannot tell the held-out source (missing from its manifest: {missing}); "
                             "give --loso-source")
        source = missing[0]
    teacher = read_run(loso_run)["args"].get("teacher")
    if teacher and source in teacher_sources(Path(teacher)):
        raise ValueError(f"{loso_run} was distilled from {teacher}, which trained on {source!r}: the held-out "
                         "source reaches it through the teacher; distil the LOSO run from a LOSO teacher")
    return source


def trained_sources(manifest: Path) -> set[str]:
    """Sources in the train and validation splits of a split manifest."""
    from .data import read_manifest

    return {r.get("source", "") for r in read_manifest(manifest) if r["split"] in ("train", "val")}


def teacher_sources(card_path: Path) -> set[str]:
    """Sources a distillation teacher (a model card or a run folder's ``best.json``) trained or validated on,
    from its card's split manifest or source table."""
    if card_path.is_dir():
        card_path = card_path / "best.json"
    data = json.loads(card_path.read_text(encoding="utf-8")).get("training_data") or {}
    manifest = data.get("split_manifest")
    if manifest and Path(manifest).is_file():
        return trained_sources(Path(manifest))
    if "sources" in data:
        return {name for name, info in data["sources"].items() if {"train", "val"} & set(info.get("images", {}))}
    raise ValueError(f"{card_path}: cannot tell which sources this teacher trained on (no split manifest here "
                     "and no source table in its card)")


def loso_runs(args, card: ModelCard) -> list[Path]:
    """The ``--loso-run`` folders: one for a single model; for an averaged model one per member, in the
    card's member order (each trained with that member's recipe). ``ValueError`` otherwise."""
    runs = list(args.loso_run)
    want = len(card.members) if isinstance(card, EnsembleCard) else 1
    if len(runs) != want:
        raise ValueError(f"{card.name}: {len(runs)} --loso-run given, {want} expected"
                         + (" (one twin per member, in the card's member order)" if want > 1 else ""))
    return runs


def loso_section(args: argparse.Namespace, manifest: Path, cache: LogitCache, card: ModelCard) -> dict:
    """The LOSO run's metrics on every image (all splits) of the source it never saw. A twin is scored as
    trained, without the operating point its model's offsets add (so is a single model's). For an averaged
    model: its members' twins averaged with the members' weights and no offsets; beside it, the recipe
    replayed in full (``with_offsets_replayed``: offsets chosen on the twins' own validation split by
    ``operating_point.choose``, as ``training.ensemble_card`` chose the averaged model's). Each twin's
    logits are cached beside its member's."""
    from .data import limit_rows, read_manifest

    all_rows = read_manifest(manifest)
    runs = loso_runs(args, card)
    sources = {held_out_source(run, all_rows, args.loso_source) for run in runs}
    if len(sources) != 1:
        raise ValueError(f"the --loso-run twins hold out different sources: {sorted(sources)}")
    source = sources.pop()
    rows = limit_rows([r for r in all_rows if r.get("source") == source], args.limit, args.seed)
    if not rows:
        raise ValueError(f"{manifest}: no images from the held-out source {source!r}")
    paths = [r["path"] for r in rows]
    caches = [m[2] for m in members(args, card)] if isinstance(card, EnsembleCard) else [cache]
    twin_cards = [card_from_run(run) for run in runs]
    twin_logits = twins_logits(args, twin_cards, caches, f"loso_{source}", paths, f"LOSO {source}")
    extra: dict = {}
    if isinstance(card, EnsembleCard):
        logits = ensemble_logits(twin_logits, card.member_weights, np.zeros(len(card.classes)))
        offsets, val_rows = twin_offsets(args, card, runs, twin_cards, caches, source)
        replayed = M.group_metrics(prediction_rows(rows, logits + offsets), "source", CLASSES)[source]
        extra = {"with_offsets_replayed": {
            "offsets": offsets.tolist(), "accuracy": replayed["accuracy"], "predicted": replayed["predicted"],
            "offsets_chosen_on": f"the twins' validation split ({len(val_rows)} films, {run_manifest(runs[0])})"}}
    else:
        logits = twin_logits[0]
    group = M.group_metrics(prediction_rows(rows, logits), "source", CLASSES)[source]
    log.info("LOSO %s: accuracy %.4f on %d images", source, group["accuracy"], group["n"])
    return {"run": " + ".join(str(run) for run in runs), "held_out_source": source,
            "weights_sha256": " + ".join(twin.weights_sha256 for twin in twin_cards),
            "train_command": "\n".join(read_run(run).get("command", "") for run in runs), **extra, **group}


def twins_logits(args, twins: Sequence[ModelCard], caches: Sequence[LogitCache | None], name: str,
                 paths: Sequence[str], desc: str) -> list[np.ndarray]:
    """Each twin's temperature-1 logits on ``paths``, stored under ``name`` in its cache (computed when absent)."""
    logits = []
    for twin, cache in zip(twins, caches):
        classifier = LazyClassifier(twin, args.device)
        logits.append(cached_logits(cache, name, fingerprint(twin, paths, "plain"),
                                    lambda: predict_logits(classifier, paths, args.batch_size, desc)))
        classifier.close()
    return logits


def twin_offsets(args, card: EnsembleCard, runs: Sequence[Path], twins: Sequence[ModelCard],
                 caches: Sequence[LogitCache | None], source: str) -> tuple[np.ndarray, list[dict]]:
    """Offsets for the twins' average, chosen on their (shared) validation split; ``ValueError`` when the
    twins were validated on different films."""
    from .operating_point import choose

    val_rows = split_rows(run_manifest(runs[0]), "val", None, args.seed)
    paths = [r["path"] for r in val_rows]
    for run in runs[1:]:
        if [r["path"] for r in split_rows(run_manifest(run), "val", None, args.seed)] != paths:
            raise ValueError(f"the --loso-run twins {runs[0]} and {run} were validated on different films")
    val_logits = twins_logits(args, twins, caches, f"loso_{source}_val", paths, "LOSO twin val")
    offsets, _, _ = choose(val_rows, ensemble_logits(val_logits, card.member_weights, np.zeros(len(card.classes))))
    return offsets, val_rows


# --------------------------------------------------------------------------- figures

def new_figure(width: float, height: float):
    """A matplotlib ``Figure`` drawn with Agg, independent of pyplot's global state."""
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), dpi=110, layout="constrained")


def plot_confusion(confusion: Sequence[Sequence[int]], path: Path, title: str) -> None:
    """Counts and row percentages (share of each true class) as a heat-map PNG."""
    matrix = np.asarray(confusion, dtype=np.float64)
    share = matrix / np.maximum(matrix.sum(axis=1, keepdims=True), 1)
    fig = new_figure(4.6, 4.0)
    ax = fig.add_subplot()
    ax.imshow(share, cmap="Blues", vmin=0, vmax=1)
    for (i, j), count in np.ndenumerate(matrix):
        ax.text(j, i, f"{int(count)}\n{share[i, j]:.0%}", ha="center", va="center",
                color="white" if share[i, j] > 0.6 else "black", fontsize=9)
    ax.set_xticks(range(len(CLASSES)), CLASSES)
    ax.set_yticks(range(len(CLASSES)), CLASSES)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title, fontsize=10)
    fig.savefig(path)


def plot_reliability(before: dict, after: dict, path: Path, ece: tuple[float, float], temperature: float) -> None:
    """Reliability diagram (accuracy vs confidence per bin) after scaling, before as a line; counts below."""
    edges = np.asarray(after["edges"])
    centres, width = (edges[:-1] + edges[1:]) / 2, edges[1] - edges[0]
    fig = new_figure(5.0, 5.4)
    top, bottom = fig.subplots(2, 1, height_ratios=[3, 1], sharex=True)
    acc_after = [a if a is not None else 0.0 for a in after["accuracy"]]
    top.bar(centres, acc_after, width=width * 0.95, color="#4c72b0",
            label=f"after T={temperature:.2f} (ECE {ece[1]:.3f})")
    points = [(c, a) for c, a in zip(before["confidence"], before["accuracy"]) if a is not None]
    if points:
        top.plot(*zip(*points), "o-", color="#dd8452", ms=3, label=f"before (ECE {ece[0]:.3f})")
    top.plot([0, 1], [0, 1], "k--", lw=1, label="perfect calibration")
    top.set_ylabel("accuracy")
    top.set_ylim(0, 1)
    top.legend(loc="upper left", fontsize=8)
    top.set_title("Reliability diagram, test split (max probability, 15 bins)", fontsize=10)
    bottom.bar(centres, after["count"], width=width * 0.95, color="#4c72b0")
    bottom.set_yscale("symlog")
    bottom.set_xlabel("confidence (max probability)")
    bottom.set_ylabel("images")
    bottom.set_xlim(0, 1)
    fig.savefig(path)


def plot_masked_examples(rows: Sequence[dict], size: int, path: Path, segmenter=None) -> None:
    """Two test images per class as unnormalised model inputs, above their lungs-masked version (as the test
    masked them)."""
    from cxr_engine.reading.read import read_image

    examples = [r for c in CLASSES for r in [r for r in rows if r["label"] == c][:2]]
    fig = new_figure(2.0 * len(examples), 4.2)
    axes = np.atleast_2d(fig.subplots(2, len(examples), squeeze=False))
    for col, row in enumerate(examples):
        grey = unnormalised_input(read_image(row["path"]), size)
        masked = (mask_lungs(grey) if segmenter is None
                  else own_lungs_masked_display(row["path"], size, segmenter, mask_lungs)[0])
        for r, (image, label) in enumerate(((grey, "model input"), (masked, "lungs masked"))):
            axes[r, col].imshow(image, cmap="gray", vmin=0, vmax=1)
            axes[r, col].set_title(f"{row['label']}: {label}", fontsize=8)
            axes[r, col].axis("off")
    fig.savefig(path)


def pick_cases(labels: np.ndarray, preds: np.ndarray, per_kind: int, seed: int) -> list[list[int]]:
    """Per class, up to ``per_kind`` correct then up to ``per_kind`` wrong test indices (seeded)."""
    rng = np.random.default_rng(seed)
    out = []
    for k in range(len(CLASSES)):
        picked = []
        for wanted in (True, False):
            pool = np.flatnonzero((labels == k) & ((preds == k) == wanted))
            picked += sorted(rng.choice(pool, size=min(per_kind, len(pool)), replace=False).tolist())
        out.append(picked)
    return out


def heatmap_panel(classifier, path: str) -> np.ndarray:
    """RGB uint8: the rendered image with the Grad-CAM of its predicted class blended over it."""
    from cxr_engine.reading.read import read_image
    from cxr_engine.pixels.overlay import blend
    from cxr_engine.pixels.rendering import render

    image = read_image(path)
    return blend(render(image), classifier.predict_with_heatmap(image).heatmap)


def plot_gradcam_montage(classifier, rows: Sequence[dict], probs: np.ndarray, per_kind: int, seed: int,
                         path: Path) -> int:
    """Rows = true classes; columns = correct cases then wrong ones; returns the panels drawn."""
    from tqdm import tqdm

    labels, preds = label_indices(rows), probs.argmax(axis=1)
    cases = pick_cases(labels, preds, per_kind, seed)
    fig = new_figure(1.9 * 2 * per_kind, 2.25 * len(CLASSES))
    axes = np.atleast_2d(fig.subplots(len(CLASSES), 2 * per_kind, squeeze=False))
    for ax in axes.flat:
        ax.axis("off")
    drawn = 0
    for k, indices in enumerate(tqdm(cases, desc="Grad-CAM", unit="class")):
        correct = [i for i in indices if preds[i] == labels[i]]
        slots = correct + [None] * (per_kind - len(correct)) + [i for i in indices if preds[i] != labels[i]]
        for col, i in enumerate(slots):
            if i is None:
                continue
            ax = axes[k, col]
            ax.imshow(heatmap_panel(classifier, rows[i]["path"]))
            ok = preds[i] == labels[i]
            ax.set_title(f"{'correct' if ok else 'WRONG'} true {CLASSES[labels[i]]}\n"
                         f"pred {CLASSES[preds[i]]} p={probs[i, preds[i]]:.2f}\n{rows[i].get('source', '')[:22]}",
                         fontsize=6.5, color="black" if ok else "#b00")
            drawn += 1
    fig.suptitle("Grad-CAM (predicted class) on test images: correct (left), wrong (right) per true class",
                 fontsize=9)
    fig.savefig(path)
    return drawn


# --------------------------------------------------------------------------- report

def fmt(value, digits: int = 3) -> str:
    """A table cell: numbers rounded, ``None`` as an en dash."""
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def md_table(header: Sequence[str], body: Sequence[Sequence]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(fmt(v) for v in row) + " |" for row in body]
    return lines + [""]


def counts(predicted: dict) -> str:
    """Prediction counts as ``normal/pneumonia/covid``."""
    return "/".join(str(predicted[c]) for c in CLASSES)


def summary_rows(results: dict) -> list[list]:
    test = results["test"]
    named = (("validation (T applied)", results["validation"]), ("test, T = 1", test["before_temperature"]),
             (f"test, T = {results['temperature']:.3f}", test["after_temperature"]))
    return [[name, s["n"], s["accuracy"], s["macro_f1"], s.get("nll"), s["ece"], s["macro_auroc"]] for name, s in named]


def group_table(groups: dict, key_name: str) -> list[str]:
    header = [key_name, "n", "accuracy", *(f"recall {c}" for c in CLASSES), "macro-F1", "ECE", "predicted n/p/c"]
    body = [[name, g["n"], g["accuracy"], *(g["recall"].get(c) for c in CLASSES), g["macro_f1"], g.get("ece"),
             counts(g["predicted"])] for name, g in groups.items()]
    return md_table(header, body)


def header_lines(results: dict) -> list[str]:
    subset = f"; **subset: --limit {results['limit']} per split**" if results["limit"] else ""
    return [f"# Evaluation: {results['model']}", "",
            f"Architecture `{results['architecture']}` at {results['input_size']} px, weights sha256 "
            f"`{results['weights_sha256']}`; split manifest `{results['manifest']}` (sha256 "
            f"`{results['manifest_sha256']}`){subset}.", "", "Command:", "", "```", results["command"], "```", "",
            f"Every image went through the engine (`read_image` → `Classifier.predict`) on {results['device']}. "
            f"Temperature T = {results['temperature']:.4f}, fitted on the validation split only.", ""]


def summary_lines(results: dict) -> list[str]:
    bar, test = results["bar"], results["test"]["after_temperature"]
    lines = ["## Summary", ""]
    lines += md_table(["split", "n", "accuracy", "macro-F1", "NLL", "ECE", "macro AUROC"], summary_rows(results))
    lines += [f"**Bar** (test accuracy ≥ {BAR['accuracy']}, every class F1 ≥ {BAR['f1']}, ECE ≤ {BAR['ece']}; "
              f"lungs-masked accuracy at most {MASKED_MARGIN} above the majority class; accuracy drop under "
              f"each processing shift at most {SHIFT_MARGIN}; leave-one-source-out accuracy ≥ {BAR['accuracy']}): "
              + ("met." if bar["meets_bar"] else "not met: " + "; ".join(bar["failures"]) + "."), ""]
    lines += ["## Per class (test)", ""]
    lines += md_table(["class", "support", "precision", "recall", "F1", "AUROC"],
                      [[c, test["support"][c], test["precision"][c], test["recall"][c], test["f1"][c],
                        test["auroc"][c]] for c in CLASSES])
    ece_before = results["test"]["before_temperature"]["ece"]
    return lines + ["![confusion matrix](confusion_matrix.png)", "", "## Calibration (test)", "",
                    f"ECE (15 equal-width bins of the max probability): {ece_before:.4f} before, "
                    f"{test['ece']:.4f} after temperature scaling.", "", "![reliability diagram](reliability.png)", ""]


def shortcut_lines(checks: list[dict]) -> list[str]:
    lines = ["## Shortcut checks (test)", "",
             "Each row: of the n images, how many the model called the target class ('want' says whether high or "
             "low is good). Age and source are confounded with the label in this data.", ""]
    return lines + md_table(["check", "n", "called target", "rate", "want", "predicted n/p/c"],
                            [[c["check"], c["n"], c["hits"], c["rate"], c["want"], counts(c["predicted"])]
                             for c in checks])


def report_sections(results: dict) -> list[str]:
    """The markdown report as lines."""
    lines = header_lines(results) + summary_lines(results)
    lines += ["## Per source (test)", ""] + group_table(results["test"]["by_source"], "source")
    lines += ["## Per age group (test)", ""] + group_table(results["test"]["by_age_group"], "age group")
    lines += population_lines(results["test"].get("populations"), md_table)
    lines += other_lines(results.get("other_findings"), md_table)
    lines += masked_lines(results["lungs_masked"])
    lines += heatmap_in_lungs_lines(results.get("heatmap_in_lungs"), md_table)
    lines += shortcut_lines(results["test"]["shortcut_checks"])
    lines += shift_lines(results.get("processing_shift"), md_table)
    lines += framing_lines(results.get("framing_shift"), md_table)
    lines += loso_lines(results["loso"])
    for section in results.get("external") or [None]:
        lines += external_lines(section, md_table)
    return lines + ["## Grad-CAM montage (test)", "",
                    "Predicted class's Grad-CAM, each map min-max scaled within its own image.", "",
                    "![Grad-CAM montage](gradcam_montage.png)", ""]


def masked_lines(masked: dict) -> list[str]:
    verdict = ("far above chance: the model reads something other than the lungs"
               if masked["accuracy"] > max(0.5, masked["majority_class_accuracy"] + 0.1)
               else "near chance / the majority-class rate: the lungs carry most of the evidence")
    rectangle = (f"the central thorax (rows {MASK_ROWS[0]:.0%}–{MASK_ROWS[1]:.0%}, columns "
                 f"{MASK_COLS[0]:.0%}–{MASK_COLS[1]:.0%})")
    if masked["mask"].get("shape") == "own lung fields":
        what = (f"its own lung fields (model `{masked['mask']['model']}`, dilated by "
                f"{masked['mask']['dilate_fraction']:.0%} of the side; {rectangle} where they were not found)")
    else:
        what = rectangle
    lines = ["## Lungs-masked test", "",
             f"In every test image {what} was filled with the median of the rest of the image, on the "
             "unnormalised model input (before normalisation); the masked image then went through "
             "`Classifier.predict` like any other.", ""]
    lines += md_table(["n", "accuracy", "macro-F1", *(f"recall {c}" for c in CLASSES), "predicted n/p/c",
                       "chance", "majority class"],
                      [[masked["n"], masked["accuracy"], masked["macro_f1"], *(masked["recall"][c] for c in CLASSES),
                        counts(masked["predicted"]), masked["chance_accuracy"],
                        masked["majority_class_accuracy"]]])
    return lines + [f"Verdict: {verdict}.", "", "![masked examples](masked_examples.png)", ""]


def loso_lines(loso: dict | None) -> list[str]:
    lines = ["## Leave one source out", ""]
    if not loso:
        return lines + ["Not run. Train a run without one COVID-19 source and pass it with `--loso-run` "
                        "(see training/README.md).", ""]
    lines += [f"Run `{loso['run']}` never saw `{loso['held_out_source']}`; all its images (every split):", ""]
    if "with_offsets_replayed" in loso:
        replayed = loso["with_offsets_replayed"]
        lines += [f"The twins averaged as trained (no offsets, as a single model's twin). With the averaged model's "
                  f"operating point replayed, offsets {replayed['offsets']} chosen on {replayed['offsets_chosen_on']}: "
                  f"accuracy {replayed['accuracy']:.3f}, predicted {counts(replayed['predicted'])}.", ""]
    lines += md_table(["held-out source", "n", "accuracy", *(f"recall {c}" for c in CLASSES), "predicted n/p/c"],
                      [[loso["held_out_source"], loso["n"], loso["accuracy"], *(loso["recall"].get(c) for c in CLASSES),
                        counts(loso["predicted"])]])
    return lines + ["LOSO run trained with:", "", "```", loso["train_command"], "```", ""]


# --------------------------------------------------------------------------- main

def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m training.evaluate", description=__doc__.split("\n\n")[0])
    model = p.add_mutually_exclusive_group(required=True)
    model.add_argument("--run", type=Path, help="training run folder (run.json, best.safetensors)")
    model.add_argument("--card", type=Path, help="a bundled model card .json instead of a run")
    p.add_argument("--manifest", type=Path, help="split manifest (default: the run's copy; needed with --card)")
    p.add_argument("--out", type=Path, help="report folder (default: training/reports/<model name>)")
    p.add_argument("--limit", type=int, help="at most N images per split, balanced by class (development only)")
    p.add_argument("--batch-size", type=int, default=32, help="images per forward pass (default 32)")
    p.add_argument("--device", default="auto", help="auto (default), cpu or cuda[:N]")
    p.add_argument("--threads", type=int, help="torch CPU threads (default: torch's choice)")
    p.add_argument("--seed", type=int, default=0, help="seed for --limit and the Grad-CAM case choice (default 0)")
    p.add_argument("--montage-per-kind", type=int, default=4,
                   help="correct and wrong Grad-CAM cases per class (default 4)")
    p.add_argument("--loso-run", type=Path, action="append", default=[],
                   help="a run trained without one source, evaluated on that source; for an averaged model one "
                        "per member, in the card's member order, averaged")
    p.add_argument("--loso-source", help="the held-out source (default: the one source the LOSO run lacks)")
    p.add_argument("--no-shift-test", action="store_true",
                   help="skip the processing- and framing-shift tests (10 more passes over the test split)")
    p.add_argument("--external", type=Path, action="append", default=[],
                   help="a folder of unlabelled images from outside the dataset (e.g. ../shared/data/dicom) "
                        "whose calls the report lists")
    p.add_argument("--lung-model", default=None,
                   help="lung-field model card for the lung checks (default: the bundled lung-unet)")
    p.add_argument("--no-lung-checks", action="store_true",
                   help="blank the fixed rectangle in the lungs-masked test and skip the heat-map-in-lungs check")
    p.add_argument("--heatmap-films-per-class", type=int, default=50,
                   help="test films per true class whose Grad-CAM is checked against their lung mask (default 50)")
    p.add_argument("--other-manifest", type=Path,
                   help="manifest of films outside the three classes (../shared/data/cxr_other/manifest.csv) "
                        "whose calls the report counts")
    p.add_argument("--no-cache", action="store_true", help=f"recompute logits even when {CACHE_FILE} has them")
    add_member_options(p)
    args = p.parse_args(argv)
    parse_member_options(p, args)
    if args.card and not args.manifest:
        p.error("--card needs --manifest")
    if args.batch_size < 1 or (args.limit is not None and args.limit < 1):
        p.error("--batch-size and --limit must be at least 1")
    return args


def load_card(args: argparse.Namespace) -> ModelCard:
    """The evaluated model's card: from the run, or a saved card (an ensemble's too; its temperature is
    refitted here)."""
    from cxr_engine.models.model_card import load_card as load_saved_card

    return card_from_run(args.run) if args.run else load_saved_card(args.card)


def add_member_options(p: argparse.ArgumentParser) -> None:
    """``--reports-dir``, ``--member-cache NAME=FILE`` and ``--member-run NAME=RUN``: where an averaged
    model's members' logits come from (this module, ``training.ensemble_card``, ``training.scope_score``);
    ``parse_member_options`` turns the last two into dicts."""
    p.add_argument("--reports-dir", type=Path, default=Path("training/reports"),
                   help=f"an averaged model's members' logit caches: <dir>/<member>/{CACHE_FILE} (default training/reports)")
    p.add_argument("--member-cache", action="append", default=[], metavar="NAME=FILE",
                   help=f"a member's {CACHE_FILE} elsewhere (e.g. its run's evaluation folder)")
    p.add_argument("--member-run", action="append", default=[], metavar="NAME=RUN",
                   help="a member evaluated from the run it was exported from (float32; see training.evaluate)")


def parse_member_options(p: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """``args.member_cache`` and ``args.member_run`` as {NAME: VALUE}; ``p.error`` for an item without "="."""
    try:
        args.member_cache = dict(item.split("=", 1) for item in args.member_cache)
        args.member_run = dict(item.split("=", 1) for item in args.member_run)
    except ValueError:
        p.error("--member-cache and --member-run take NAME=VALUE")


def member_cache(args, card: ModelCard) -> LogitCache | None:
    """The logit cache of an averaged model's member: ``--member-cache NAME=FILE`` or
    ``<reports-dir>/<NAME>/logits.npz``; None with ``--no-cache``."""
    if args.no_cache:
        return None
    path = Path(args.member_cache.get(card.name) or args.reports_dir / card.name / CACHE_FILE)
    path.parent.mkdir(parents=True, exist_ok=True)
    return LogitCache(path)


def exported_from(member: ModelCard, run: Path) -> ModelCard:
    """The run's card, after checking that ``member``'s bundled weights are the run's (rounded to float16
    when the member ships float16); ``ValueError`` otherwise."""
    import torch

    from cxr_engine.models.weights import load_model

    run_card = card_from_run(run)
    shipped, trained = load_model(member).state_dict(), load_model(run_card).state_dict()
    half = member.weights_dtype == "float16"
    for key, value in trained.items():
        expected = value.half().float() if half and value.is_floating_point() else value
        if key not in shipped or not torch.equal(shipped[key], expected):
            raise ValueError(f"--member-run {member.name}={run}: the bundled weights are not this run's "
                             f"({key} differs)")
    return run_card


def members(args, card: EnsembleCard) -> list[tuple[ModelCard, LazyClassifier, LogitCache | None]]:
    """Each member's evaluated card (its run's with ``--member-run``), temperature-1 classifier (loaded when
    first needed) and cache, made once per run."""
    made = getattr(args, "_members", None)
    if made is None:
        made = []
        for member in card.member_cards:
            run = args.member_run.get(member.name)
            evaluated = exported_from(member, Path(run)) if run else member
            made.append((evaluated, LazyClassifier(evaluated, args.device), member_cache(args, member)))
        args._members = made
    return made


def split_logits(args, classifier, card: ModelCard, cache: LogitCache | None, split: str,
                 rows: Sequence[dict], masked: bool = False, shift: str | None = None,
                 framing: str | None = None, segmenter=None) -> np.ndarray:
    """Logits of one split's images (lungs-masked when ``masked``, after a processing ``shift`` or a
    ``framing`` shift), cached; an averaged model's from its members' (see the module)."""
    if isinstance(card, EnsembleCard):
        logits = [split_logits(args, member_classifier, member, member_cache_, split, rows, masked, shift, framing,
                               segmenter) for member, member_classifier, member_cache_ in members(args, card)]
        return ensemble_logits(logits, card.member_weights, card.logit_offsets)
    paths = [r["path"] for r in rows]
    variant, loader, name = "plain", None, split
    if masked and segmenter is not None:
        variant, name = f"masked own lungs {segmenter.card.weights_sha256} dilate {DILATE_FRACTION}", f"{split}_masked"
        loader = lambda p: own_lungs_masked_display(p, card.input_size, segmenter, mask_lungs)[0]  # noqa: E731
    elif masked:
        variant, name = "masked", f"{split}_masked"
        loader = lambda p: masked_display(p, card.input_size)  # noqa: E731
    elif shift:
        variant, name = f"shift {shift}: {SHIFTS[shift][0]}", f"{split}_shift_{shift.replace(' ', '_')}"
        loader = lambda p: shifted_display(p, card.input_size, shift)  # noqa: E731
    elif framing:
        variant, name = f"framing {framing}: {FRAMING_SHIFTS[framing][0]}", f"{split}_framing_{framing}"
        name = "".join(c if c.isalnum() else "_" for c in name)
        loader = lambda p: framed_display(p, card.input_size, framing)  # noqa: E731
    return cached_logits(cache, name, fingerprint(card, paths, variant),
                         lambda: predict_logits(classifier, paths, args.batch_size, name, loader))


def processing_shift_section(args, classifier, card: ModelCard, cache, rows, test_logits, temperature) -> dict | None:
    if args.no_shift_test:
        return None
    shifted = {name: split_logits(args, classifier, card, cache, "test", rows, shift=name) for name in SHIFTS}
    return shift_section(label_indices(rows), test_logits, shifted, temperature)


def lung_segmenter(args):
    """The lung-field model for the lung checks (``--lung-model``), or None when off or not bundled."""
    if args.no_lung_checks:
        return None
    from cxr_engine.errors import ModelError
    from cxr_engine.models.lung_fields import LungSegmenter, lung_card

    try:
        return LungSegmenter(lung_card(args.lung_model), threads=args.threads)
    except ModelError as error:
        log.warning("lung checks skipped: %s", error)
        return None


def other_findings_section(args, classifier, card: ModelCard, cache, temperature) -> dict | None:
    """Calls on films outside the three classes (``--other-manifest``), cached like the test's logits."""
    if not args.other_manifest:
        return None
    rows = read_other_manifest(args.other_manifest)
    logits = split_logits(args, classifier, card, cache, "other", rows)
    return other_section(rows, M.softmax(logits, temperature))


def framing_shift_section(args, classifier, card: ModelCard, cache, rows, test_logits, temperature) -> dict | None:
    if args.no_shift_test:
        return None
    framed = {name: split_logits(args, classifier, card, cache, "test", rows, framing=name) for name in FRAMING_SHIFTS}
    return shift_section(label_indices(rows), test_logits, framed, temperature, FRAMING_SHIFTS, FRAMING_CHANGE_MARGIN)


def draw_figures(args, results: dict, classifier, test_rows, test_logits, card: ModelCard, segmenter=None) -> None:
    out, temperature = args.out, results["temperature"]
    test = results["test"]
    plot_confusion(test["after_temperature"]["confusion"], out / "confusion_matrix.png",
                   f"{results['model']}: test confusion (n={test['after_temperature']['n']})")
    plot_reliability(test["reliability_before"], test["reliability_after"], out / "reliability.png",
                     (test["before_temperature"]["ece"], test["after_temperature"]["ece"]), temperature)
    plot_masked_examples(test_rows, card.input_size, out / "masked_examples.png", segmenter)
    plot_gradcam_montage(classifier, test_rows, M.softmax(test_logits, temperature), args.montage_per_kind,
                         args.seed, out / "gradcam_montage.png")


def evaluate(args: argparse.Namespace, command: str) -> dict:
    """Run every step; writes the report folder and returns the metrics."""
    from cxr_engine.models.weights import load_model

    seed_everything(args.seed)
    card = load_card(args)
    manifest = args.manifest or run_manifest(args.run)
    ensemble = card.architecture == "ensemble"  # no weights of its own: its members load theirs
    classifier = make_classifier(card, args.device, model=None if ensemble else load_model(card))
    cache = None if args.no_cache else LogitCache(args.out / CACHE_FILE)
    val_rows = split_rows(manifest, "val", args.limit, args.seed)
    test_rows = split_rows(manifest, "test", args.limit, args.seed)
    log.info("%s on %s: %d validation and %d test images from %s", card.name, classifier.device,
             len(val_rows), len(test_rows), manifest)
    val_logits = split_logits(args, classifier, card, cache, "val", val_rows)
    test_logits = split_logits(args, classifier, card, cache, "test", test_rows)
    segmenter = lung_segmenter(args)
    masked_logits = split_logits(args, classifier, card, cache, "test", test_rows, masked=True, segmenter=segmenter)
    temperature = M.fit_temperature(val_logits, label_indices(val_rows))
    results = {
        "model": card.name, "architecture": card.architecture, "input_size": card.input_size,
        "run": str(args.run) if args.run else None, "card": str(args.card) if args.card else None,
        "weights_sha256": card.weights_sha256, "preprocessing_version": card.preprocessing_version,
        "manifest": str(manifest), "manifest_sha256": sha256_file(manifest), "limit": args.limit,
        "command": command, "device": classifier.device_description(), "seed": args.seed,
        "created": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
        "temperature": temperature, "temperature_fitted_on": f"validation split ({len(val_rows)} images)",
        "validation": M.summarise(label_indices(val_rows), M.softmax(val_logits, temperature), CLASSES,
                                  val_logits, temperature),
        "test": test_section(test_rows, test_logits, temperature),
        "lungs_masked": masked_section(test_rows, masked_logits, temperature, segmenter),
        "heatmap_in_lungs": (heatmap_in_lungs_section(classifier, segmenter, test_rows, args.heatmap_films_per_class,
                                                      args.seed) if segmenter is not None else None),
        "processing_shift": processing_shift_section(args, classifier, card, cache, test_rows, test_logits,
                                                     temperature),
        "framing_shift": framing_shift_section(args, classifier, card, cache, test_rows, test_logits, temperature),
        "loso": loso_section(args, manifest, cache, card) if args.loso_run else None,
        "external": [external_section(classifier, folder, temperature) for folder in args.external],
        "other_findings": other_findings_section(args, classifier, card, cache, temperature),
    }
    if ensemble:
        results["members_evaluated"] = [
            {"card": shipped.name, "weights_sha256": shipped.weights_sha256, "run": args.member_run.get(shipped.name),
             "evaluated_weights_sha256": evaluated.weights_sha256}
            for shipped, (evaluated, _, _) in zip(card.member_cards, members(args, card))]
    meets, failures = check_bar(results["test"]["after_temperature"], args.limit)
    failures += check_shortcuts(results["lungs_masked"], results["loso"])
    failures += check_shifts(results["processing_shift"])
    failures += check_framing(results["framing_shift"])
    failures += check_populations(results["test"]["populations"])
    results["bar"] = {"meets_bar": not failures, "failures": failures,
                      "criteria": {**BAR, "lungs_masked_margin_over_majority": MASKED_MARGIN,
                                   "processing_shift_max_drop": SHIFT_MARGIN,
                                   "framing_shift_max_changed": FRAMING_CHANGE_MARGIN,
                                   "populations": POPULATION_BAR, "loso_accuracy": BAR["accuracy"]}}
    draw_figures(args, results, classifier, test_rows, test_logits, card, segmenter)
    classifier.close()
    results["figures"] = {"confusion": "confusion_matrix.png", "reliability": "reliability.png",
                          "masked_examples": "masked_examples.png", "gradcam_montage": "gradcam_montage.png"}
    return results


def log_summary(results: dict) -> None:
    test, masked = results["test"]["after_temperature"], results["lungs_masked"]
    log.info("T = %.4f; test accuracy %.4f, macro-F1 %.4f, ECE %.4f (before T %.4f); F1 %s",
             results["temperature"], test["accuracy"], test["macro_f1"], test["ece"],
             results["test"]["before_temperature"]["ece"],
             ", ".join(f"{c} {v:.3f}" for c, v in test["f1"].items() if v is not None))
    log.info("lungs-masked accuracy %.4f (macro-F1 %s); bar %s", masked["accuracy"], fmt(masked["macro_f1"]),
             "met" if results["bar"]["meets_bar"] else "not met: " + "; ".join(results["bar"]["failures"]))


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parse_args(argv)
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    args.out = args.out or Path("training/reports") / (args.run.name if args.run else load_card(args).name)
    args.out.mkdir(parents=True, exist_ok=True)
    with script_logging(args.out / "evaluate.log"):
        command = shlex.join(["python", "-m", "training.evaluate", *argv])
        log.info("command: %s", command)
        results = evaluate(args, command)
        (args.out / "metrics.json").write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
        (args.out / "report.md").write_text("\n".join(report_sections(results)), encoding="utf-8")
        log_summary(results)
        log.info("report: %s", args.out / "report.md")
    return 0


if __name__ == "__main__":
    sys.exit(main())
