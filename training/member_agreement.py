"""How often an averaged model's networks disagree, and how often the average is right when they do.

An averaged model (``cxr_engine.models.ensemble_card``) calls the class of its members' mean
log-probabilities plus its offsets. Where its members' own top classes differ, the average is much less
often right than where they agree: a film the reader should know is a split decision. This measures it on
the validation split (where it is chosen and quoted) and on the test split (reported only):

- ``films``: films of the split; ``disagree``: films whose members' top classes differ;
- ``right_when_disagree`` / ``right_when_agree``: the average's accuracy on each group;
- ``flagged_when_disagree``: the share of the disagreeing films the card's probability threshold
  (``out_of_scope``, the "close call") already flags.

Each member's logits are its run folder's (``training.run_from_card`` makes one from a bundled card;
the card's weights are checked against the run's), cached as ``training.evaluate`` caches them
(``<run>/val_logits.npz``, ``<run>/test_logits.npz``). With ``--write-card`` the validation figures (and
the test figures beside them) go into the averaged card's ``member_agreement`` key, where the engine
reads them for the note a film with disagreeing networks gets (``cxr_engine.models.ensemble``).

Run: ``python -m training.member_agreement --card resources/models/efficientnet-lite0-b1-average.json
--member-run efficientnet-lite0=training/work/runs/shipped_efficientnet-lite0
--member-run efficientnet-b1=training/work/runs/shipped_efficientnet-b1 --write-card``
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

from cxr_engine.models.ensemble import ensemble_logits, probabilities
from cxr_engine.models.ensemble_card import AGREEMENT_KEY
from cxr_engine.models.model_card import load_card

from .evaluate import LogitCache, cached_logits, card_from_run, fingerprint, label_indices, make_classifier
from .evaluate import predict_logits, run_manifest, split_rows
from .script_logging import script_logging

log = logging.getLogger("training.member_agreement")

SPLITS = ("val", "test")


def agreement_figures(member_logits: Sequence[np.ndarray], labels: np.ndarray, weights: Sequence[float],
                      offsets: Sequence[float], temperature: float, threshold: float | None) -> dict:
    """The figures of one split (see the module) from each member's (N, K) logits and the (N,) true class
    indices; ``threshold``: the card's out-of-scope MSP threshold (None: ``flagged_when_disagree`` left out)."""
    z = ensemble_logits(member_logits, weights, offsets)
    average = z.argmax(axis=1)
    tops = np.stack([np.asarray(logits).argmax(axis=1) for logits in member_logits])
    disagree = (tops != tops[0]).any(axis=0)
    right = average == labels
    figures = {"films": int(len(labels)), "disagree": int(disagree.sum()),
               "right_when_disagree": _share(right[disagree]), "right_when_agree": _share(right[~disagree])}
    if threshold is not None:
        unsure = 1.0 - probabilities(z, temperature).max(axis=1) > threshold
        figures["flagged_when_disagree"] = _share(unsure[disagree])
    return figures


def _share(values: np.ndarray) -> float | None:
    return float(values.mean()) if len(values) else None


def member_split_logits(run: Path, split: str, batch_size: int) -> tuple[np.ndarray, np.ndarray, str]:
    """(labels, logits, weights sha256) of every film of ``split`` in ``run``'s manifest, cached in the run."""
    card = card_from_run(run)
    rows = split_rows(run_manifest(run), split, None, 0)
    paths = [r["path"] for r in rows]
    cache = LogitCache(run / f"{split}_logits.npz")
    logits = cached_logits(cache, split, fingerprint(card, paths, "plain"),
                           lambda: predict_logits(make_classifier(card, "cpu"), paths, batch_size, split))
    return label_indices(rows), logits, card.weights_sha256


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--card", type=Path, required=True, help="the averaged model's card JSON")
    parser.add_argument("--member-run", action="append", default=[], metavar="NAME=RUN",
                        help="a member's run folder (training.run_from_card), once per member")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--write-card", action="store_true", help="record the figures in the card's JSON")
    args = parser.parse_args(argv)
    args.command = shlex.join(["python", "-m", "training.member_agreement", *(sys.argv[1:] if argv is None else argv)])
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    with script_logging():
        card = load_card(args.card)
        members = getattr(card, "member_cards", None)
        if not members:
            parser.error(f"{args.card}: not an averaged model's card")
        runs = dict(item.split("=", 1) for item in args.member_run if "=" in item)
        missing = [member.name for member in members if member.name not in runs]
        if missing:
            parser.error(f"give --member-run NAME=RUN for {', '.join(missing)}")
        from cxr_engine.models.scope_score import threshold

        results = {}
        for split in SPLITS:
            labels, logits = None, []
            for member in members:
                member_labels, member_logits, sha = member_split_logits(Path(runs[member.name]), split, args.batch_size)
                if sha != member.weights_sha256:
                    parser.error(f"{runs[member.name]}: its weights are not {member.name}'s (sha256 {sha[:12]}…)")
                if labels is not None and not np.array_equal(labels, member_labels):
                    parser.error(f"the member runs list different {split} films")
                labels = member_labels
                logits.append(member_logits)
            results[split] = agreement_figures(logits, labels, card.member_weights, card.logit_offsets,
                                               card.temperature, threshold(card))
            log.info("%s: %s", split, json.dumps(results[split]))
        print(json.dumps(results, indent=2))
        if args.write_card:
            _record(args.card, results, args.command)
    return 0


def _record(card_path: Path, results: dict, command: str) -> None:
    """Add the figures to the card's JSON (every other key kept as it is)."""
    from .card_keys import set_card_keys

    set_card_keys(card_path, {AGREEMENT_KEY: {"split": "val", **results["val"], "test": results["test"],
                                              "created_by_command": command}})


if __name__ == "__main__":
    raise SystemExit(main())
