"""Make an averaged model's card (issue 14): bundled classifiers averaged, offsets and temperature fitted on validation.

For each member (a bundled classifier card, ``--member NAME[:WEIGHT]``) its validation logits are computed
through the engine as ``training.evaluate`` does (and taken from, or stored in, its evaluation's logit
cache ``<reports>/<member>/logits.npz`` when the fingerprint matches). The ensemble's logits are the
weighted mean of the members' log-probabilities (``cxr_engine.models.ensemble``); its per-class offsets are
chosen on the validation split by ``training.operating_point.choose`` (the same constraints and grid as a
single model's operating point), then its temperature is fitted on the validation split
(``metrics.fit_temperature``). The card is written to the models folder with ``meets_bar`` false: the
ensemble's test figures and its bar come from ``python -m training.evaluate --card <models>/<NAME>.json``,
recorded into the card with ``--record <that evaluation's metrics.json>`` (the same bar as
``training.export`` applies to a single model).

Run: ``python -m training.ensemble_card --member efficientnet-lite0 --member efficientnet-b1:1.0 --name
averaged --manifest data/splits/cxr3_split.csv [--models-dir resources/models]``, then
``python -m training.evaluate --card resources/models/averaged.json --manifest data/splits/cxr3_split.csv``
and ``python -m training.ensemble_card --name averaged --record training/reports/averaged/metrics.json``.
"""
from __future__ import annotations

import argparse
import json
import logging
import shlex
import sys
from pathlib import Path
from typing import Sequence

import numpy as np

from cxr_engine.errors import ModelError
from cxr_engine.models.ensemble import ensemble_logits
from cxr_engine.models.ensemble_card import ARCHITECTURE, EnsembleCard, is_ensemble_data
from cxr_engine.models.model_card import CLASSES, INTENDED_USE, ModelCard
from cxr_engine.models.weights import sha256_file

from . import metrics as M
from .evaluate import (add_member_options, cached_logits, exported_from, fingerprint, label_indices, make_classifier,
                       member_cache, parse_member_options, predict_logits, split_rows)
from .operating_point import CONSTRAINTS, choose
from .script_logging import script_logging

log = logging.getLogger("training.ensemble_card")


def parse_member(text: str) -> tuple[str, float]:
    """``NAME`` or ``NAME:WEIGHT`` -> (name, weight); ``ValueError`` for a weight that is not positive."""
    name, _, weight = text.partition(":")
    value = float(weight) if weight else 1.0
    if not name or not np.isfinite(value) or value <= 0:
        raise ValueError(f"--member {text!r}: expected NAME or NAME:WEIGHT with a positive weight")
    return name, value


def member_card(models_dir: Path, name: str) -> ModelCard:
    """The bundled classifier card ``<models_dir>/<name>.json``; ``ModelError`` when absent or an ensemble."""
    path = models_dir / f"{name}.json"
    if not path.is_file():
        raise ModelError(f"{path}: no model card for member {name!r}")
    if is_ensemble_data(ModelCard.read_json(path)):
        raise ModelError(f"{path}: member {name!r} is itself an ensemble; an ensemble may not contain an ensemble")
    return ModelCard.load(path)


def member_logits(args, card: ModelCard, rows: Sequence[dict]) -> np.ndarray:
    """(N, K) temperature-1 log-probabilities of ``card`` on ``rows`` (``training.evaluate``'s logits),
    from the member's evaluation cache when it matches (``--member-cache``, ``--member-run``: as
    ``training.evaluate``)."""
    cache = member_cache(args, card)  # by the bundled member's name, before a --member-run replaces the card
    if card.name in args.member_run:
        card = exported_from(card, Path(args.member_run[card.name]))
    paths = [row["path"] for row in rows]

    def compute() -> np.ndarray:
        from cxr_engine.models.weights import load_model

        classifier = make_classifier(card, args.device, model=load_model(card))
        try:
            return predict_logits(classifier, paths, args.batch_size, f"val {card.name}")
        finally:
            classifier.close()

    return cached_logits(cache, "val", fingerprint(card, paths, "plain"), compute)


def member_sources(cards: Sequence[ModelCard]) -> dict:
    """The members' training sources (``training_data.sources``; the first member's entry for a source
    two members share): what the ensemble has seen."""
    sources: dict = {}
    for card in cards:
        for name, entry in ((card.training_data or {}).get("sources") or {}).items():
            sources.setdefault(name, entry)
    return sources


def plain(value):
    """``value`` with numpy scalars and arrays as JSON numbers and lists."""
    return json.loads(json.dumps(value, default=lambda v: v.tolist() if hasattr(v, "tolist") else float(v)))


def build_card(args, cards: Sequence[ModelCard], weights: Sequence[float], rows: Sequence[dict],
               logits: Sequence[np.ndarray], command: str) -> EnsembleCard:
    """The ensemble's card: offsets chosen and temperature fitted on ``rows`` (the validation split)."""
    labels = label_indices(rows)
    averaged = ensemble_logits(logits, weights, np.zeros(len(CLASSES)))
    offsets, chosen, _ = choose(rows, averaged)
    z = averaged + offsets
    temperature = M.fit_temperature(z, labels)
    validation = M.summarise(labels, M.softmax(z, temperature), CLASSES, z, temperature)
    members_alone = {}
    for card, member in zip(cards, logits):
        t = M.fit_temperature(member, labels)
        figures = M.summarise(labels, M.softmax(member, t), CLASSES, member, t)
        members_alone[card.name] = {k: figures[k] for k in ("accuracy", "macro_f1", "ece")}
    log.info("validation: ensemble accuracy %.4f, macro-F1 %.4f; alone: %s", validation["accuracy"],
             validation["macro_f1"], "; ".join(f"{n} {f['accuracy']:.4f} / {f['macro_f1']:.4f}"
                                               for n, f in members_alone.items()))
    manifest = Path(args.manifest)
    return EnsembleCard(
        name=args.name, architecture=ARCHITECTURE, classes=list(CLASSES),
        members=[{"card": c.name, "weight": float(w), "weights_sha256": c.weights_sha256} for c, w in zip(cards, weights)],
        logit_offsets=[float(v) for v in offsets], temperature=float(temperature), meets_bar=False,
        training_data={"sources": member_sources(cards), "members": [c.name for c in cards],
                       "split_manifest": str(manifest), "split_manifest_sha256": sha256_file(manifest)},
        validation_metrics=plain({**validation, "split": "val", "limit": args.limit,
                                  "temperature_fitted_on": f"validation split ({len(rows)} images)",
                                  "operating_point": {"constraints": CONSTRAINTS, **chosen},
                                  "members_alone": members_alone}),
        intended_use=INTENDED_USE,
        notes=("The weighted mean of the members' log-probabilities plus per-class offsets, then temperature "
               "scaling (cxr_engine.models.ensemble); offsets chosen and temperature fitted on the validation "
               "split. No test figures yet: meets_bar stays false until training.evaluate --card evaluates it."),
        created_by_command=command,
    )


def make_ensemble(args, command: str) -> EnsembleCard:
    """Write ``<models_dir>/<name>.json`` and return it reloaded through the engine."""
    members = [parse_member(text) for text in args.member]
    if len(members) < 2:
        raise ValueError("an ensemble needs at least two --member")
    out = args.models_dir / f"{args.name}.json"
    if out.exists() and not is_ensemble_data(ModelCard.read_json(out)):
        raise ModelError(f"{out}: a model's card already has that name; choose another --name")
    if args.name in {name for name, _ in members}:
        raise ValueError(f"--name {args.name!r} is a member's name")
    cards = [member_card(args.models_dir, name) for name, _ in members]
    rows = split_rows(args.manifest, "val", args.limit, args.seed)
    logits = [member_logits(args, card, rows) for card in cards]
    card = build_card(args, cards, [w for _, w in members], rows, logits, command)
    card.save(out)
    return EnsembleCard.load(out)


def record_evaluation(args, command: str) -> EnsembleCard:
    """Write ``training.evaluate``'s report (``args.record``) of the ensemble into its card: test metrics,
    the bar (``export.bar_failures``), the temperature the evaluation fitted on validation, notes and
    commands; returns the card reloaded. ``ValueError`` when the report evaluated another ensemble, a
    subset (without ``--allow-subset``) or a manifest that has changed since."""
    from .export import bar_failures, card_notes, load_report, test_metrics

    path = args.models_dir / f"{args.name}.json"
    card = EnsembleCard.load(path)
    report = load_report(args.record, card, args.allow_subset)
    section = report["test"]
    failures = bar_failures(report, section)
    card.test_metrics = plain({**test_metrics(section, report, args.record.parent, None, "float32"),
                               "bar_failures": failures})
    card.meets_bar = not failures
    card.temperature = float(report["temperature"])
    card.notes = (f"{card_notes(report, section, failures, None, False)} Averaged model of "
                  f"{' + '.join(m['card'] for m in card.members)}: the weighted mean of their log-probabilities "
                  "plus per-class offsets chosen on validation, then temperature scaling (cxr_engine.models.ensemble).")
    card.created_by_command = "\n".join([card.created_by_command.split("\n")[0], report["command"], command])
    card.save(path)
    return EnsembleCard.load(path)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m training.ensemble_card", description=__doc__.split("\n\n")[0])
    p.add_argument("--member", action="append", default=[], metavar="NAME[:WEIGHT]",
                   help="a bundled classifier card and its weight (default 1); at least two")
    p.add_argument("--name", required=True, help="the ensemble's name: the card's file stem in the models folder")
    p.add_argument("--manifest", type=Path, help="split manifest whose val split fits offsets and T")
    p.add_argument("--record", type=Path, metavar="METRICS_JSON",
                   help="instead: write training.evaluate's metrics.json of the ensemble into its card")
    p.add_argument("--allow-subset", action="store_true", help="with --record: accept an evaluation with --limit")
    p.add_argument("--models-dir", type=Path, default=Path("resources/models"), help="default resources/models")
    add_member_options(p)
    p.add_argument("--limit", type=int, help="at most N validation images, balanced by class (development only)")
    p.add_argument("--seed", type=int, default=0, help="seed for --limit (default 0)")
    p.add_argument("--batch-size", type=int, default=32, help="images per forward pass (default 32)")
    p.add_argument("--device", default="auto", help="auto (default), cpu or cuda[:N]")
    p.add_argument("--no-cache", action="store_true", help="recompute the members' logits")
    args = p.parse_args(argv)
    if not args.record and (len(args.member) < 2 or not args.manifest):
        p.error("give two or more --member and --manifest (or --record)")
    parse_member_options(p, args)
    return args


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parse_args(argv)
    with script_logging():
        command = shlex.join(["python", "-m", "training.ensemble_card", *argv])
        log.info("command: %s", command)
        try:
            card = record_evaluation(args, command) if args.record else make_ensemble(args, command)
        except (ModelError, ValueError, OSError) as exc:
            log.error("%s", exc)
            return 2
        log.info("model card %s: %s; offsets %s, T = %.4f", card.path, card.summary(), card.logit_offsets,
                 card.temperature)
    return 0


if __name__ == "__main__":
    sys.exit(main())
