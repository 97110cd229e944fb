"""Training speed of a registry architecture on the CPU: images per second per input size.

    python -m benchmarks.bench_train_speed --arch densenet121 --sizes 128 160 224 [--threads 1]
        [--batch-size 16] [--steps 4] [--teacher training/work/runs/lite0_224_sqrt]

One step is what ``training.train`` does per batch: forward, label-smoothed cross-entropy (plus the
teacher's forward when ``--teacher`` is given: ``training.distill``), backward and an AdamW step,
channels-last, on a random batch (the speed does not depend on the pixels). After one warm-up step,
``--steps`` steps are timed: images per wall-clock second (batch size × steps / seconds), and per
second of this process's CPU time, which is what one free core would give per thread (on a shared
machine the wall-clock figure says more about the other jobs; the 1-minute load average is printed
with each row).
"""
from __future__ import annotations

import argparse
import os
import time
from types import SimpleNamespace

import torch

from cxr_engine.models.model_card import CLASSES
from cxr_engine.models.registry import build_model, get_architecture, list_architectures
from training.distill import make_criterion
from training.train import make_optimizer


def images_per_second(arch: str, size: int, batch_size: int, steps: int, teacher: str | None
                      ) -> tuple[float, float]:
    """(images per wall-clock second, images per CPU second of this process)."""
    torch.manual_seed(0)
    model = build_model(arch, num_classes=len(CLASSES), in_chans=3).to(memory_format=torch.channels_last).train()
    optimizer = make_optimizer(model, 1e-3, 0.05)
    spec = get_architecture(arch)
    criterion = make_criterion(SimpleNamespace(teacher=teacher, size=size, size_schedule=f"{size}:1",
                                               label_smoothing=0.1, distill_weight=0.7, distill_temperature=2.0),
                               spec.mean, spec.std, torch.device("cpu"))
    images = torch.randn(batch_size, 3, size, size).contiguous(memory_format=torch.channels_last)
    labels = torch.randint(0, len(CLASSES), (batch_size,))

    def step() -> None:
        loss = criterion(model(images), labels, images)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    step()
    start, cpu_start = time.perf_counter(), time.process_time()
    for _ in range(steps):
        step()
    images = batch_size * steps
    return images / (time.perf_counter() - start), images / (time.process_time() - cpu_start)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.bench_train_speed",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--arch", default="densenet121", choices=list_architectures())
    parser.add_argument("--sizes", type=int, nargs="+", default=[128, 160, 224])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--steps", type=int, default=4, help="timed steps per size, after one warm-up step")
    parser.add_argument("--teacher", default=None, help="model card or run folder to distil from (adds its forward)")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    print(f"{args.arch}, batch {args.batch_size}, {args.threads} thread(s), {args.steps} timed steps"
          f"{', teacher ' + args.teacher if args.teacher else ''}")
    print("| input | img/s (wall clock) | img per CPU second | load average (1 min) |\n| --- | --- | --- | --- |")
    for size in args.sizes:
        wall, cpu = images_per_second(args.arch, size, args.batch_size, args.steps, args.teacher)
        print(f"| {size} px | {wall:.2f} | {cpu:.2f} | {os.getloadavg()[0]:.1f} |", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
