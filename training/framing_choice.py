"""The framing-shift test on the validation split, for choosing a recipe (never the test split).

``training.evaluate`` runs the framing-shift test (``training.framing_shift``) on the test split, for
the report. Choosing between recipes needs the same measure on validation: for each run, the share
of validation calls each framing shift changes, with the run's operating point applied (the logit
offsets ``training.operating_point`` chose, read from ``<run>_op/run.json`` when that exists: a
call, and so whether it changes, depends on them), plus plain validation accuracy and macro-F1.

Logits are cached in ``<run>/val_logits.npz`` (next to the plain validation logits
``training.operating_point`` keeps there), so a second call costs nothing.

Run: ``python -m training.framing_choice --run training/work/runs/lite0_224_sqrt_f09
--run training/work/runs/lite0_224_f09_jsd --limit 800 --threads 1``
"""
from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path
from typing import Sequence

import numpy as np

from cxr_engine.models.model_card import CLASSES

from . import metrics as M
from .evaluate import (LogitCache, card_from_run, cached_logits, fingerprint, label_indices, make_classifier,
                       predict_logits, run_manifest, split_rows)
from .framing_shift import FRAMING_SHIFTS, framed_display
from .script_logging import script_logging

log = logging.getLogger("training.framing_choice")


def operating_offsets(run: Path) -> np.ndarray:
    """The logit offsets of ``<run>_op`` (``training.operating_point``), or zeros when there is none."""
    info = run.with_name(run.name + "_op") / "run.json"
    if not info.exists():
        return np.zeros(len(CLASSES))
    offsets = json.loads(info.read_text(encoding="utf-8"))["operating_point"]["logit_offsets"]
    return np.array([offsets[c] for c in CLASSES], dtype=np.float64)


def framing_figures(labels: np.ndarray, plain: np.ndarray, framed: dict[str, np.ndarray],
                    offsets: np.ndarray) -> dict:
    """Accuracy and macro-F1 of ``plain + offsets`` (shape (N, K)), and per framing shift the share of
    calls (argmax) that differ from the plain ones."""
    plain_calls = (plain + offsets).argmax(axis=1)
    confusion = M.confusion_matrix(labels, plain_calls, len(CLASSES))
    changed = {name: float(np.mean((logits + offsets).argmax(axis=1) != plain_calls))
               for name, logits in framed.items()}
    return {"n": int(len(labels)), "accuracy": M.accuracy(labels, plain_calls), "macro_f1": M.macro_f1(confusion),
            "offsets": offsets.tolist(), "changed": changed, "worst": max(changed.values())}


def run_figures(run: Path, limit: int | None, seed: int, batch_size: int) -> dict:
    labels, plain, framed = run_logits(run, limit, seed, batch_size)
    return framing_figures(labels, plain, framed, operating_offsets(run))


def run_logits(run: Path, limit: int | None, seed: int, batch_size: int
               ) -> tuple[np.ndarray, np.ndarray, dict[str, np.ndarray]]:
    """The labels (N,), plain logits (N, K) and logits under each framing shift of ``limit`` validation
    films of ``run`` (computed once, then read from ``<run>/val_logits.npz``)."""
    card = card_from_run(run)
    rows = split_rows(run_manifest(run), "val", limit, seed)
    paths = [r["path"] for r in rows]
    cache = LogitCache(run / "val_logits.npz")
    loaded = []

    def classifier():  # built only when some logits are not cached yet
        if not loaded:
            loaded.append(make_classifier(card, "cpu"))
        return loaded[0]

    tag = "val" if limit is None else f"val{limit}s{seed}"
    plain = cached_logits(cache, tag, fingerprint(card, paths, "plain"),
                          lambda: predict_logits(classifier(), paths, batch_size, tag))
    framed = {}
    for name, (description, _) in FRAMING_SHIFTS.items():
        key = "".join(c if c.isalnum() else "_" for c in f"{tag}_framing_{name}")
        framed[name] = cached_logits(
            cache, key, fingerprint(card, paths, f"framing {name}: {description}"),
            lambda name=name: predict_logits(classifier(), paths, batch_size, key,
                                             lambda p: framed_display(p, card.input_size, name)))
    return label_indices(rows), plain, framed


def table(results: dict[str, dict]) -> list[str]:
    shifts = list(FRAMING_SHIFTS)
    lines = ["| run | n | offsets | accuracy | macro-F1 | " + " | ".join(shifts) + " | worst |",
             "|---" * (len(shifts) + 6) + "|"]
    for run, f in results.items():
        lines.append(f"| `{run}` | {f['n']} | {', '.join(f'{x:+.3f}' for x in f['offsets'])} | {f['accuracy']:.3f} | "
                     f"{f['macro_f1']:.3f} | " + " | ".join(f"{f['changed'][s]:.3f}" for s in shifts)
                     + f" | {f['worst']:.3f} |")
    return lines


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m training.framing_choice", description=__doc__.split("\n")[0])
    parser.add_argument("--run", type=Path, action="append", required=True,
                        help="training run folder (repeat to compare runs)")
    parser.add_argument("--limit", type=int, default=None,
                        help="at most N validation films, drawn round-robin over classes (default: all)")
    parser.add_argument("--seed", type=int, default=0, help="seed for --limit's draw")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    parser.add_argument("--out", type=Path, help="also write the figures here as JSON")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    import torch

    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    with script_logging(None):
        results = {run.name: run_figures(run, args.limit, args.seed, args.batch_size) for run in args.run}
        print("\n".join(table(results)))
        if args.out:
            args.out.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
