"""One network from the weighted average of two or more runs' weights (a "model soup").

Networks fine-tuned from the same starting weights stay in one basin of the loss, and the average of their
weights is itself a good network that keeps part of each one's behaviour (Wortsman et al., "Model soups",
ICML 2022; Izmailov et al., "Averaging weights leads to wider optima", UAI 2018): here, the framing
invariance of a consistency fine-tuning and the adult decision of the network it started from, in one
network with one network's inference cost. Every tensor (batch-norm running statistics included) is the
weighted mean in float64, cast to the widest of the runs' float dtypes; integer tensors (batch-norm's counters) are
taken from the first run.

The result is a run folder (``run.json``, ``split_manifest.csv`` and ``best.json`` of the first run, the
draft card naming the new weights) for ``training.operating_point``, ``training.framing_choice`` and the
rest. ``ValueError`` when the runs' tensors differ in names or shapes, or the weights do not sum to 1.

Run: ``python -m training.weight_average --run training/work/runs/shipped_efficientnet-lite0
--run training/work/runs/lite0_f09_jsd_rsna2 --weights 0.5,0.5 --out training/work/runs/lite0_soup50``
"""
from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path
from typing import Sequence

import numpy as np


def averaged(tensors: Sequence[dict[str, np.ndarray]], weights: Sequence[float]) -> dict[str, np.ndarray]:
    """The weighted mean of same-named float tensors; integer ones from the first dict."""
    if len(tensors) != len(weights) or len(tensors) < 2:
        raise ValueError("give two or more runs, one weight each")
    if abs(sum(weights) - 1.0) > 1e-6 or min(weights) < 0:
        raise ValueError(f"weights {list(weights)} must be non-negative and sum to 1")
    first = tensors[0]
    for other in tensors[1:]:
        if other.keys() != first.keys() or any(other[k].shape != first[k].shape for k in first):
            raise ValueError("the runs' networks differ in tensor names or shapes")
    out = {}
    for name, tensor in first.items():
        if not np.issubdtype(tensor.dtype, np.floating):
            out[name] = tensor
            continue
        mean = sum(w * t[name].astype(np.float64) for w, t in zip(weights, tensors))
        out[name] = mean.astype(np.result_type(*(t[name].dtype for t in tensors)))
    return out


def write_run(runs: Sequence[Path], weights: Sequence[float], out: Path, command: str) -> Path:
    from safetensors.numpy import load_file, save_file

    from cxr_engine.models.weights import sha256_file

    tensors = [load_file(str(run / "best.safetensors")) for run in runs]
    out.mkdir(parents=True, exist_ok=True)
    save_file(averaged(tensors, weights), str(out / "best.safetensors"))
    if (runs[0] / "split_manifest.csv").exists():
        shutil.copy2(runs[0] / "split_manifest.csv", out / "split_manifest.csv")
    info = json.loads((runs[0] / "run.json").read_text(encoding="utf-8"))
    info["weight_average"] = {"runs": [str(r) for r in runs], "weights": list(weights), "command": command}
    (out / "run.json").write_text(json.dumps(info, indent=2) + "\n", encoding="utf-8")
    if (runs[0] / "best.json").exists():
        draft = json.loads((runs[0] / "best.json").read_text(encoding="utf-8"))
        draft.update(name=out.name, weights_file="best.safetensors", weights_sha256=sha256_file(out / "best.safetensors"))
        (out / "best.json").write_text(json.dumps(draft, indent=2) + "\n", encoding="utf-8")
    return out


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m training.weight_average", description=__doc__.split("\n")[0])
    parser.add_argument("--run", type=Path, action="append", required=True, help="run folder (repeat: two or more)")
    parser.add_argument("--weights", required=True, help="comma-separated, one per --run, summing to 1")
    parser.add_argument("--out", type=Path, required=True, help="new run folder")
    args = parser.parse_args(argv)
    command = " ".join(["python -m training.weight_average", *(argv if argv is not None else sys.argv[1:])])
    weights = [float(w) for w in args.weights.split(",")]
    print(write_run(args.run, weights, args.out, command))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
