"""Fit, threshold and measure the laterality head (``cxr_engine.models.image_checks.LateralityHead``); write its card.

    python -m training.laterality --manifest training/work/curated_sqrt/split_manifest.csv \
        --out resources/models/image-laterality.json --report training/reports/image_laterality

Why: the image-check head calls a film stored flipped top to bottom "upside down" like one turned 180°
(it was trained mirror-blind, as hospitals show films either way), and turning such a film back shows it
mirrored left-right: the reader would see the heart on the wrong side under a "shown corrected" note. This
head reads a film once corrected (turned back, inverted back) and says whether it looks mirrored; a turned
film is corrected only when it is confident, and a negative is mirrored back too when it is confident.

Examples: every training-split film, jittered as the image-check head's examples are (framing, tilt,
gamma, blur, noise; never mirrored), once as it is (``as-shown``) and once mirrored left-right; the same
thumbnail features (``cxr_engine.models.image_checks.features``). The confidence threshold is the smallest
that keeps the error on the validation films it is confident about (each untouched film as it is and
mirrored) at most ``--max-error``. Reported, never used for choices: the same on the test split, and the
whole checker on test films turned 90°/180°/270° or inverted, each also mirrored first (a turned one is then
flipped): how many get the right correction, a wrong one, or none (not confident), per source too.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import logging
import shlex
import sys
import time
from collections import Counter
from pathlib import Path

import numpy as np

from cxr_engine.models.image_checks import (FEATURE_VERSION, INVERTED, LATERALITY_CLASSES, MIRRORED, ROTATIONS,
                                            ImageChecker, LateralityCard, LateralityHead, check_card)

from .image_checks import as_check_class, feature_rows, fit_mlp, jitter, read_films
from .script_logging import script_logging

logger = logging.getLogger("training.laterality")

#: The sources of the adult films it was least sure about (``--near-copies``).
NEAR_SOURCES = ("nih_cxr14", "rsna_pneumonia")

THRESHOLDS = np.round(np.arange(0.5, 0.99951, 0.0005), 4)


def mirrored(image: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(image[:, ::-1])


def examples(films, rng: np.random.Generator | None, copies: dict[str, int] | None = None
             ) -> tuple[np.ndarray, np.ndarray]:
    """Features and labels (0 as shown, 1 mirrored) of each film both ways; jittered when ``rng`` is given,
    ``copies[source]`` times for a film of that source (default once)."""
    images, labels = [], []
    for row, film in films:
        for label in (0, 1) * (copies or {}).get(row["source"], 1):
            image = jitter(film, rng, mirror=False) if rng is not None else film
            images.append(mirrored(image) if label else image)
            labels.append(label)
    return feature_rows(images), np.array(labels)


def confident(p: np.ndarray, threshold: float) -> np.ndarray:
    return (p >= threshold) | (p <= 1.0 - threshold)


def measure(p: np.ndarray, y: np.ndarray, threshold: float) -> dict:
    """Coverage (share told) and errors among the films told, at ``threshold``."""
    told = confident(p, threshold)
    wrong = told & ((p >= 0.5) != (y == 1))
    return {"films": int(y.size), "told": int(told.sum()), "coverage": float(told.mean()),
            "wrong": int(wrong.sum()), "error_among_told": float(wrong.sum() / max(told.sum(), 1)),
            "accuracy_at_0.5": float(((p >= 0.5) == (y == 1)).mean())}


def choose_threshold(p: np.ndarray, y: np.ndarray, max_error: float) -> float:
    """The smallest threshold whose error among the films told is at most ``max_error``; ``ValueError``
    when even the largest one errs more (no head is written then)."""
    for threshold in THRESHOLDS:
        if measure(p, y, float(threshold))["error_among_told"] <= max_error:
            return float(threshold)
    raise ValueError(f"no confidence threshold up to {THRESHOLDS[-1]} keeps the validation error among the films "
                     f"told at most {max_error}")


def turned_cases(films) -> list[tuple[str, str, np.ndarray, str]]:
    """(film, the correction expected, stored film, source): each film turned 90°/180°/270° and each also
    flipped (mirrored left-right, then turned: its correction turns back and mirrors); and each as a
    negative, and as a mirrored negative."""
    cases = []
    for row, film in films:
        for name in (*ROTATIONS, INVERTED):
            cases.append((row["path"], name, as_check_class(film, name), row["source"]))
            cases.append((row["path"], f"{name};{MIRRORED}", as_check_class(mirrored(film), name), row["source"]))
    return cases


def outcome(expected: str, check) -> str:
    """``right``; ``wrong`` (a correction that leaves the film turned, inverted or mirrored, or mirrors it);
    ``left-mirrored`` (a mirrored negative shown as a positive, still mirrored as stored); ``withheld`` (found
    turned, mirroring not told); ``missed`` (not found as the fault it has)."""
    got = check.correction
    if got == expected:
        return "right"
    if got and MIRRORED in expected and got == expected.replace(f";{MIRRORED}", "") and not check.turned:
        return "left-mirrored"
    if got:
        return "wrong"
    return "withheld" if check.withheld else "missed"


OUTCOMES = ("right", "wrong", "left-mirrored", "withheld", "missed")


def correction_outcomes(checker: ImageChecker, cases) -> dict:
    """Counts of each :func:`outcome` per expected correction, per source (its films' turned and flipped
    cases), over the turned and flipped cases and in all, with the right, wrong and withheld shares."""
    tables: dict[str, dict[str, Counter]] = {"by_correction": {}, "by_source_turned": {}}
    total = Counter()
    for _, expected, image, source in cases:
        result = outcome(expected, checker.check(image))
        keys = [("by_correction", expected)] + [("by_source_turned", source)] * (expected.split(";")[0] in ROTATIONS)
        for table, key in keys:
            tables[table].setdefault(key, Counter()).update({"n": 1, result: 1})
        total.update({"n": 1, result: 1})

    def shares(counts: Counter) -> dict:
        row = {key: counts[key] for key in ("n", *OUTCOMES)}
        row.update(right_share=counts["right"] / counts["n"], wrong_share=counts["wrong"] / counts["n"],
                   withheld_share=counts["withheld"] / counts["n"])
        return row

    out = {name: {key: shares(counts) for key, counts in sorted(table.items())} for name, table in tables.items()}
    out["all"] = shares(total)
    turned = Counter()
    for key, counts in tables["by_correction"].items():
        if key.split(";")[0] in ROTATIONS:
            turned.update(counts)
    out["all_turned"] = shares(turned)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--manifest", type=Path, default=Path("training/work/curated_sqrt/split_manifest.csv"))
    parser.add_argument("--out", type=Path, default=Path("resources/models/image-laterality.json"))
    parser.add_argument("--report", type=Path, default=Path("training/reports/image_laterality"))
    parser.add_argument("--hidden", type=int, default=64, help="hidden units (default 64)")
    parser.add_argument("--alpha", type=float, default=1e-2, help="L2 penalty of the MLP (default 0.01)")
    parser.add_argument("--max-error", type=float, default=0.005,
                        help="largest error among the validation films the head is confident about (default 0.005)")
    parser.add_argument("--near-copies", type=int, default=1,
                        help="jittered copies of each NIH and RSNA training film (the adults of the newer sources; "
                             "default 1)")
    parser.add_argument("--limit", type=int, help="films per split (a quick trial)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    args.report.mkdir(parents=True, exist_ok=True)
    with script_logging(args.report / "laterality.log"):
        return _run(args, list(sys.argv[1:] if argv is None else argv))


def _run(args, argv) -> int:
    started = time.time()
    rng = np.random.default_rng(args.seed)
    train, val, test = (read_films(args.manifest, split, args.limit) for split in ("train", "val", "test"))
    logger.info("films: train %d, val %d, test %d", len(train), len(val), len(test))
    x, y = examples(train, rng, {source: args.near_copies for source in NEAR_SOURCES})
    mlp = fit_mlp(x, y, args.hidden, args.seed, args.alpha, classes=LATERALITY_CLASSES)

    weights_path = args.out.with_name(args.out.stem + ".mlp")  # not *.json: those are read as model cards
    weights_path.write_text(mlp.to_json(), encoding="utf-8")
    card = LateralityCard(name=args.out.stem, feature_version=FEATURE_VERSION, classes=list(LATERALITY_CLASSES),
                          weights_file=weights_path.name,
                          weights_sha256=hashlib.sha256(weights_path.read_bytes()).hexdigest(), threshold=1.0)
    card.path = args.out
    head = LateralityHead(card).load()
    xv, yv = examples(val, None)
    pv = head.p_mirrored(xv)
    card.threshold = choose_threshold(pv, yv, args.max_error)
    xt, yt = examples(test, None)
    pt = head.p_mirrored(xt)
    val_figures, test_figures = measure(pv, yv, card.threshold), measure(pt, yt, card.threshold)
    logger.info("threshold %.4f; validation %s; test %s", card.threshold, val_figures, test_figures)

    checker = ImageChecker(check_card(), head).load()
    outcomes = correction_outcomes(checker, turned_cases(test))
    logger.info("test films turned and flipped, corrections: %s", outcomes["all_turned"])
    logger.info("by source: %s", {k: (round(v["right_share"], 3), round(v["wrong_share"], 4), round(v["withheld_share"], 3))
                                  for k, v in outcomes["by_source_turned"].items()})
    card.training_data = {
        "films": f"{args.manifest} train split ({len(train)} films), each jittered (no mirroring) once as "
                 "it is and once mirrored left-right",
        "threshold_rule": f"the smallest confidence keeping the error among the told validation films (each "
                          f"untouched film as it is and mirrored, {len(val)} films) at most {args.max_error}",
    }
    card.validation_metrics = val_figures
    card.test_metrics = {"films_as_shown_and_mirrored": test_figures,
                         "turned_and_flipped_corrections": outcomes,
                         "image_check_card": checker.card.weights_sha256}
    card.notes = ("Tells whether an upright frontal chest film looks mirrored left-right; used only on films the "
                  "image checks find turned or inverted, once corrected, so that a film stored flipped is corrected "
                  "by a flip and not shown mirrored. Not used on films as they come: a film of a patient whose "
                  "heart is on the right (dextrocardia) looks mirrored to it. Research use only.")
    card.created_by_command = shlex.join(["python", "-m", "training.laterality", *argv])
    card.save(args.out)
    (args.report / "summary.json").write_text(json.dumps({
        "threshold": card.threshold, "validation": val_figures, "test": test_figures,
        "turned_and_flipped_corrections": outcomes}, indent=2) + "\n")
    logger.info("done in %.0f s", time.time() - started)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
