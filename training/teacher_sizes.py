"""Does a distillation teacher still read films given to it at a smaller training size?

    python -m training.teacher_sizes --teacher training/work/runs/lite0_224_sqrt \\
        --manifest training/work/curated_sqrt/split_manifest.csv --sizes 160 128 --limit 150

A student trained with ``--size-schedule`` hands the teacher its batch of unnormalised model inputs at 128 or
160 px and resized to the teacher's input size (``training.distill.DistillationLoss``). For
``--limit`` validation films (balanced by class, no augmentation), this prints the teacher's
accuracy at its own size and at each smaller size so resized, and how often the resized call
agrees with the call at its own size: soft targets from a teacher that no longer reads the
film would teach noise.
"""
from __future__ import annotations

import argparse
import logging
from pathlib import Path

import numpy as np
import torch

from .data import ManifestDataset, limit_rows, read_manifest
from .distill import load_teacher

log = logging.getLogger("training.teacher_sizes")


def teacher_calls(teacher: torch.nn.Module, dataset: ManifestDataset, input_size: int, batch_size: int = 25
                  ) -> np.ndarray:
    """(N,) int64 top classes of ``teacher`` for ``dataset``'s films resized to ``input_size`` px
    (bilinear, as in distillation)."""
    calls = []
    with torch.no_grad():
        for start in range(0, len(dataset), batch_size):
            batch = torch.stack([dataset[i][0] for i in range(start, min(len(dataset), start + batch_size))])
            if batch.shape[-1] != input_size:
                batch = torch.nn.functional.interpolate(batch, size=(input_size, input_size), mode="bilinear",
                                                        align_corners=False, antialias=batch.shape[-1] > input_size)
            calls.append(teacher(batch.contiguous(memory_format=torch.channels_last)).argmax(1))
    return torch.cat(calls).numpy()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m training.teacher_sizes", description=__doc__.split("\n\n")[0])
    parser.add_argument("--teacher", type=Path, required=True, help="model card JSON or training run folder")
    parser.add_argument("--manifest", type=Path, required=True, help="split manifest (its validation films are used)")
    parser.add_argument("--sizes", type=int, nargs="+", default=[160, 128], help="student sizes to try, in px")
    parser.add_argument("--limit", type=int, default=150, help="validation films, balanced by class")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    rows = limit_rows(read_manifest(args.manifest, "val"), args.limit, 0)
    # resize=True: any student size is accepted; the card's own size is read from it.
    teacher, card = load_teacher(args.teacher, 0, torch.device("cpu"), resize=True)
    if isinstance(teacher, list):
        parser.error(f"{args.teacher}: an averaged model; give one of its members' cards")
    calls, labels = {}, None
    for size in [card.input_size, *args.sizes]:
        dataset = ManifestDataset(rows, size, card.mean, card.std, card.in_chans,
                                  preprocessing=card.preprocessing_version)
        dataset.cache.precompute(args.threads, progress=False)
        calls[size], labels = teacher_calls(teacher, dataset, card.input_size), np.asarray(dataset.labels)
    print(f"teacher {card.name} ({card.input_size} px), {len(labels)} validation films of {args.manifest}")
    for size, sized in calls.items():
        print(f"{size} px -> {card.input_size} px: accuracy {np.mean(sized == labels):.3f}, same call as at "
              f"{card.input_size} px for {np.mean(sized == calls[card.input_size]):.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
