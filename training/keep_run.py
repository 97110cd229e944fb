"""Keep a long training run's restart point in git, where a new machine finds it.

A session's processes end with it, and ``training/work/`` (ignored by git) may not come back with its
machine: the DenseNet121 run of 2026-11-30 lost 38 epochs that way. This writes, into a folder that is
committed, what ``training.train --restart-from`` needs to continue the run on any machine:

- ``latest.safetensors``: the model of the run's ``last.pt`` in float16 (``weights_only`` load, no pickle
  kept; a restart loads it back into float32 and trains on), and ``latest.json``: a card draft naming it, whose ``validation_metrics`` are the last
  finished epoch's (``epoch``, ``macro_f1``) with the run's best so far (``best_epoch``, ``best_macro_f1``:
  a restart does not take a worse epoch for a better one);
- ``metrics.jsonl`` and ``run.json``, copied (small); ``best.json`` and ``best.safetensors`` only with
  ``--with-best`` (27 MiB more per commit for a DenseNet121; a restarted run writes both again at its first
  epoch better than the best so far).

A finished run (``--best-only``) keeps its best epoch instead: ``best.safetensors`` in float16 and ``best.json``,
its card draft naming it (its ``validation_metrics`` unchanged), with ``metrics.jsonl`` and ``run.json``; no
restart point. That is what ``training.train --init-from`` a later stage takes (``training.operating_point``
and ``training.evaluate`` need the run folder itself: its ``run.json`` names the run's split manifest).

``last.pt`` is written every ``--checkpoint-every`` steps: kept mid-epoch, its model holds some steps of the
next epoch, which a restart (from that epoch's end) trains again. Keep right after an epoch ends for an exact
restart point.

The optimiser's moments are not kept (twice the model's size): a restart starts them afresh, at the
learning rate the schedule has reached (``training.train.restart_from_best``).

    python -m training.keep_run --run training/work/runs/densenet121_cpu22 --out training/checkpoints/densenet121_cpu22
"""
from __future__ import annotations

import argparse
import json
import logging
import shutil
from pathlib import Path
from types import SimpleNamespace
from typing import Sequence

SMALL_FILES = ("metrics.jsonl", "run.json")
log = logging.getLogger(__name__)


def last_finished_epoch(metrics_path: Path, epoch: int) -> dict:
    """The ``metrics.jsonl`` record of ``epoch`` (the last one written when it appears more than once: a
    restarted run trains some epochs again); ``ValueError`` when there is none."""
    records = [json.loads(line) for line in metrics_path.read_text(encoding="utf-8").splitlines() if line.strip()]
    found = [r for r in records if r.get("epoch") == epoch]
    if not found:
        raise ValueError(f"{metrics_path}: no record of epoch {epoch}, the last one last.pt finished")
    return found[-1]


def keep(run: Path, out: Path, with_best: bool = False) -> Path:
    """Write the restart point of ``run`` into ``out`` (see the module docstring); returns ``latest.json``."""
    import torch

    from cxr_engine.models.weights import save_weights

    checkpoint = torch.load(run / "last.pt", map_location="cpu", weights_only=True)
    epoch = int(checkpoint["epoch"])
    if epoch < 1:
        raise ValueError(f"{run}/last.pt: no epoch has finished yet; nothing worth keeping")
    record = last_finished_epoch(run / "metrics.jsonl", epoch)
    out.mkdir(parents=True, exist_ok=True)
    # best.json names best.safetensors: kept together or not at all (a restart writes both at its first better epoch)
    for name in SMALL_FILES + (("best.json", "best.safetensors") if with_best else ()):
        shutil.copyfile(run / name, out / name)
    if checkpoint.get("step_in_epoch"):
        log.warning("%s/last.pt is %d steps into epoch %d: a restart from the kept model trains them again (keep "
                    "right after an epoch ends for an exact restart point)", run, checkpoint["step_in_epoch"],
                    epoch + 1)
    # save_weights reads a model's state dict: the checkpoint's, as it was saved
    # float16 (13.5 MiB for a DenseNet121, under the repo's 20 MB a file): load_model trains on from float32
    sha = save_weights(SimpleNamespace(state_dict=lambda: checkpoint["model"]), out / "latest.safetensors", half=True)
    card = json.loads((run / "best.json").read_text(encoding="utf-8"))  # the run's card draft, for its fields
    card.update(weights_file="latest.safetensors", weights_sha256=sha, weights_dtype="float16", input_size=int(record["size"]),
                validation_metrics={"epoch": epoch, "macro_f1": float(record["macro_f1"]),
                                    "accuracy": float(record["accuracy"]), "best_epoch": int(checkpoint["best_epoch"]),
                                    "best_macro_f1": float(checkpoint["best_score"]),
                                    "global_step": int(checkpoint.get("global_step", 0))},
                notes=f"Restart point kept by training.keep_run: the model after epoch {epoch} "
                      f"(and {int(checkpoint.get('step_in_epoch', 0))} steps of the next) of {run.name}; "
                      "not a model to ship.")
    latest = out / "latest.json"
    latest.write_text(json.dumps(card, indent=2) + "\n", encoding="utf-8")
    return latest


def keep_best(run: Path, out: Path) -> Path:
    """Write the best epoch of a finished ``run`` into ``out`` (float16 ``best.safetensors``, ``best.json``
    naming it, ``metrics.jsonl``, ``run.json``); returns ``best.json``. ``ValueError`` when the run has no
    best epoch yet, when its weights are not the ones ``best.json`` names, or when ``out`` is ``run``."""
    from safetensors.torch import load_file

    from cxr_engine.models.weights import save_weights, sha256_file

    card_path = run / "best.json"
    if not card_path.is_file():
        raise ValueError(f"{run}: no best.json (no epoch has finished yet); nothing worth keeping")
    if out.resolve() == run.resolve():
        raise ValueError(f"{out}: the run's own folder; keep it somewhere else")
    card = json.loads(card_path.read_text(encoding="utf-8"))
    weights = run / card.get("weights_file", "best.safetensors")
    # a run stopped between writing best.safetensors and best.json leaves another epoch's weights under the card
    if sha256_file(weights) != card.get("weights_sha256"):
        raise ValueError(f"{weights}: its sha256 is not the one {card_path} names (stopped while writing them?)")
    state = load_file(weights)
    out.mkdir(parents=True, exist_ok=True)
    for name in SMALL_FILES:
        shutil.copyfile(run / name, out / name)
    sha = save_weights(SimpleNamespace(state_dict=lambda: state), out / "best.safetensors", half=True)
    card.update(weights_file="best.safetensors", weights_sha256=sha, weights_dtype="float16")
    best = out / "best.json"
    best.write_text(json.dumps(card, indent=2) + "\n", encoding="utf-8")
    return best


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m training.keep_run", description=__doc__.split("\n\n")[0])
    parser.add_argument("--run", type=Path, required=True, help="the training run's folder (its last.pt)")
    parser.add_argument("--out", type=Path, required=True, help="the folder kept in git")
    parser.add_argument("--with-best", action="store_true", help="also copy best.json and best.safetensors")
    parser.add_argument("--best-only", action="store_true",
                        help="a finished run: keep its best epoch (float16) instead of a restart point")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    if args.best_only and args.with_best:
        parser.error("--best-only keeps the best epoch alone; --with-best adds it to a restart point")
    if args.best_only:
        try:
            best = keep_best(args.run, args.out)
        except ValueError as exc:
            parser.error(str(exc))
        metrics = json.loads(best.read_text(encoding="utf-8"))["validation_metrics"]
        print(f"{best}: epoch {metrics['epoch']} (validation macro-F1 {metrics['macro_f1']:.4f}), float16")
        return 0
    latest = keep(args.run, args.out, args.with_best)
    metrics = json.loads(latest.read_text(encoding="utf-8"))["validation_metrics"]
    print(f"{latest}: epoch {metrics['epoch']} (validation macro-F1 {metrics['macro_f1']:.4f}; best so far "
          f"{metrics['best_macro_f1']:.4f} at epoch {metrics['best_epoch']})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
