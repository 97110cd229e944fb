"""Fuzz the image readers with seeded mutations of real files; every case must end cleanly.

Each case is written to a scratch folder and read through ``IsolatedReader`` (one worker
process, a time limit per file, a capped address space) running ``fuzz_cases.fuzz_check``:
read → display → 8-bit render → model preprocessing. Outcomes:

- ``ok``: decoded and every invariant held;
- ``error``: refused with an ``ImageReadError`` naming the file and a reason (clean);
- ``bug``: an unexpected exception type or a broken invariant (not clean);
- ``crash``: the worker process died (isolation kept the harness alive; not clean);
- ``hang``: the time limit stopped it (not clean).

    python -m benchmarks.bench_fuzz -n 5000 --seed 0 --out out/fuzz
    python -m benchmarks.bench_fuzz --only 1234 --keep     # replay one case, keep its file

Writes ``OUT/cases.csv`` (one row per case) and ``OUT/summary.json``; exits 1 when any case is
not clean.
"""
from __future__ import annotations

import argparse
import collections
import csv
import json
import resource
import sys
import tempfile
import time
from pathlib import Path

from cxr_engine.errors import DecoderBugError, DecoderCrashError, DecodeTimeoutError, ImageReadError
from cxr_engine.reading.isolation import IsolatedReader

from .fuzz_cases import DEFAULT_SHARED, FuzzCase, fuzz_check, generate_cases, load_seeds

CLEAN = ("ok", "error")


def run_case(case: FuzzCase, reader: IsolatedReader, scratch: Path, keep: bool = False) -> dict:
    """Write, read and classify one case; the row for ``cases.csv``."""
    path = scratch / case.file_name
    path.write_bytes(case.data)
    start = time.perf_counter()
    reason = ""
    try:
        reader.read(path)
        outcome = "ok"
    except DecodeTimeoutError as exc:
        outcome, reason = "hang", exc.reason
    except DecoderCrashError as exc:
        outcome, reason = "crash", exc.reason
    except DecoderBugError as exc:
        outcome, reason = "bug", exc.reason
    except ImageReadError as exc:
        outcome, reason = "error", exc.reason
        if not reason.strip() or str(path) not in str(exc):
            outcome, reason = "bug", f"error without the file or a reason: {exc!s}"
    seconds = time.perf_counter() - start
    if not keep:
        path.unlink()
    return {"case": case.index, "source": case.source, "mutation": case.mutation, "bytes": len(case.data),
            "outcome": outcome, "seconds": round(seconds, 4), "reason": reason[:300]}


def run_fuzz(n: int, seed: int = 0, start: int = 0, timeout_s: float = 20.0, shared: Path = DEFAULT_SHARED,
             scratch: Path | None = None, keep: bool = False, progress: bool = True) -> tuple[list[dict], dict]:
    """Run cases ``start`` … ``start + n − 1``; (rows, summary)."""
    seeds = load_seeds(shared)
    rows: list[dict] = []
    began = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="cxr-fuzz-") as temp, \
            IsolatedReader(timeout_s=timeout_s, task=fuzz_check) as reader:
        folder = scratch or Path(temp)
        folder.mkdir(parents=True, exist_ok=True)
        for case in generate_cases(seeds, n, seed, start):
            rows.append(run_case(case, reader, folder, keep))
            if progress and len(rows) % 250 == 0:
                print(f"{len(rows)}/{n} cases, {time.perf_counter() - began:.0f} s", file=sys.stderr, flush=True)
        workers = reader.workers_started
    return rows, summarise(rows, time.perf_counter() - began, seed, start, timeout_s, workers)


def summarise(rows: list[dict], seconds: float, seed: int, start: int, timeout_s: float, workers: int) -> dict:
    outcomes = collections.Counter(row["outcome"] for row in rows)
    slowest = max(rows, key=lambda row: row["seconds"]) if rows else None
    by_mutation: dict[str, collections.Counter] = collections.defaultdict(collections.Counter)
    for row in rows:
        by_mutation[row["mutation"]][row["outcome"]] += 1
    return {
        "cases": len(rows), "seed": seed, "first_case": start, "time_limit_s": timeout_s,
        "outcomes": {name: outcomes.get(name, 0) for name in ("ok", "error", "bug", "crash", "hang")},
        "not_clean": sum(count for name, count in outcomes.items() if name not in CLEAN),
        "seconds": round(seconds, 1),
        "slowest_case": slowest and {k: slowest[k] for k in ("case", "source", "mutation", "seconds", "outcome")},
        "worker_processes_started": workers,
        # Peak resident memory of any finished worker process (Linux reports KiB).
        "worker_peak_rss_mib": round(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024, 1),
        "by_mutation": {name: dict(counts) for name, counts in sorted(by_mutation.items())},
        "not_clean_cases": [row for row in rows if row["outcome"] not in CLEAN][:50],
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.bench_fuzz", description=__doc__.split("\n\n")[0])
    parser.add_argument("-n", "--cases", type=int, default=5000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--start", type=int, default=0, help="first case index")
    parser.add_argument("--only", type=int, default=None, help="run just this case index")
    parser.add_argument("--timeout", type=float, default=20.0, help="seconds per file before the worker is stopped")
    parser.add_argument("--shared", type=Path, default=DEFAULT_SHARED, help="the shared data folder")
    parser.add_argument("--out", type=Path, default=Path("out/fuzz"))
    parser.add_argument("--keep", action="store_true", help="keep each case's file in OUT/cases/")
    args = parser.parse_args(argv)
    start, n = (args.only, 1) if args.only is not None else (args.start, args.cases)
    args.out.mkdir(parents=True, exist_ok=True)
    rows, summary = run_fuzz(n, args.seed, start, args.timeout, args.shared,
                             args.out / "cases" if args.keep else None, args.keep)
    with open(args.out / "cases.csv", "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    (args.out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    print(json.dumps({k: v for k, v in summary.items() if k not in ("by_mutation", "not_clean_cases")}, indent=2))
    for row in summary["not_clean_cases"][:20]:
        print(f"NOT CLEAN case {row['case']} ({row['mutation']} of {row['source']}): {row['outcome']}: {row['reason']}")
    return 1 if summary["not_clean"] else 0


if __name__ == "__main__":
    sys.exit(main())
