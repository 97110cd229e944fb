"""The test populations a reading room meets, each as its own line of the report and the bar.

The overall test accuracy hides the films this project was weakest on: adults with pneumonia
(93% of cxr3's pneumonia films are children, so "pneumonia" could mean "a child"), normal adults
called COVID-19, and normal children called pneumonia. ``rsna_pneumonia`` is the one source of
radiologist-read adult pneumonia, with its own normals from the same hospital, so its recall and
precision say whether the model finds pneumonia in an adult rather than recognising a source.
Films with other findings (``cxr_other``) have no right answer among the three classes: their
calls are reported, never scored.
"""
from __future__ import annotations

import csv
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from cxr_engine.models.model_card import CLASSES

from . import metrics as M
from .curate import coarse_age
from .report_sections import section_lines

ADULT_PNEUMONIA_SOURCE = "rsna_pneumonia"

#: Issue 12's acceptance figures: the least recall/precision, the most false-call rates.
POPULATION_BAR = {"adult_pneumonia_recall": 0.80, "adult_pneumonia_precision": 0.80,
                  "adult_normal_called_covid": 0.03, "pediatric_normal_called_pneumonia": 0.10}


def is_adult(row: dict) -> bool:
    """An adult film by the curation's own age rule (``training.curate.coarse_age``)."""
    return coarse_age(row.get("age_group", "")) == "adult"


def recall_precision(rows: Sequence[dict], label: str) -> dict:
    """Recall of ``label`` among ``rows`` (each with ``label`` and ``pred``) and the precision of its calls."""
    positives = [r for r in rows if r["label"] == label]
    called = [r for r in rows if r["pred"] == label]
    hits = sum(r["label"] == label for r in called)
    return {"n": len(positives), "called": len(called), "hits": hits,
            "recall": hits / len(positives) if positives else None,
            "precision": hits / len(called) if called else None,
            "predicted": M.prediction_counts((r["pred"] for r in positives), CLASSES)}


def rate(rows: Sequence[dict], target: str) -> dict:
    hits = sum(r["pred"] == target for r in rows)
    return {"n": len(rows), "hits": hits, "rate": hits / len(rows) if rows else None,
            "predicted": M.prediction_counts((r["pred"] for r in rows), CLASSES)}


def population_section(predicted: Sequence[dict]) -> dict:
    """Rows with ``label``, ``pred``, ``source`` and ``age_group`` -> the populations' figures."""
    adults = [r for r in predicted if is_adult(r)]
    rsna = [r for r in predicted if r.get("source") == ADULT_PNEUMONIA_SOURCE and is_adult(r)]
    return {
        "adult_pneumonia_rsna": recall_precision(rsna, "pneumonia"),
        "adult_pneumonia_all_sources": recall_precision(adults, "pneumonia"),
        "adult_normal_called_covid": rate([r for r in adults if r["label"] == "normal"], "covid"),
        "adult_normal_called_covid_by_source": {
            source: rate([r for r in adults if r["label"] == "normal" and r.get("source") == source], "covid")
            for source in sorted({r.get("source", "") for r in adults if r["label"] == "normal"})},
        "pediatric_normal_called_pneumonia": rate(
            [r for r in predicted if r["label"] == "normal" and r.get("age_group") == "pediatric"], "pneumonia"),
    }


def check_populations(section: dict | None) -> list[str]:
    """A failure line for every population figure outside ``POPULATION_BAR``."""
    if not section:
        return []
    bar, failures = POPULATION_BAR, []
    rsna = section["adult_pneumonia_rsna"]
    for key in ("recall", "precision"):
        value = rsna[key]
        if value is None or value < bar[f"adult_pneumonia_{key}"]:
            failures.append(f"adult pneumonia ({ADULT_PNEUMONIA_SOURCE}) {key} "
                            f"{'n/a' if value is None else f'{value:.3f}'} < {bar[f'adult_pneumonia_{key}']:.2f}")
    for key in ("adult_normal_called_covid", "pediatric_normal_called_pneumonia"):
        value = section[key]["rate"]
        if value is not None and value > bar[key]:
            failures.append(f"{key.replace('_', ' ')} {value:.3f} > {bar[key]:.2f}")
    return failures


def population_lines(section: dict | None, table: Callable) -> list[str]:
    lines = ["## Populations a reading room meets (test)", ""]
    if not section:
        return lines + ["Not computed.", ""]
    rsna, adults = section["adult_pneumonia_rsna"], section["adult_pneumonia_all_sources"]
    body = [
        [f"adult pneumonia, {ADULT_PNEUMONIA_SOURCE} (radiologist-read)", rsna["n"], "recall / precision",
         f"{_fmt(rsna['recall'])} / {_fmt(rsna['precision'])}", _counts(rsna["predicted"])],
        ["adult pneumonia, all sources", adults["n"], "recall / precision",
         f"{_fmt(adults['recall'])} / {_fmt(adults['precision'])}", _counts(adults["predicted"])],
        ["adult normals called COVID-19", section["adult_normal_called_covid"]["n"], "rate",
         _fmt(section["adult_normal_called_covid"]["rate"]), _counts(section["adult_normal_called_covid"]["predicted"])],
    ]
    for source, row in section["adult_normal_called_covid_by_source"].items():
        body.append([f"… from {source}", row["n"], "rate", _fmt(row["rate"]), _counts(row["predicted"])])
    child = section["pediatric_normal_called_pneumonia"]
    body.append(["normal children called pneumonia", child["n"], "rate", _fmt(child["rate"]), _counts(child["predicted"])])
    lines += table(["population", "n", "measure", "value", "called n/p/c"], body)
    bar = POPULATION_BAR
    return lines + ["", f"Bar: adult pneumonia recall and precision ≥ {bar['adult_pneumonia_recall']:.2f} on "
                    f"{ADULT_PNEUMONIA_SOURCE}; adult normals called COVID-19 ≤ {bar['adult_normal_called_covid']:.2f}; "
                    f"normal children called pneumonia ≤ {bar['pediatric_normal_called_pneumonia']:.2f}.", ""]


def _fmt(value) -> str:
    return "n/a" if value is None else f"{value:.3f}"


def _counts(predicted: dict) -> str:
    return "/".join(str(predicted.get(c, 0)) for c in CLASSES)


# ----------------------------------------------------------------------------- films outside the classes

def read_other_manifest(path: Path) -> list[dict]:
    """cxr_other-style manifest rows with an absolute ``path``."""
    with open(path, newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    return [{**row, "path": str((path.parent / row["file"]).resolve())} for row in rows]


def other_section(rows: Sequence[dict], probabilities: np.ndarray) -> dict:
    """What films with other findings are called: counts per age group and per view (the manifest's ``view``:
    AP, mostly portable films of sicker patients, against PA) and the top probability's spread."""
    preds = [CLASSES[i] for i in np.argmax(probabilities, axis=1)] if len(rows) else []
    top = probabilities.max(axis=1) if len(rows) else np.zeros(0)

    def counts_by(key: str) -> dict:
        groups = {}
        for value in sorted({r.get(key, "") for r in rows}):
            idx = [i for i, r in enumerate(rows) if r.get(key, "") == value]
            groups[value] = M.prediction_counts((preds[i] for i in idx), CLASSES)
        return groups

    return {"n": len(rows), "predicted": M.prediction_counts(preds, CLASSES), "by_age_group": counts_by("age_group"),
            "by_view": counts_by("view"),
            "top_probability_quartiles": [float(q) for q in np.percentile(top, [25, 50, 75])] if len(top) else []}


def other_lines(section: dict | None, table: Callable) -> list[str]:
    def body(section: dict) -> list[str]:
        rows = [["all", section["n"], _counts(section["predicted"])]]
        rows += [[age, sum(c.values()), _counts(c)] for age, c in section["by_age_group"].items()]
        rows += [[f"view {view or '?'}", sum(c.values()), _counts(c)] for view, c in section.get("by_view", {}).items()]
        return ["Radiologists read these as abnormal without pneumonia-like opacity: none of the three answers is "
                "right. The calls show where the model puts what it does not know "
                f"({section['n']} films; top probability quartiles "
                + ", ".join(f"{q:.2f}" for q in section["top_probability_quartiles"]) + ").", ""
                ] + table(["films", "n", "called n/p/c"], rows) + [""]
    return section_lines("Films with other findings (`cxr_other`, never trained)", section,
                         "Not run (give `--other-manifest`).", body)


# ----------------------------------------------------------------------------- command line

def write_by_view(card_path: Path, section: dict) -> None:
    """Add ``section["by_view"]`` to the card's ``test_metrics.other_findings`` when ``section``'s calls equal the
    card's (``ValueError`` otherwise: other weights or other films); every other key stays as it was."""
    from .card_keys import update_card

    def edit(data: dict) -> None:
        recorded = (data.get("test_metrics") or {}).get("other_findings") or {}
        if recorded.get("predicted") != section["predicted"]:
            raise ValueError(f"{card_path}: its other_findings calls {recorded.get('predicted')} are not these "
                             f"{section['predicted']}: not written")
        recorded["by_view"] = section["by_view"]

    update_card(card_path, edit)


def other_section_of_card(card_path: Path, manifest: Path) -> dict:
    """:func:`other_section` of the films of ``manifest`` through the engine (``read_image``, the card's
    classifier on ONNX Runtime, its temperature), as the app and ``cxr-classify`` call them."""
    from cxr_engine.models.backends import create_classifier
    from cxr_engine.models.model_card import load_card
    from cxr_engine.reading.read import read_image

    classifier = create_classifier(load_card(card_path), backend="onnx", device="cpu")
    classifier.load()
    rows = read_other_manifest(manifest)
    probabilities = np.array([classifier.predict([read_image(r["path"])])[0].probabilities for r in rows])
    return other_section(rows, probabilities)


def main(argv: Sequence[str] | None = None) -> int:
    """Population figures of a bundled model on some sources of a split, without a whole evaluation.

    ``python -m training.populations --card resources/models/efficientnet-lite0.json --manifest
    training/work/curated/split_manifest.csv --sources rsna_pneumonia nih_cxr14``: each film goes
    through ``read_image`` -> ``Classifier.predict`` (the card's temperature; the call is the
    top class, which temperature does not change).
    """
    import argparse
    import json

    from cxr_engine.reading.read import read_image
    from cxr_engine.models.model_card import ModelCard

    from .evaluate import make_classifier, prediction_rows, split_rows

    parser = argparse.ArgumentParser(prog="python -m training.populations", description=main.__doc__.split("\n\n")[0])
    parser.add_argument("--card", type=Path, required=True, help="model card JSON")
    parser.add_argument("--manifest", type=Path, help="split manifest from training.curate (with --sources)")
    parser.add_argument("--split", default="test", choices=("train", "val", "test"))
    parser.add_argument("--sources", nargs="+", help="the sources whose films are classified")
    parser.add_argument("--other-manifest", type=Path,
                        help="instead: a cxr_other-style manifest, whose calls are counted by age group and view "
                             "through the engine on ONNX Runtime (any card, an averaged one too)")
    parser.add_argument("--write-card", action="store_true",
                        help="with --other-manifest: add the calls by view to the card's test_metrics.other_findings "
                             "(refused unless its calls are the card's own, i.e. the same weights and films)")
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args(argv)
    if args.write_card and not args.other_manifest:
        parser.error("--write-card goes with --other-manifest")
    if args.other_manifest:
        section = other_section_of_card(args.card, args.other_manifest)
        print(json.dumps({"card": str(args.card), "other_manifest": str(args.other_manifest),
                          "other_findings": section}, indent=1))
        if args.write_card:
            write_by_view(args.card, section)
        return 0
    if not (args.sources and args.manifest):
        parser.error("give --manifest and --sources (or --other-manifest)")
    from cxr_engine.models.weights import load_model

    card = ModelCard.load(args.card)
    classifier = make_classifier(card, args.device, model=load_model(card))
    rows = [r for r in split_rows(args.manifest, args.split, None, 0) if r.get("source") in set(args.sources)]
    logits = np.array([M.as_logits(classifier.predict([read_image(r["path"])]))[0] for r in rows])
    section = population_section(prediction_rows(rows, logits))
    print(json.dumps({"card": str(args.card), "split": args.split, "sources": args.sources, "n": len(rows),
                      "populations": section}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
