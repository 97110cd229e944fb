"""Choose between single runs and averages of runs on the validation split (never the test split).

An average of models is one of issue 12's candidate recipes: two networks trained differently make
partly independent errors, so their average can be both more accurate and steadier under framing
shifts. For each combination ``A+B[+C]`` of runs this averages the runs' log-probabilities
(``mean_m log_softmax(z_m)``, equal weights; a geometric mean of the probabilities), chooses the
average's own logit offsets on the whole validation split with ``training.operating_point.choose``
(the same constraints as a single run's operating point), and measures the framing test of
``training.framing_choice`` on the same 800 validation films with those offsets.

Each run's raw logits are read from ``<run>/val_logits.npz``: the whole validation split as
``training.operating_point`` caches it, and the framings as ``training.framing_choice`` does; both are
computed there first when missing (slow: every film through the model six times).

Run: ``python -m training.ensemble_choice --runs training/work/runs --combo lite0_224_sqrt_f09+b1_224_sqrt
--combo lite0_224_sqrt_f09 --limit 800 --threads 1``
"""
from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path
from typing import Sequence

import numpy as np

from cxr_engine.models.ensemble import ensemble_logits

from .framing_choice import framing_figures, run_logits
from .operating_point import choose, val_logits
from .script_logging import script_logging

log = logging.getLogger("training.ensemble_choice")


def average(logits: Sequence[np.ndarray]) -> np.ndarray:
    """The equal-weight mean of the members' log-probabilities: (N, K) from M arrays of (N, K), by the
    engine's own formula for an averaged model (``cxr_engine.models.ensemble.ensemble_logits``) with
    equal weights and no offsets, so that what validation chooses is what the engine computes."""
    return ensemble_logits(logits, [1.0] * len(logits), np.zeros(np.shape(logits[0])[-1]))


def combo_figures(runs: Sequence[Path], limit: int, seed: int, batch_size: int, threads: int) -> dict:
    """Operating point and framing figures of the average of ``runs`` (one run: that run alone)."""
    whole = [val_logits(run, None, threads) for run in runs]
    rows = whole[0][0]
    if any([r["path"] for r in rows] != [r["path"] for r in w[0]] for w in whole[1:]):
        raise ValueError("the runs do not share one validation split")
    offsets, chosen, _ = choose(rows, average([w[1] for w in whole]))
    framed_runs = [run_logits(run, limit, seed, batch_size) for run in runs]
    labels = framed_runs[0][0]
    plain = average([f[1] for f in framed_runs])
    framed = {name: average([f[2][name] for f in framed_runs]) for name in framed_runs[0][2]}
    return {"operating_point": {k: v for k, v in chosen.items() if k != "offsets"}, "offsets": offsets.tolist(),
            "framing": framing_figures(labels, plain, framed, offsets)}


def table(results: dict[str, dict]) -> list[str]:
    lines = ["| runs | offsets (n / p / c) | val accuracy | F1 n / p / c | adult pneumonia recall | "
             "adult normals called COVID-19 | children's normals called pneumonia | constraints met | "
             "worst framing change (800) |", "|---" * 9 + "|"]
    for name, r in results.items():
        op, fr = r["operating_point"], r["framing"]
        lines.append(f"| `{name}` | {' / '.join(f'{x:+.3f}' for x in r['offsets'])} | {op['accuracy']:.3f} | "
                     f"{' / '.join(f'{x:.3f}' for x in op['f1'])} | {op['adult_pneumonia_recall']:.3f} | "
                     f"{op['adult_normal_called_covid']:.3f} | {op['pediatric_normal_called_pneumonia']:.3f} | "
                     f"{'yes' if op['violation'] == 0 else 'no'} | {fr['worst']:.3f} |")
    return lines


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m training.ensemble_choice", description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=Path, default=Path("training/work/runs"), help="folder of the run folders")
    parser.add_argument("--combo", action="append", required=True,
                        help="run names joined by '+' (one name: that run alone); repeat to compare")
    parser.add_argument("--limit", type=int, default=800, help="validation films for the framing test")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads when logits must be computed")
    parser.add_argument("--out", type=Path, help="also write the figures here as JSON")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    with script_logging(None):
        results = {combo: combo_figures([args.runs / name for name in combo.split("+")], args.limit, args.seed,
                                        args.batch_size, args.threads) for combo in args.combo}
        print("\n".join(table(results)))
        if args.out:
            args.out.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
