"""What a reader must know about the model beside its answer, in words, from the model card only.

The AI panel and the PDF print the same text (``ModelLimits``): the card's intended use (in
each one's intended-use notice), then the same lines (``ModelLimits.lines``): a calibration statement for the shown probability from the card's validation reliability table
("of 100 validation films given a COVID-19 probability of 90–100 %, 97 were COVID-19"), and the
known limits the card's test figures show (populations the model mostly gets wrong, what it calls
films from outside its training sources, the three classes). No figure is written here: a
retrained model's card brings its own.

The reliability table (``validation_metrics.reliability`` in the card, written by
``python -m training.reliability``) is one-vs-rest per class over equal-width probability bins:
for class c and bin b, ``count[b]`` validation films got a probability of c in the bin and
``positives[b]`` of them were labelled c. It is used only when its ``weights_sha256`` is the card's.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from ..display_text import format_percent
from .model_card import CLASS_DISPLAY_NAMES, INTENDED_USE, ModelCard

#: A population check is a known limit when the model gets at most this share of it right ...
WEAK_RATE = 0.5
#: ... and it holds at least this many test films (fewer say nothing).
MIN_FILMS = 5
#: A bin with fewer validation films than this gets "N of n", not "of 100".
MIN_BIN_FILMS = 20
#: An age group is a known limit when its test accuracy is this far below the whole test split's.
AGE_GROUP_GAP = 0.10


def _name(cls: str) -> str:
    return CLASS_DISPLAY_NAMES.get(cls, cls)


# --------------------------------------------------------------------------- the reliability table

def reliability_table(probs: np.ndarray, labels: Sequence[int], classes: Sequence[str], n_bins: int = 10) -> dict:
    """Per class, one-vs-rest counts over ``n_bins`` equal-width bins of that class's probability.

    ``probs`` float (N, K) rows summing to 1, ``labels`` int (N,) indices into ``classes``. Bin b
    holds probabilities in [b/n, (b+1)/n) (the last bin includes 1). Returns ``{"edges": [...],
    "by_class": {cls: {"count": [...], "positives": [...], "mean_probability": [...]}}}`` (lists of
    ``n_bins``; ``mean_probability`` is None for an empty bin). Raises ``ValueError`` on shapes
    that do not match.
    """
    probs = np.asarray(probs, dtype=np.float64)
    labels = np.asarray(labels, dtype=np.int64)
    if probs.ndim != 2 or probs.shape[1] != len(classes) or len(labels) != len(probs):
        raise ValueError(f"probabilities {probs.shape} and labels {labels.shape} do not fit {len(classes)} classes")
    by_class = {}
    for k, cls in enumerate(classes):
        index = np.clip(np.floor(probs[:, k] * n_bins).astype(np.int64), 0, n_bins - 1)
        count = np.bincount(index, minlength=n_bins)
        positives = np.bincount(index, weights=(labels == k).astype(np.float64), minlength=n_bins)
        total = np.bincount(index, weights=probs[:, k], minlength=n_bins)
        by_class[cls] = {"count": count.tolist(), "positives": [int(round(p)) for p in positives],
                         "mean_probability": [float(t / n) if n else None for t, n in zip(total, count)]}
    return {"edges": np.linspace(0.0, 1.0, n_bins + 1).round(6).tolist(), "by_class": by_class}


def reliability_of(card: ModelCard) -> dict | None:
    """The card's validation reliability table, or None when it has none or it was made for other weights."""
    table = (card.validation_metrics or {}).get("reliability")
    if not isinstance(table, dict) or table.get("weights_sha256") != card.weights_sha256:
        return None
    return table


@dataclass(frozen=True)
class Calibration:
    """Validation films whose probability of ``cls`` fell in [``low``, ``high``): ``count``, of which
    ``positives`` were labelled ``cls``."""

    cls: str
    low: float
    high: float
    count: int
    positives: int


def calibration_for(card: ModelCard, cls: str, probability: float) -> Calibration | None:
    """The validation bin of ``probability`` for ``cls``; None without a usable table or class."""
    table = reliability_of(card)
    if table is None or cls not in table.get("by_class", {}):
        return None
    edges = table["edges"]
    n_bins = len(edges) - 1
    b = min(max(int(np.floor(float(probability) * n_bins)), 0), n_bins - 1)
    row = table["by_class"][cls]
    return Calibration(cls, edges[b], edges[b + 1], int(row["count"][b]), int(row["positives"][b]))


def calibration_line(card: ModelCard, cls: str, probability: float) -> str:
    """One sentence on what ``probability`` of ``cls`` has meant in validation."""
    found = calibration_for(card, cls, probability)
    if found is None:
        return (f"Calibration: the model card holds no validation reliability figures for these weights, so "
                f"what {format_percent(probability, 0)} means in practice is not known.")
    band = f"{found.low * 100:.0f}–{found.high * 100:.0f} %"
    table = reliability_of(card)
    split = table.get("split", "val")
    where = f"{'validation' if split == 'val' else split} split"
    if found.count == 0:
        return f"Calibration: no film of the {where} got a {_name(cls)} probability of {band}."
    if found.count < MIN_BIN_FILMS:
        return (f"Calibration: of the {found.count} films of the {where} given a {_name(cls)} probability of "
                f"{band}, {found.positives} were {_name(cls)} (too few for a rate).")
    per_100 = round(100 * found.positives / found.count)
    return (f"Calibration: of 100 films of the {where} given a {_name(cls)} probability of {band}, "
            f"{per_100} were {_name(cls)} ({found.positives} of {found.count}).")


# --------------------------------------------------------------------------- known limits

def known_limits(card: ModelCard) -> list[str]:
    """The card's weak spots with their figures (test split unless said otherwise), most telling first."""
    metrics = card.test_metrics or {}
    lines = [" ".join(filter(None, [_three_classes(card, metrics.get("external_files")),
                                    _other_findings(metrics.get("other_findings"))])),
             _unseen_source(metrics.get("leave_one_source_out"))]
    lines += _weak_populations(metrics.get("shortcut_checks"))
    lines += _weak_age_groups(metrics)
    return [line for line in lines if line]


def _three_classes(card: ModelCard, external) -> str:
    names = ", ".join(card.display_classes())
    line = f"Only {len(card.classes)} classes ({names}): every film gets one of them, also films with other findings or none."
    predicted = _unlabelled_calls(external)
    if predicted:
        line += (f" Of {sum(predicted.values())} real films from outside its training sources (diagnoses unknown) it "
                 f"called {_calls(predicted)}.")
    return line


def _other_findings(section) -> str:
    """What the model calls films read as abnormal without pneumonia-like opacity (``other_findings``:
    ``n`` and ``predicted``), or ``""`` when the card has no such figures."""
    counts = _counts(section.get("predicted") if isinstance(section, dict) else None)
    if not sum(counts.values()):
        return ""
    return f"Of {sum(counts.values())} films with other findings (no pneumonia-like opacity) it called {_calls(counts)}."


def _normal_is_not_a_normal_chest(card: ModelCard) -> str:
    """Said beside a Normal call (a reading radiologist's finding: "Normal 97 %" on a film read as abnormal,
    while the limit that explains it came last): how many films with other findings the model called Normal;
    ``""`` when the card has no such figures."""
    section = (card.test_metrics or {}).get("other_findings")
    counts = _counts(section.get("predicted") if isinstance(section, dict) else None)
    total, normal = sum(counts.values()), counts.get("normal", 0)
    if not total:
        return ""
    return (f"Normal here means neither pneumonia nor COVID-19, not a normal chest: of {total} films with other "
            f"findings it called {normal} Normal.")


def _unseen_source(section) -> str:
    """COVID-19 found at a source the model's recipe never saw (``leave_one_source_out``: ``accuracy``,
    ``n``, ``held_out_source`` and, for an averaged model, ``with_offsets_replayed``), or ``""``."""
    if not isinstance(section, dict):
        return ""
    try:
        accuracy, n = float(section["accuracy"]), int(section["n"])
    except (KeyError, TypeError, ValueError):
        return ""
    line = (f"At a COVID-19 source its recipe never saw ({section.get('held_out_source', '?')}, {n} films) it "
            f"found COVID-19 in {format_percent(accuracy, 0)}")
    replayed = section.get("with_offsets_replayed")
    if isinstance(replayed, dict) and isinstance(replayed.get("accuracy"), (int, float)):
        line += f" ({format_percent(float(replayed['accuracy']), 0)} with its operating point replayed)"
    return line + "."


def _unlabelled_calls(external) -> dict[str, int]:
    """The calls on the card's external folders whose diagnoses are unknown (``test_metrics.external_files``:
    one folder's dict, or a list of them; a folder with labels, ``by_label``, is left out), summed per class."""
    folders = external if isinstance(external, list) else [external]
    total: dict[str, int] = {}
    for folder in folders:
        unlabelled = isinstance(folder, dict) and not folder.get("by_label")
        for cls, count in _counts(folder.get("predicted") if unlabelled else None).items():
            total[cls] = total.get(cls, 0) + count
    return total if sum(total.values()) else {}


def _counts(predicted) -> dict[str, int]:
    """A card's {class: count} of calls with integer counts (a count that is not a number is left out)."""
    counts = {}
    for cls, count in (predicted.items() if isinstance(predicted, dict) else ()):
        try:
            counts[cls] = int(count)
        except (TypeError, ValueError):
            continue
    return counts


def _calls(counts: dict[str, int]) -> str:
    """The calls as text, e.g. "5 Normal, 1 Pneumonia, 2 COVID-19"."""
    return ", ".join(f"{count} {_name(cls)}" for cls, count in counts.items())


def _weak_populations(checks) -> list[str]:
    if not isinstance(checks, list):
        return []
    lines, seen = [], set()
    for check in checks:
        try:
            n, hits, target, want = int(check["n"]), int(check["hits"]), check["target"], check.get("want", "high")
        except (KeyError, TypeError, ValueError):
            continue
        if want != "high" or n < MIN_FILMS or hits / n > WEAK_RATE:
            continue
        key = (target, n, hits, tuple(sorted((check.get("predicted") or {}).items())))
        if key in seen:  # the same films under another name (e.g. by source)
            continue
        seen.add(key)
        others = {c: v for c, v in (check.get("predicted") or {}).items() if c != target and v}
        instead = "; ".join(f"{v} called {_name(c)}" for c, v in sorted(others.items(), key=lambda kv: -kv[1]))
        label = str(check.get("check", target)).replace(" covid", " COVID-19")
        lines.append(f"{label[:1].upper()}{label[1:]}: {hits} of {n} test films ({format_percent(hits / n, 0)})"
                     + (f"; {instead}." if instead else "."))
    return lines


def _weak_age_groups(metrics: dict) -> list[str]:
    overall, groups = metrics.get("accuracy"), metrics.get("by_age_group")
    if not isinstance(overall, (int, float)) or not isinstance(groups, dict):
        return []
    lines = []
    for group, figures in groups.items():
        if not isinstance(figures, dict):
            continue
        n, accuracy = figures.get("n"), figures.get("accuracy")
        if isinstance(n, int) and n >= MIN_FILMS and isinstance(accuracy, (int, float)) \
                and accuracy <= overall - AGE_GROUP_GAP:
            lines.append(f"Films of the age group \"{group}\": accuracy {format_percent(accuracy, 0)} on {n} test films "
                         f"(whole test split {format_percent(overall, 0)}).")
    return lines


# --------------------------------------------------------------------------- the text

@dataclass(frozen=True)
class ModelLimits:
    """The three parts of the statement. The intended use goes in the panel's and the PDF's notice;
    ``lines()`` (calibration, then the known limits) is the text both print under it."""

    intended_use: str
    calibration: str
    limits: tuple[str, ...]

    def lines(self) -> list[str]:
        return [*([self.calibration] if self.calibration else []), *[f"Known limit: {line}" for line in self.limits]]

    def text(self) -> str:
        return "\n".join(self.lines())


def model_limits(card: ModelCard, prediction=None) -> ModelLimits:
    """The statement for ``card`` and, when given, the ``predictions.Prediction`` on screen (its top
    class's calibration); without a prediction there is no calibration line."""
    calibration = ""
    if prediction is not None:
        calibration = calibration_line(card, prediction.label, prediction.probabilities[prediction.index])
        if prediction.label == "normal":
            calibration = " ".join(filter(None, [calibration, _normal_is_not_a_normal_chest(card)]))
    return ModelLimits(card.intended_use or INTENDED_USE, calibration, tuple(known_limits(card)))
