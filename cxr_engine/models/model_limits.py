"""What a reader must know about the model beside its answer, in words, from the model card only.

The AI panel and the PDF print the same text (``ModelLimits``): the card's intended use (in
each one's intended-use notice), then the same lines (``ModelLimits.lines``): a calibration statement for the
shown probability from the card's validation reliability table, for the patient's age group ("of the validation
films given a Pneumonia probability of 90–100 %, 18 of 23 adults' films (78 %) were Pneumonia"; none for a film
out of scope), and the known limits the card's test figures show (the three classes and what it calls films
with other findings, by view; radiologist-read external films; a COVID-19 source it never saw; populations
and age groups it mostly gets wrong; where its heat-maps lie). No figure is written here: a
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

from ..display_text import format_percent, sentence_case
from .model_card import CLASS_DISPLAY_NAMES, INTENDED_USE, ModelCard
from .image_checks import banner_is_firm, reason_list
from .scope_heads import CHILD as HEAD_CHILD
from .suitability import is_training_age

#: A population check is a known limit when the model gets at most this share of it right ...
WEAK_RATE = 0.5
#: ... and it holds at least this many test films (fewer say nothing).
MIN_FILMS = 5
#: A bin with fewer validation films than this gets "N of n (too few for a rate)", no percentage.
MIN_BIN_FILMS = 20
#: An age group is a known limit when its test accuracy is this far below the whole test split's ...
AGE_GROUP_GAP = 0.10
#: ... on at least this many test films (an accuracy of 7 films, the "likely adult" group's, says little and took
#: a line of a crowded PDF page).
MIN_AGE_GROUP_FILMS = 30


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


#: The test split's age groups as the limits and the PDF name them (its "adult" group: films whose age is
#: recorded; the presumed adults of the Kermany-like sources are counted in "all" only).
AGE_GROUP_NAMES = {"adult": "adults with a recorded age", "pediatric": "children"}
#: The age groups of a card's reliability table (``by_age_group``): (plural, singular) as the calibration line names them.
AGE_GROUP_WORDS = {"adult": ("adults' films", "adult's film"), "pediatric": ("children's films", "child's film")}


def calibration_for(card: ModelCard, cls: str, probability: float, age_group: str = "") -> Calibration | None:
    """The validation bin of ``probability`` for ``cls``, among the films of ``age_group`` (``adult`` or
    ``pediatric``: the table's ``by_age_group``) or all films (``""``); None without a usable table or class."""
    table = reliability_of(card)
    if table is None:
        return None
    by_class = table.get("by_class", {}) if not age_group else (table.get("by_age_group") or {}).get(
        age_group, {}).get("by_class", {})
    if cls not in by_class:
        return None
    edges = table["edges"]
    n_bins = len(edges) - 1
    b = min(max(int(np.floor(float(probability) * n_bins)), 0), n_bins - 1)
    row = by_class[cls]
    return Calibration(cls, edges[b], edges[b + 1], int(row["count"][b]), int(row["positives"][b]))


def _were(count: int) -> str:
    return "was" if count == 1 else "were"


def _group_clause(group: str, found: Calibration) -> str:
    """``18 of 23 adults' films (78 %) were Pneumonia``, ``1 of 6 adults' films was Pneumonia (too few for a
    rate)``, or ``no child's film got one``."""
    plural, singular = AGE_GROUP_WORDS[group]
    if found.count == 0:
        return f"no {singular} got one"
    were = f"{_were(found.positives)} {_name(found.cls)}"
    if found.count < MIN_BIN_FILMS:
        return f"{found.positives} of {found.count} {plural} {were} (too few for a rate)"
    return f"{found.positives} of {found.count} {plural} ({format_percent(found.positives / found.count, 0)}) {were}"


def calibration_line(card: ModelCard, cls: str, probability: float, age_group: str = "") -> str:
    """One sentence on what ``probability`` of ``cls`` has meant in validation: for the patient's ``age_group``
    (``adult``, ``pediatric``) when the card's table has it; for an unknown age (``""``) the children's and the
    adults' figures side by side when it has both (the pooled bins are mostly children's pneumonia), else all
    films'. Counts first ("18 of 23 … (78 %)"): a rate of 23 films is a wide one."""
    found = calibration_for(card, cls, probability)
    if found is None:
        return (f"Calibration: the model card holds no validation reliability figures for these weights, so "
                f"what {format_percent(probability, 0)} means in practice is not known.")
    band = f"{found.low * 100:.0f}–{found.high * 100:.0f} %"
    split = reliability_of(card).get("split", "val")
    films = "validation films" if split == "val" else f"films of the {split} split"
    groups = [age_group] if age_group in AGE_GROUP_WORDS else list(AGE_GROUP_WORDS)
    by_group = {g: calibration_for(card, cls, probability, g) for g in groups}
    if all(by_group.values()):
        clauses = "; ".join(_group_clause(g, f) for g, f in by_group.items())
        unknown = "" if age_group in AGE_GROUP_WORDS else " (the patient's age is not known)"
        return f"Calibration: of the {films} given a {_name(cls)} probability of {band}, {clauses}{unknown}."
    if found.count == 0:
        return f"Calibration: none of the {films} got a {_name(cls)} probability of {band}."
    were = f"{_were(found.positives)} {_name(cls)}"
    if found.count < MIN_BIN_FILMS:
        return (f"Calibration: of the {found.count} {films} given a {_name(cls)} probability of {band}, "
                f"{found.positives} {were} (too few for a rate).")
    return (f"Calibration: of the {found.count} {films} given a {_name(cls)} probability of {band}, "
            f"{found.positives} ({format_percent(found.positives / found.count, 0)}) {were}.")


def children_source_note(card: ModelCard, split: str = "") -> str:
    """Said beside the children's calibration figure of a child's film (a tester's finding: a child's chest without
    an age read "96 % were Normal", a figure nearly all from one source): how many of the reliability table's
    children's films come from its largest children-only source (``training_data.sources``: a source whose
    ``age_groups`` are all ``pediatric``, counted in the table's split), when that is most of them; else ``""``.
    ``split="test"``: of the test split's children (``test_metrics["by_age_group"]["pediatric"]``), whose
    sensitivities :func:`metric_lines` gives."""
    if split == "test":
        children = ((card.test_metrics or {}).get("by_age_group") or {}).get("pediatric") or {}
    else:
        table = reliability_of(card)
        children = ((table or {}).get("by_age_group") or {}).get("pediatric") or {}
        split = (table or {}).get("split", "val")
    total = children.get("n") if isinstance(children, dict) else None
    counts = {}
    for name, source in ((card.training_data or {}).get("sources") or {}).items():
        if isinstance(source, dict) and set(source.get("age_groups") or ()) == {"pediatric"}:
            films = (source.get("images") or {}).get(split) or {}
            counts[name] = sum(n for n in films.values() if isinstance(n, int))
    if not isinstance(total, int) or not counts:
        return ""
    name, n = max(counts.items(), key=lambda kv: kv[1])
    if not 0 < total <= 2 * n:
        return ""
    films = {"val": "validation films", "test": "test films"}.get(split, f"films of the {split} split")
    return (f"Of the {total:,} children's {films}, {n:,} are from one source ({name}): the children's figures may not "
            f"hold for a child filmed elsewhere.")


# --------------------------------------------------------------------------- test figures

#: A class's sensitivity from fewer test films than this is given as counts ("COVID-19 0 of 2"), not a rate.
MIN_RATE_FILMS = 20


def metric_lines(metrics: dict, age_group: str = "", called: str | None = None,
                 card: ModelCard | None = None, age_years: float | None = None, out_of_scope: str = "") -> list[str]:
    """The card's test-set figures (``test_metrics``) in words, for the PDF's model column and the app's panel: the
    patient's age group's (``age_group``: ``adult``, ``pediatric`` or ``""`` when not known) first when the card has it (a reading
    radiologist's finding: the whole test set's 94.6 % led on an adult's page whose age group scored 82 %), and
    for an adult how often a call of the class ``called`` (the film's top class; ``""``: no call, no such line) was
    right in that group: a Pneumonia call's when ``called`` is not given (a tester read "a Pneumonia call was right
    32 of 43 times" under a COVID-19 call). With the ``card`` (``metrics`` its ``test_metrics``), the children's
    sensitivities say how many of the test split's children come from one source (:func:`children_source_note`).
    ``age_years`` (the header's age, ``suitability.patient_age_years``) outside the training ages (a 6- to
    17-year-old, an infant) gets neither group's sensitivities, which speak for neither, but a line saying the test
    split has no figures for that age (a tester's finding: a 6-year-old was given both groups'). A film flagged
    ``out_of_scope`` (its reasons) by the firm banner (``image_checks.banner_is_firm``: its probabilities are not
    reliable) gets no "call was right n of m" line, which would vouch for its call, but :data:`OUT_OF_SCOPE_CALLS`
    (a tester's finding: "a COVID-19 call was right 34 of 37 times" under "Not reliable: COVID-19 93.7 %"); the
    test set's figures, which describe the model, stay. Empty when the card has none."""
    lines = []
    group = (metrics.get("by_age_group") or {}).get(age_group) if age_group else None
    parts = []
    if isinstance(group, dict) and isinstance(group.get("accuracy"), (int, float)) and isinstance(group.get("n"), int):
        parts.append(f"{AGE_GROUP_NAMES.get(age_group, age_group)} {format_percent(group['accuracy'])} (n = {group['n']:,})")
    grouped = bool(parts)
    if grouped:  # the patient's group first; the whole test split's in the same line (the column is narrow)
        if isinstance(metrics.get("accuracy"), (int, float)):
            total = f" (n = {metrics['n']:,})" if isinstance(metrics.get("n"), int) else ""
            parts.append(f"all {format_percent(metrics['accuracy'])}{total}")
    else:
        if isinstance(metrics.get("accuracy"), (int, float)):
            parts.append(f"accuracy {format_percent(metrics['accuracy'])}")
        if isinstance(metrics.get("macro_f1"), (int, float)):
            parts.append(f"macro-F1 {metrics['macro_f1']:.3f}")
        if isinstance(metrics.get("n"), int):
            parts.append(f"n = {metrics['n']:,}")
    if parts:
        lines.append(("Test accuracy: " if grouped else "Test set: ") + ", ".join(parts) + ".")
    # The patient's group's sensitivities when the card has them (an adult's page showed the pooled 91 % for
    # COVID-19, where adults' was 74 %); a class with few of the group's films as counts ("COVID-19 0 of 2"
    # read as "never finds COVID-19 in children").
    source = group if grouped and isinstance(group.get("recall"), dict) else metrics
    whose = f" ({AGE_GROUP_NAMES.get(age_group, age_group)})" if source is group else ""
    by_group = metrics.get("by_age_group") or {}
    both = [name for name in ("adult", "pediatric") if isinstance(by_group.get(name), dict)
            and isinstance(by_group[name].get("recall"), dict) and by_group[name]["recall"]]
    if not age_group and age_years is not None and not is_training_age(age_years):
        lines.append(untrained_age_line(age_years))
    elif not age_group and len(both) == 2:
        # Age not known: each group's sensitivities, not the pooled ones, which are mostly children's (a tester's
        # finding: a JPEG of an adult read Pneumonia 94 % beside the adults' 78 %).
        lines += [_children_source(_sensitivity_line(by_group[name], f" ({AGE_GROUP_NAMES.get(name, name)})"), name,
                                   card) for name in both]
    elif (line := _sensitivity_line(source, whose)):
        lines.append(_children_source(line, age_group if source is group else "", card))
    cls = "pneumonia" if called is None else called
    right = _calls_right(group, cls) if cls and age_group == "adult" and source is group else None
    if right is not None and out_of_scope and banner_is_firm(out_of_scope):
        lines.append(OUT_OF_SCOPE_CALLS)
    elif right is not None:
        lines.append(f"In {AGE_GROUP_NAMES.get(age_group, age_group)}, a {_name(cls)} call was right {right[0]} of "
                     f"{right[1]} times.")
    return lines


#: In place of the "call was right n of m" line for a film outside what the model was trained for (the firm banner).
OUT_OF_SCOPE_CALLS = ("How often the top class was right: not stated for this film: it is outside what the model was "
                      "trained for, and the test figures come only from films within its scope.")


def untrained_age_line(years: float) -> str:
    """The Model box's line for a patient whose age (``years``) the model was not trained on: no test figures."""
    age = f"{int(years)} year{'s' if int(years) != 1 else ''}" if years >= 1 else "under 1 year"
    return (f"No test figures for a patient of {age}: the test split's children are 1–5 years old, its adults 18 "
            f"and older.")


def _children_source(line: str, group: str, card: ModelCard | None) -> str:
    """A sensitivity ``line`` of the age ``group``; the children's with, beside it, how many of the test split's
    children come from one source (:func:`children_source_note`), when the ``card`` is given."""
    if group != "pediatric" or card is None or not line:
        return line
    return " ".join(filter(None, [line, children_source_note(card, "test")]))


def _sensitivity_line(figures: dict, whose: str) -> str:
    """``Sensitivity{whose}: Normal 93.6 % · …`` from a figures dict's ``recall`` (counts for a class with few
    films); ``""`` when it has none."""
    recall, films = figures.get("recall"), _films_per_class(figures)
    if not isinstance(recall, dict) or not recall:
        return ""
    per_class = " · ".join(_sensitivity_text(k, v, films.get(k)) for k, v in recall.items()
                           if isinstance(v, (int, float)))
    return f"Sensitivity{whose}: {per_class}."


def _calls_right(figures: dict, cls: str) -> tuple[int, int] | None:
    """(right, made) of the calls of ``cls`` in a figures dict's ``confusion`` (rows: true class, columns: the call,
    in the order of its ``recall``), or None. From the same films as the sensitivities beside it: the adults' line
    once counted calls over every adult source, presumed adults included (32 of 59), under a heading of 134 adults
    with a recorded age, among whom it was 32 of 43."""
    if cls not in _films_per_class(figures):  # no square matrix of counts: the line is left out
        return None
    confusion = figures["confusion"]
    index = list(figures["recall"]).index(cls)
    made = sum(row[index] for row in confusion)
    return (confusion[index][index], made) if made else None


def _films_per_class(figures: dict) -> dict:
    """Test films per true class from a figures dict's ``confusion`` (rows: true class, in the card's order,
    which its ``recall`` keeps), or {} when the two do not match."""
    confusion, recall = figures.get("confusion"), figures.get("recall")
    if not isinstance(confusion, list) or not isinstance(recall, dict) or len(confusion) != len(recall):
        return {}
    if not all(isinstance(row, list) and len(row) == len(confusion)
               and all(isinstance(n, int) and not isinstance(n, bool) for n in row) for row in confusion):
        return {}  # not a square matrix of counts: a damaged card leaves the counts out, the page is still made
    return {cls: sum(row) for cls, row in zip(recall, confusion)}


def _sensitivity_text(cls: str, recall: float, films: int | None) -> str:
    if films is not None and films < MIN_RATE_FILMS:
        return f"{CLASS_DISPLAY_NAMES.get(cls, cls)} {round(recall * films)} of {films}"
    return f"{CLASS_DISPLAY_NAMES.get(cls, cls)} {format_percent(recall)}"


# --------------------------------------------------------------------------- known limits

def known_limits(card: ModelCard) -> list[str]:
    """The card's weak spots with their figures (test split unless said otherwise), most telling first."""
    metrics = card.test_metrics or {}
    lines = [" ".join(filter(None, [_three_classes(card, metrics.get("external_files")),
                                    _other_findings(metrics.get("other_findings"))])),
             _unseen_source(metrics.get("leave_one_source_out"))]
    lines += _weak_populations(metrics.get("shortcut_checks"))
    lines += _weak_age_groups(metrics)
    lines.append(_heatmap_in_lungs(metrics.get("heatmap_in_lungs")))
    return [line for line in lines if line]


def _heatmap_in_lungs(section) -> str:
    """How much of a heat-map lies in the film's lung fields (``heatmap_in_lungs``: ``all.median``, ``n`` and
    ``mean_lung_area_share``), or ``""``: a reading radiologist saw a map centred on the heart beside "Pneumonia
    99 %" and took it for where the opacity was."""
    try:
        median, n = float(section["all"]["median"]), int(section["all"]["n"])
        area = float(section["mean_lung_area_share"])
    except (KeyError, TypeError, ValueError):
        return ""
    return (f"Heat-maps: a median {format_percent(median, 0)} of a map's weight lies in the lung fields, which cover "
            f"{format_percent(area, 0)} of the film ({n} test films); the rest lies outside them. A map shows where "
            f"the score rose, not where an opacity is.")


def _three_classes(card: ModelCard, external) -> str:
    names = ", ".join(card.display_classes())
    line = f"Only {len(card.classes)} classes ({names}): every film gets one of them, also films with other findings or none."
    # Only films whose diagnoses are known: the calls on test-suite files of unknown diagnosis (some from the
    # training sources, one film stored twice, another as its negative) could not be judged by a reader.
    labelled = _labelled_calls(external)
    return f"{line} {labelled}" if labelled else line


def _labelled_calls(external) -> str:
    """What the model called the card's external films with radiologists' labels (``by_label``: per label
    ``n``, ``predicted`` and ``correct``, None for a label outside the classes), or ``""``."""
    folders = external if isinstance(external, list) else [external]
    labels: dict[str, dict] = {}
    for folder in folders:
        for label, figures in ((folder.get("by_label") or {}) if isinstance(folder, dict) else {}).items():
            if isinstance(figures, dict) and isinstance(figures.get("n"), int):
                labels[label] = figures
    right = [f"{f['correct']} of {f['n']} {_name(label)}" for label, f in labels.items()
             if isinstance(f.get("correct"), int)]
    other = [(f["n"], _calls(_counts(f.get("predicted")))) for f in labels.values()
             if f.get("correct") is None and _counts(f.get("predicted"))]
    total = sum(f["n"] for f in labels.values())
    if right:
        return (f"Of {total} real DICOM films read by radiologists it was right on {' and '.join(right)} films"
                + "".join(f"; of {n} with other findings it called {calls}" for n, calls in other) + ".")
    if other:
        return (f"Of {total} real DICOM films radiologists read as showing other findings it called "
                + "; ".join(calls for _, calls in other) + ".")
    return ""


def _other_findings(section) -> str:
    """What the model calls films read as abnormal without pneumonia-like opacity (``other_findings``:
    ``n`` and ``predicted``), or ``""`` when the card has no such figures."""
    counts = _counts(section.get("predicted") if isinstance(section, dict) else None)
    if not sum(counts.values()):
        return ""
    line = f"Of {sum(counts.values())} films with other findings (no pneumonia-like opacity) it called {_calls(counts)}"
    by_view = section.get("by_view") if isinstance(section.get("by_view"), dict) else {}
    ap, pa = (_counts(by_view.get(view)) for view in ("AP", "PA"))
    if sum(ap.values()) and sum(pa.values()):  # a reading radiologist saw portable AP films called pneumonia
        line += (f": Pneumonia for {ap.get('pneumonia', 0)} of {sum(ap.values())} AP films (often portable films "
                 f"of sicker patients, with lines and tubes) against {pa.get('pneumonia', 0)} of {sum(pa.values())} PA")
    return line + "."


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
    line = (f"A copy trained the same way without the {section.get('held_out_source', '?')} source found COVID-19 in "
            f"{format_percent(accuracy, 0)} of that source's {n} COVID-19 films")
    replayed = section.get("with_offsets_replayed")
    if isinstance(replayed, dict) and isinstance(replayed.get("accuracy"), (int, float)):
        line += f" ({format_percent(float(replayed['accuracy']), 0)} with its operating point replayed)"
    return line + "."


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
        lines.append(f"{sentence_case(label)}: {hits} of {n} test films ({format_percent(hits / n, 0)})"
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
        if isinstance(n, int) and n >= MIN_AGE_GROUP_FILMS and isinstance(accuracy, (int, float)) \
                and accuracy <= overall - AGE_GROUP_GAP:
            who = AGE_GROUP_NAMES[group].capitalize() if group in AGE_GROUP_NAMES else f"Films of the age group \"{group}\""
            lines.append(f"{who}: accuracy {format_percent(accuracy, 0)} on {n} test films "
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


#: The calibration line for a film the checks put out of scope: its validation bins say nothing about it.
OUT_OF_SCOPE_CALIBRATION = ("Calibration: not stated for this film: it is outside what the model was trained for, "
                            "and the validation figures come only from films within its scope.")


def model_limits(card: ModelCard, prediction=None, age_group: str = "", out_of_scope: str = "") -> ModelLimits:
    """The statement for ``card`` and, when given, the ``predictions.Prediction`` on screen (its top
    class's calibration, for the patient's ``age_group``: ``adult``, ``pediatric`` or ``""`` when not known);
    without a prediction there is no calibration line, and for a film flagged ``out_of_scope`` (the reasons) by
    the firm banner (``image_checks.banner_is_firm``) it says why none is given."""
    calibration = ""
    # a film that may well be in scope (the model unsure, a child's chest without an age: the milder banner)
    # keeps its figure
    if prediction is not None and out_of_scope and banner_is_firm(out_of_scope):
        calibration = OUT_OF_SCOPE_CALIBRATION
    elif prediction is not None:
        calibration = calibration_line(card, prediction.label, prediction.probabilities[prediction.index], age_group)
        # a child's film (by its age, or the child's-chest check without one): its figure is the children's
        if age_group == "pediatric" or (not age_group and HEAD_CHILD in reason_list(out_of_scope)):
            calibration = " ".join(filter(None, [calibration, children_source_note(card)]))
        if prediction.label == "normal":
            calibration = " ".join(filter(None, [calibration, _normal_is_not_a_normal_chest(card)]))
    return ModelLimits(card.intended_use or INTENDED_USE, calibration, tuple(known_limits(card)))
