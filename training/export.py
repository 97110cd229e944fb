"""Export an evaluated run as a bundled model: ``<name>.safetensors`` and its model card ``<name>.json``.

The weights are written in float16 when the test accuracy through the engine with the
fp16-rounded weights stays within 0.1 percentage point of float32 (``--half auto``), else in
float32; each file must stay under 16 MiB. The card carries the temperature and the metrics of
``training.evaluate`` (test metrics recomputed with the shipped weights), the bar verdict, the
training data's sources, counts and licences, the split manifest's sha256 and every command
that produced it.

Run: ``python -m training.export --run training/work/runs/lite0_224 --name efficientnet-lite0
--report training/reports/lite0_224/metrics.json``
"""
from __future__ import annotations

import argparse
import copy
import json
import logging
import shlex
import sys
from collections import Counter, defaultdict
from pathlib import Path
from typing import Sequence

import numpy as np

from cxr_engine.models.model_card import CLASSES, INTENDED_USE, ModelCard
from cxr_engine.models.weights import sha256_file

from . import metrics as M
from .evaluate import (
    CACHE_FILE,
    LogitCache,
    card_from_run,
    cached_logits,
    check_bar,
    check_shortcuts,
    fingerprint,
    is_pediatric,
    label_indices,
    make_classifier,
    predict_logits,
    read_run,
    test_section,
)
from .framing_shift import check_framing
from .populations import check_populations
from .processing_shift import check_shifts
from .script_logging import script_logging

log = logging.getLogger("training.export")

MAX_BYTES = 16 * 1024 * 1024
HALF_TOLERANCE = 0.001  # 0.1 percentage point of test accuracy
LICENCE = ("Research use only. The weights are derived from public chest X-ray collections under mixed "
           "licences, including non-commercial (NC) and no-derivatives (ND) terms for some images; see "
           "training_data.sources for each source's licence. No clinical or commercial use.")


# --------------------------------------------------------------------------- inputs

def display_path(path: str | Path) -> str:
    """``path`` relative to the working directory when it lies under it (cards carry no home paths)."""
    path = Path(path)
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


def load_report(path: Path, card: ModelCard, allow_subset: bool) -> dict:
    """``metrics.json`` of ``training.evaluate``, checked against the weights being exported."""
    report = json.loads(path.read_text(encoding="utf-8"))
    if report["weights_sha256"] != card.weights_sha256:
        raise ValueError(f"{path} evaluated weights {report['weights_sha256'][:12]}…, but the run's "
                         f"best.safetensors is now {card.weights_sha256[:12]}…: evaluate again")
    if report.get("limit") and not allow_subset:
        raise ValueError(f"{path} was evaluated on a subset (--limit {report['limit']}); "
                         "evaluate the whole split or pass --allow-subset")
    if sha256_file(report["manifest"]) != report["manifest_sha256"]:
        raise ValueError(f"{report['manifest']} changed since {path} was written")
    return report


def test_rows(report: dict) -> list[dict]:
    """The test rows ``training.evaluate`` used (same manifest, limit and seed)."""
    from .evaluate import split_rows

    return split_rows(Path(report["manifest"]), "test", report.get("limit"), report.get("seed", 0))


# --------------------------------------------------------------------------- float16

def half_rounded(model):
    """A copy of ``model`` whose floating tensors are rounded to float16 and back to float32.

    This is exactly what the engine loads from a float16 file (``load_model`` upcasts).
    """
    import torch

    rounded = copy.deepcopy(model)
    with torch.no_grad():
        for tensor in [*rounded.parameters(), *rounded.buffers()]:
            if tensor.is_floating_point():
                tensor.copy_(tensor.half().float())
    return rounded


def accuracy_of(rows: Sequence[dict], logits: np.ndarray) -> float:
    return M.accuracy(label_indices(rows), np.asarray(logits).argmax(axis=1))


def fp16_check(rows, logits32: np.ndarray, logits16: np.ndarray) -> dict:
    """How float16 weights change the test predictions."""
    acc32, acc16 = accuracy_of(rows, logits32), accuracy_of(rows, logits16)
    return {
        "accuracy_float32": acc32, "accuracy_float16": acc16, "accuracy_difference": acc16 - acc32,
        "changed_predictions": int((logits32.argmax(1) != logits16.argmax(1)).sum()),
        "max_probability_difference": float(np.abs(M.softmax(logits32) - M.softmax(logits16)).max()),
        "tolerance": HALF_TOLERANCE, "within_tolerance": abs(acc16 - acc32) <= HALF_TOLERANCE, "n": len(rows),
    }


def choose_half(mode: str, check: dict | None) -> bool:
    """float16 for ``yes``, float32 for ``no``; for ``auto``, float16 when accuracy is kept."""
    if mode == "auto":
        return bool(check and check["within_tolerance"])
    return mode == "yes"


def write_weights(model, path: Path, half: bool) -> str:
    """Save the weights; refuses (and removes) a file of 16 MiB or more. Returns the sha256."""
    from cxr_engine.models.weights import save_weights

    path.parent.mkdir(parents=True, exist_ok=True)
    sha = save_weights(model, path, half=half)
    size = path.stat().st_size
    if size >= MAX_BYTES:
        path.unlink()
        raise ValueError(f"{path}: {size / 2**20:.1f} MiB is not under 16 MiB"
                         + ("" if half else "; float16 (--half yes) halves it"))
    log.info("wrote %s (%s, %.1f MiB)", path, "float16" if half else "float32", size / 2**20)
    return sha


# --------------------------------------------------------------------------- card contents

def training_data(manifest: Path) -> dict:
    """Sources, licences and counts (split x class) of a split manifest, and its sha256."""
    from .data import read_manifest

    rows = read_manifest(manifest)
    sources: dict[str, dict] = defaultdict(lambda: {"licences": set(), "images": defaultdict(Counter),
                                                    "age_groups": Counter()})
    for row in rows:
        entry = sources[row.get("source") or "unknown"]
        entry["licences"].add(row.get("licence") or "unknown (user data)")
        entry["images"][row["split"]][row["label"]] += 1
        entry["age_groups"][row.get("age_group") or "unknown"] += 1
    return {
        "split_manifest": display_path(manifest),
        "split_manifest_sha256": sha256_file(manifest),
        "images": dict(Counter(r["split"] for r in rows)),
        "sources": {name: {"licences": sorted(e["licences"]),
                           "images": {s: dict(c) for s, c in sorted(e["images"].items())},
                           "age_groups": dict(e["age_groups"])} for name, e in sorted(sources.items())},
        "use": "research use only",
    }


def commands(run: Path, report: dict, export_command: str) -> str:
    """The curation (when its summary is beside the manifest), training, evaluation and export commands."""
    info = read_run(run)
    lines = []
    summary = Path(info.get("manifest", "")).parent / "summary.json"
    if summary.is_file():
        curated = json.loads(summary.read_text(encoding="utf-8"))
        if curated.get("split_manifest_sha256") == info.get("manifest_sha256"):
            lines.append(curated["command"])
    return "\n".join([*lines, info["command"], report["command"], export_command])


def best_epoch(run: Path) -> int | None:
    """The epoch ``best.safetensors`` comes from (the last best line of ``metrics.jsonl``)."""
    path = run / "metrics.jsonl"
    if not path.exists():
        return None
    best = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    best = [r["epoch"] for r in best if r.get("is_best")]
    return best[-1] if best else None


def test_metrics(section: dict, report: dict, report_dir: Path, check: dict | None, dtype: str) -> dict:
    """The card's ``test_metrics``: headline metrics of the shipped weights plus every table."""
    after = section["after_temperature"]
    keep = ("n", "accuracy", "macro_f1", "precision", "recall", "f1", "support", "auroc", "macro_auroc",
            "ece", "nll", "confusion")
    masked = report["lungs_masked"]
    return {
        **{k: after[k] for k in keep},
        "ece_before_temperature": section["before_temperature"]["ece"],
        "nll_before_temperature": section["before_temperature"]["nll"],
        "lungs_masked_accuracy": masked["accuracy"],
        "lungs_masked": {k: masked[k] for k in ("n", "accuracy", "macro_f1", "recall", "predicted",
                                                "chance_accuracy", "majority_class_accuracy", "mask")},
        "by_source": section["by_source"],
        "by_age_group": section["by_age_group"],
        "shortcut_checks": section["shortcut_checks"],
        "leave_one_source_out": report.get("loso"),
        "processing_shift": report.get("processing_shift"),
        "framing_shift": report.get("framing_shift"),
        "heatmap_in_lungs": {k: v for k, v in (report.get("heatmap_in_lungs") or {}).items() if k != "lowest"} or None,
        "populations": section.get("populations"),
        "other_findings": report.get("other_findings"),
        "external_files": report.get("external"),
        "weights_evaluated": dtype,
        "fp16_check": check,
        "report": display_path(report_dir / "report.md"),
    }


def validation_metrics(report: dict, run: Path) -> dict:
    val = report["validation"]
    keep = ("n", "accuracy", "macro_f1", "precision", "recall", "f1", "auroc", "ece", "nll")
    return {**{k: val[k] for k in keep}, "epoch": best_epoch(run),
            "note": "through the engine with float32 weights; temperature fitted on this split"}


def shortcut_note(checks: list[dict]) -> str:
    found = {c["check"]: c for c in checks}
    parts = []
    for name in ("adult pneumonia called pneumonia", "pediatric normal called normal", "adult normal called normal"):
        if name in found:
            c = found[name]
            parts.append(f"{name}: {c['hits']}/{c['n']}")
    return "; ".join(parts)


def confounding_note(manifest: Path) -> str:
    """How age and source go with the label in the training split, in one sentence (counts from ``manifest``)."""
    from .data import read_manifest

    train = [r for r in read_manifest(manifest) if r["split"] == "train"] if manifest.is_file() else []
    pneumonia = [r for r in train if r["label"] == "pneumonia"]
    others = [r for r in train if r["label"] != "pneumonia"]
    if not pneumonia or not others:
        return "Confounding: the training split could not be read to count it."
    children = sum(is_pediatric(r) for r in pneumonia)
    adults_elsewhere = sum(not is_pediatric(r) for r in others)
    return (f"Confounding: {children} of the {len(pneumonia)} training pneumonia films are of children "
            f"({len(pneumonia) - children} adults) and {adults_elsewhere} of the {len(others)} normal and COVID-19 "
            "films are of adults, so scores can partly reflect age or source.")


def card_notes(report: dict, section: dict, failures: list[str], check: dict | None, half: bool) -> str:
    """Known limitations and how the numbers were made, as plain sentences."""
    masked, loso = report["lungs_masked"], report.get("loso")
    notes = [
        "Meets the project's bar (test accuracy >= 0.90, every class F1 >= 0.90, ECE <= 0.05)." if not failures
        else "Does NOT meet the project's bar; failed: " + "; ".join(failures) + ". Not to be offered as default.",
        f"Temperature {report['temperature']:.4f} fitted on the validation split only (NLL); test metrics are "
        "after it, through the engine (read_image -> Classifier).",
        confounding_note(Path(report["manifest"])),
        f"Shortcut checks on the test split: {shortcut_note(section['shortcut_checks'])}.",
        f"Lungs-masked test accuracy {masked['accuracy']:.3f} (macro-F1 {fmt3(masked['macro_f1'])}; chance 0.333, "
        f"majority class {masked['majority_class_accuracy']:.3f}), measured with float32 weights: accuracy far above "
        "chance there means the model uses evidence outside the lung fields.",
        (f"Leave-one-source-out: a run without {loso['held_out_source']} scored accuracy {loso['accuracy']:.3f} on its "
         f"{loso['n']} images." if loso else
         "Leave-one-source-out was not run: performance on unseen hospitals is unknown."),
        shift_note(report.get("processing_shift")),
        "Per-source and per-age-group metrics: test_metrics.by_source and test_metrics.by_age_group.",
    ]
    if report.get("limit"):
        notes.insert(0, f"EVALUATED ON A SUBSET (--limit {report['limit']} per split): not the full test split.")
    if check:
        notes.append(f"float16 check: test accuracy {check['accuracy_float16']:.4f} (float16) vs "
                     f"{check['accuracy_float32']:.4f} (float32), {check['changed_predictions']} changed predictions; "
                     f"shipped as {'float16' if half else 'float32'}.")
    return " ".join(notes)


def origin_note(run_args: dict) -> str:
    """How the weights started: ImageNet backbone, random initialisation, and any distillation teacher."""
    pretrained = run_args.get("pretrained") or "none"
    start = ("Random initialisation (trained from scratch)." if pretrained.lower() == "none"
             else f"Backbone initialised from {Path(pretrained).name}.")
    if "lite" in Path(pretrained).name and "lite" not in run_args.get("arch", ""):
        start += (" An EfficientNet-Lite backbone into the full EfficientNet: its convolutions and batch norms "
                  "loaded, the squeeze-excitation gates and the extra residual blocks started as identities "
                  "(training.pretrained.complete_from_lite).")
    teacher = run_args.get("teacher")
    if not teacher:
        return start
    return (f"{start} Distilled from {teacher} (loss {1 - run_args['distill_weight']:.2f} x label cross-entropy + "
            f"{run_args['distill_weight']:.2f} x KL to its soft targets at temperature "
            f"{run_args['distill_temperature']:g}); the deployed model needs no teacher.")


def shift_note(section: dict | None) -> str:
    """One sentence on the processing-shift test (training.processing_shift)."""
    if not section or not section["shifts"]:
        return "Processing-shift test not run: sensitivity to sharpening, noise or resolution is unknown."
    worst, row = max(section["shifts"].items(), key=lambda item: item[1]["accuracy_drop"])
    return (f"Processing-shift test ({', '.join(section['shifts'])}): largest test accuracy drop "
            f"{row['accuracy_drop']:.3f} (under {worst}; allowed {section['margin']:.2f}).")


def fmt3(value) -> str:
    return "–" if value is None else f"{value:.3f}"


# --------------------------------------------------------------------------- main

def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m training.export", description=__doc__.split("\n\n")[0])
    p.add_argument("--run", type=Path, required=True, help="training run folder (best.safetensors, run.json)")
    p.add_argument("--name", required=True, help="model name: the file stem in the models folder")
    p.add_argument("--report", type=Path, required=True, help="metrics.json written by training.evaluate for this run")
    p.add_argument("--half", choices=("auto", "yes", "no"), default="auto",
                   help="float16 weights: auto (default) when test accuracy stays within 0.1 pt")
    p.add_argument("--models-dir", type=Path, default=Path("resources/models"), help="default resources/models")
    p.add_argument("--batch-size", type=int, default=32, help="images per forward pass (default 32)")
    p.add_argument("--device", default="auto", help="auto (default), cpu or cuda[:N]")
    p.add_argument("--threads", type=int, help="torch CPU threads (default: torch's choice)")
    p.add_argument("--allow-subset", action="store_true", help="accept a report evaluated with --limit (tests)")
    args = p.parse_args(argv)
    if not args.name or any(c in args.name for c in "/\\") or args.name.startswith("."):
        p.error(f"--name must be a plain file stem, got {args.name!r}")
    return args


def float_logits(args, card: ModelCard, rows, model, half: bool) -> np.ndarray:
    """Test logits with the float32 weights (cached by evaluate) or the fp16-rounded ones."""
    paths = [r["path"] for r in rows]

    def compute() -> np.ndarray:
        classifier = make_classifier(card, args.device, half_rounded(model) if half else model)
        try:
            return predict_logits(classifier, paths, args.batch_size, "test fp16" if half else "test fp32")
        finally:
            classifier.close()

    if half:
        return compute()
    cache = LogitCache(args.report.parent / CACHE_FILE)
    return cached_logits(cache, "test", fingerprint(card, paths, "plain"), compute)


def verify(card_path: Path, expected_model) -> ModelCard:
    """Reload the written card and weights through the engine and compare with what was meant."""
    import torch

    from cxr_engine.models.weights import load_model

    card = ModelCard.load(card_path)
    loaded = load_model(card).state_dict()
    for key, tensor in expected_model.state_dict().items():
        if not torch.equal(loaded[key], tensor.float() if tensor.is_floating_point() else tensor):
            raise AssertionError(f"{card.weights_path}: tensor {key} differs from the exported model")
    return card


def bar_failures(report: dict, section: dict) -> list[str]:
    """Why an evaluation (``report``, ``section``: its test section) misses the project's bar; empty when it meets it."""
    return _failures(section["after_temperature"], report.get("limit"), report.get("lungs_masked"), report.get("loso"),
                     report.get("processing_shift"), report.get("framing_shift"), section.get("populations"))


def card_bar_failures(metrics: dict) -> list[str]:
    """:func:`bar_failures` from a card's own ``test_metrics`` (the figures :func:`test_metrics` copied there
    from the evaluation; a card is always of a whole test split)."""
    return _failures(metrics, None, metrics.get("lungs_masked"), metrics.get("leave_one_source_out"),
                     metrics.get("processing_shift"), metrics.get("framing_shift"), metrics.get("populations"))


def _failures(after: dict, limit, masked, loso, processing, framing, populations) -> list[str]:
    _, failures = check_bar(after, limit)
    failures += check_shortcuts(masked, loso)
    failures += check_shifts(processing)
    failures += check_framing(framing)
    failures += check_populations(populations)
    return failures


def build_card(args, run_card: ModelCard, report: dict, section: dict, check: dict | None, half: bool,
               sha: str, command: str) -> ModelCard:
    """The bundled model's card (``section``: test metrics of the shipped weights)."""
    failures = bar_failures(report, section)
    meets = not failures
    dtype = "float16" if half else "float32"
    run_args = read_run(args.run)["args"]
    manifest = Path(run_args.get("split_manifest") or report["manifest"])
    return ModelCard(
        name=args.name, architecture=run_card.architecture, classes=list(CLASSES), input_size=run_card.input_size,
        in_chans=run_card.in_chans, mean=run_card.mean, std=run_card.std,
        preprocessing_version=run_card.preprocessing_version, weights_file=f"{args.name}.safetensors",
        weights_sha256=sha, weights_dtype=dtype, temperature=report["temperature"], meets_bar=meets,
        training_data=training_data(manifest),
        test_metrics={**test_metrics(section, report, args.report.parent, check, dtype), "bar_failures": failures},
        validation_metrics=validation_metrics(report, args.run), licence=LICENCE, intended_use=INTENDED_USE,
        notes=f"{card_notes(report, section, failures, check, half)} {origin_note(run_args)}",
        created_by_command=commands(args.run, report, command),
    )


def export(args: argparse.Namespace, command: str) -> ModelCard:
    """Write the weights and card into ``args.models_dir``; returns the reloaded card."""
    from cxr_engine.models.weights import load_model

    run_card = card_from_run(args.run)
    report = load_report(args.report, run_card, args.allow_subset)
    rows = test_rows(report)
    model = load_model(run_card)
    logits32 = float_logits(args, run_card, rows, model, half=False)
    logits16 = float_logits(args, run_card, rows, model, half=True) if args.half != "no" else None
    check = fp16_check(rows, logits32, logits16) if logits16 is not None else None
    if check:
        log.info("float16 test accuracy %.4f vs float32 %.4f (%d changed predictions)", check["accuracy_float16"],
                 check["accuracy_float32"], check["changed_predictions"])
    half = choose_half(args.half, check)
    sha = write_weights(model, args.models_dir / f"{args.name}.safetensors", half)
    # The card describes the shipped weights: with float16, the test metrics are float16's.
    section = test_section(rows, logits16 if half else logits32, report["temperature"])
    card_path = args.models_dir / f"{args.name}.json"
    build_card(args, run_card, report, section, check, half, sha, command).save(card_path)
    return verify(card_path, half_rounded(model) if half else model)


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parse_args(argv)
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    with script_logging():
        command = shlex.join(["python", "-m", "training.export", *argv])
        log.info("command: %s", command)
        card = export(args, command)
        log.info("model card %s: %s", card.path, card.summary())
        if not card.meets_bar:
            log.warning("%s does not meet the bar; its card says so and the app will not make it the default",
                        card.name)
    return 0


if __name__ == "__main__":
    sys.exit(main())
