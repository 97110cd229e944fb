"""Test-time views on the validation split: does averaging a network over a few framings of each film
keep its call when the film is framed differently, and does it keep the decision (issue 12)?

Every single-network recipe tried (framing shift, consistency, distillation, the lung box) traded the
adult decision for framing invariance or the reverse, while the average of two networks kept both. A
test-time average of one network over fixed views of each film (mild crops and zoom-outs of the model
input; test-time augmentation, e.g. Krizhevsky et al. 2012, Simonyan & Zisserman 2015's multi-crop)
is the same averaging inside one network. This measures it, on validation only:

1. each validation film's unnormalised model input (cxr-pre-1 steps 1–3, as the framing test starts
   from), and for ``--limit`` of them the five framing shifts of ``training.framing_shift``;
2. every candidate view (:data:`VIEWS`) of each, contrast-stretched again and classified; logits cached
   in ``<run>/tta_logits.npz`` (so view sets are compared without running the network again);
3. for each view set: the mean of the views' log-softmax as the film's logits, offsets chosen on the whole
   validation split by ``training.operating_point.choose``, then the validation figures and the share of
   calls each framing shift changes on the ``--limit`` films (with those offsets).

Run: ``python -m training.tta_choice --run training/work/runs/shipped_efficientnet-lite0 --limit 800
--threads 2 --out training/reports/tta_choice/lite0.json``
"""
from __future__ import annotations

import argparse
import itertools
import json
import logging
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from cxr_engine.models.model_card import CLASSES
from cxr_engine.pixels.preprocessing import contrast_stretch

from .degradation import cropped, zoomed_out
from .evaluate import LogitCache, card_from_run, fingerprint, label_indices, make_classifier, run_manifest, split_rows
from .framing_shift import FRAMING_SHIFTS
from .operating_point import choose
from .processing_shift import whole_film_unnormalised_input
from .script_logging import script_logging

log = logging.getLogger("training.tta_choice")

#: Candidate views of the unnormalised model input (float32 (S, S) in [0, 1] -> same), generic framings
#: (a centred crop, a zoom-out onto black or mid-grey), none of them one of the test's framing shifts.
VIEWS: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "identity": lambda g: g,
    "crop 92": lambda g: cropped(g, 0.04, 0.96, 0.04, 0.96),
    "crop 85": lambda g: cropped(g, 0.075, 0.925, 0.075, 0.925),
    "zoom 90 black": lambda g: zoomed_out(g, 0.9, 0.9, 0.0),
    "zoom 90 grey": lambda g: zoomed_out(g, 0.9, 0.9, 0.5),
    "crop 92 low": lambda g: cropped(g, 0.08, 1.0, 0.04, 0.96),
}


def view_of(grey: np.ndarray, name: str) -> np.ndarray:
    """View ``name`` of an unnormalised model input, contrast-stretched again (the identity view as it is)."""
    return grey if name == "identity" else contrast_stretch(np.clip(VIEWS[name](grey), 0.0, 1.0))


def log_softmax(logits: np.ndarray) -> np.ndarray:
    shifted = logits - logits.max(axis=-1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))


def view_logits(run: Path, limit: int, seed: int, batch_size: int) -> tuple[list[dict], list[int], dict]:
    """(validation rows, indices of the ``limit`` framing films among them, {(variant, view): (N_variant, K)})."""
    from tqdm import tqdm

    card = card_from_run(run)
    rows = split_rows(run_manifest(run), "val", None, 0)
    subset_paths = {r["path"] for r in split_rows(run_manifest(run), "val", limit, seed)}
    framed_index = [i for i, r in enumerate(rows) if r["path"] in subset_paths]
    cache = LogitCache(run / "tta_logits.npz")
    variants = {"plain": [r["path"] for r in rows]}
    variants.update({name: [rows[i]["path"] for i in framed_index] for name in FRAMING_SHIFTS})
    keys = {(variant, view): fingerprint(card, paths, f"tta {variant} / {view}")
            for variant, paths in variants.items() for view in VIEWS}
    name_of = {k: "".join(c if c.isalnum() else "_" for c in f"{k[0]}__{k[1]}") for k in keys}
    found = {k: cache.get(name_of[k], key) for k, key in keys.items()}
    if any(v is None for v in found.values()):
        classifier = make_classifier(card, "cpu")
        framed_set = set(framed_index)
        out: dict[tuple[str, str], list[np.ndarray]] = {k: [] for k in keys}
        for start in tqdm(range(0, len(rows), batch_size), desc="tta", unit="batch", mininterval=10):
            batch = list(range(start, min(len(rows), start + batch_size)))
            grey = {i: whole_film_unnormalised_input(rows[i]["path"], card.input_size) for i in batch}
            inputs: dict[tuple[str, str], list[np.ndarray]] = {}
            for i in batch:
                bases = {"plain": grey[i]}
                if i in framed_set:
                    bases.update({n: np.clip(f(grey[i]), 0.0, 1.0) for n, (_, f) in FRAMING_SHIFTS.items()})
                for variant, base in bases.items():
                    base = contrast_stretch(base) if variant != "plain" else base
                    for view in VIEWS:
                        if found[(variant, view)] is None:
                            inputs.setdefault((variant, view), []).append(view_of(base, view))
            flat = [(k, a) for k, arrays in inputs.items() for a in arrays]
            for lo in range(0, len(flat), 64):
                chunk = flat[lo:lo + 64]
                logits, _ = classifier.logits_and_features([a for _, a in chunk])
                for (k, _), row in zip(chunk, logits):
                    out[k].append(row)
        for k, key in keys.items():
            if found[k] is None:
                found[k] = np.stack(out[k]).astype(np.float32)
                cache.put(name_of[k], key, found[k])
    return rows, framed_index, found


def figures_for(rows: list[dict], framed_index: list[int], logits: dict, views: Sequence[str]) -> dict:
    def averaged(variant: str) -> np.ndarray:
        return np.mean([log_softmax(logits[(variant, v)].astype(np.float64)) for v in views], axis=0)

    plain = averaged("plain")
    offsets, chosen, _ = choose(rows, plain)
    plain_calls = (plain + offsets).argmax(axis=1)[framed_index]
    changed = {name: float(np.mean((averaged(name) + offsets).argmax(axis=1) != plain_calls))
               for name in FRAMING_SHIFTS}
    return {"views": list(views), "offsets": offsets.tolist(), **{k: chosen[k] for k in (
        "accuracy", "f1", "adult_pneumonia_recall", "adult_pneumonia_precision", "adult_normal_called_covid",
        "pediatric_normal_called_pneumonia", "violation")}, "changed": changed, "worst": max(changed.values())}


def table(results: list[dict]) -> list[str]:
    shifts = list(FRAMING_SHIFTS)
    lines = ["| views | offsets (n / p / c) | val accuracy | F1 n / p / c | adult pneumonia recall | adult normals "
             "called COVID-19 | constraints met | " + " | ".join(shifts) + " | worst |",
             "|---" * (len(shifts) + 8) + "|"]
    for f in results:
        lines.append(f"| {' + '.join(f['views'])} | {' / '.join(f'{x:+.3f}' for x in f['offsets'])} | "
                     f"{f['accuracy']:.3f} | {' / '.join(f'{x:.3f}' for x in f['f1'])} | "
                     f"{f['adult_pneumonia_recall']:.3f} | {f['adult_normal_called_covid']:.3f} | "
                     f"{'yes' if f['violation'] == 0 else 'no'} | "
                     + " | ".join(f"{f['changed'][s]:.3f}" for s in shifts) + f" | {f['worst']:.3f} |")
    return lines


def view_sets(max_size: int) -> list[tuple[str, ...]]:
    """Every set of up to ``max_size`` views that holds the identity view."""
    others = [v for v in VIEWS if v != "identity"]
    return [("identity", *combo) for n in range(0, max_size) for combo in itertools.combinations(others, n)]


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m training.tta_choice", description=__doc__.split("\n")[0])
    parser.add_argument("--run", type=Path, required=True, help="training run folder")
    parser.add_argument("--limit", type=int, default=800, help="validation films for the framing test")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--max-views", type=int, default=4, help="largest view set compared")
    parser.add_argument("--batch-size", type=int, default=16, help="films decoded at a time")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", type=Path, help="also write every view set's figures here as JSON")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    import torch

    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    with script_logging(None):
        rows, framed_index, logits = view_logits(args.run, args.limit, args.seed, args.batch_size)
        results = [figures_for(rows, framed_index, logits, views) for views in view_sets(args.max_views)]
        results.sort(key=lambda f: (f["violation"] > 0, f["worst"]))
        print("\n".join(table(results)))
        if args.out:
            args.out.parent.mkdir(parents=True, exist_ok=True)
            args.out.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
