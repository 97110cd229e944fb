"""The model's forward pass alone: the ceiling of any folder's films/s on this machine.

The bundled default model on ONNX Runtime (CPU), inputs already prepared (random normal, the
model's input shape), session loaded, one warm-up run not counted. Each configuration reports
films/s of wall time and films per CPU-second of this process (``time.process_time``): on a
shared machine the wall figure depends on the load, the CPU figure much less, and twice it is
what two idle cores could reach at best. Configurations:

- ``free``: the batch axis left free (as exported), batches of ``--batch`` images;
- ``one``: the batch axis fixed at 1 (``cxr_engine.models.onnx_backend.session_options``,
  what the engine runs on the CPU), one image per run;

each on 1 and 2 intra-op threads.

    nice -n -5 python -m benchmarks.bench_onnx_forward --batch 8 32 --films 256
"""
from __future__ import annotations

import argparse
import os
import time


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.bench_onnx_forward", description=__doc__.split("\n\n")[0])
    parser.add_argument("--batch", type=int, nargs="+", default=[8, 32], help="batch sizes for the free batch axis")
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2], help="ONNX Runtime intra-op threads")
    parser.add_argument("--films", type=int, default=256, help="films per configuration (rounded to whole batches)")
    parser.add_argument("--model", help="bundled model name or card (default: the default bundled model)")
    args = parser.parse_args(argv)

    import numpy as np
    import onnxruntime

    from cxr_engine.models.loading import choose_card
    from cxr_engine.models.onnx_backend import session_options, verified_onnx_bytes

    card = choose_card(args.model)
    if card.architecture == "ensemble":
        parser.error(f"{card.name} is an averaged model with no ONNX export of its own: name one of its members "
                     f"({', '.join(m['card'] for m in card.members)}) with --model")
    data = verified_onnx_bytes(card)
    shape = (card.in_chans, card.input_size, card.input_size)
    print(f"{card.name} {shape}, ONNX Runtime {onnxruntime.__version__}, {os.cpu_count()} cores, "
          f"load average {os.getloadavg()}", flush=True)
    configurations = [("one", 1)] + [("free", batch) for batch in args.batch]
    for threads in args.threads:
        for axis, batch in configurations:
            options = session_options(onnxruntime, one_image_per_run=axis == "one")
            options.intra_op_num_threads = threads
            started = time.perf_counter()
            session = onnxruntime.InferenceSession(data, options, providers=["CPUExecutionProvider"])
            created = time.perf_counter() - started
            inputs = np.random.default_rng(0).normal(size=(batch, *shape)).astype(np.float32)
            outputs = ["logits", "features"]
            session.run(outputs, {"input": inputs})
            runs = max(1, args.films // batch)
            wall, cpu = time.perf_counter(), time.process_time()
            for _ in range(runs):
                session.run(outputs, {"input": inputs})
            wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
            films = runs * batch
            print(f"batch axis {axis:4s} batch {batch:3d} threads {threads}: {films / wall:6.1f} films/s wall, "
                  f"{films / cpu:6.1f} films per CPU-second, session {created * 1000:.0f} ms, "
                  f"load {os.getloadavg()[0]:.1f}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
