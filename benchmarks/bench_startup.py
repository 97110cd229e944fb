"""Start-up of the desktop app from source and from the PyInstaller bundles, and the bundles' sizes.

    python -m benchmarks.bench_startup [--runs 3] [--targets source lite full full-torch]

Each run is a fresh process opening the sample study with the bundled model
(``--screenshot``, offscreen), timed by the parent from process start to the log line of the
main window being shown, to the first classification with its heat-map, and to exit. Runs of the
targets alternate so that background load spreads evenly; the table gives the median and the
range. Bundles that are not built (``make bundle-lite`` / ``make bundle-full``) are left out.
"""
from __future__ import annotations

import argparse
import importlib.util
import json
import os
import statistics
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DIST = REPO / "dist"
MODEL = "efficientnet-lite0"


def _packaging(name: str):
    """A script from ``packaging/`` (not a Python package: it would shadow PyPI's ``packaging``)."""
    saved = list(sys.path)
    try:
        spec = importlib.util.spec_from_file_location(f"cxr_packaging_{name}", REPO / "packaging" / f"{name}.py")
        module = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = module
        spec.loader.exec_module(module)
        return module
    finally:
        sys.path[:] = saved


smoke = _packaging("smoke_test")
build = _packaging("build")


def targets() -> dict[str, tuple[list[str], Path | None]]:
    """Name → (command before the path, bundle folder or None for source)."""
    found: dict[str, tuple[list[str], Path | None]] = {
        "source": ([sys.executable, "-m", "cxr_desktop"], None),
        "source-torch": ([sys.executable, "-m", "cxr_desktop", "--backend", "torch"], None),
    }
    for variant in ("lite", "full"):
        bundle = DIST / f"cxr-reader-{variant}"
        try:
            exe = smoke.executable(bundle)
        except FileNotFoundError:
            continue
        found[variant] = ([str(exe)], bundle)
        if variant == "full":
            found["full-torch"] = ([str(exe), "--backend", "torch"], bundle)
    return found


def summarise(values: list[float | None]) -> str:
    got = [v for v in values if v is not None]
    if not got:
        return "–"
    if len(got) == 1:
        return f"{got[0]:.2f} s"
    return f"{statistics.median(got):.2f} s ({min(got):.2f}–{max(got):.2f})"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3, help="runs per target (default 3)")
    parser.add_argument("--targets", nargs="*", help="default: source, source-torch and every built bundle")
    parser.add_argument("--json", type=Path, help="also write every run here")
    args = parser.parse_args(argv)
    available = targets()
    chosen = args.targets or list(available)
    unknown = [t for t in chosen if t not in available]
    if unknown:
        parser.error(f"not available: {', '.join(unknown)} (built bundles: {', '.join(available)})")
    results: dict[str, list] = {name: [] for name in chosen}
    with tempfile.TemporaryDirectory() as tmp:
        env = smoke.app_env(Path(tmp) / "settings.ini")
        source_env = dict(env, PYTHONPATH=str(REPO))
        for run in range(args.runs):
            for name in chosen:
                command, bundle = available[name]
                study = (bundle / "_internal" if bundle else REPO) / "resources" / "samples" / "study"
                shot = Path(tmp) / f"{name}_{run}.png"
                result = smoke.run_app([*command, str(study), "--model", MODEL, "--screenshot", str(shot),
                                        "--timeout", "300"], source_env if bundle is None else env, 360, cwd=REPO)
                if result.code != 0:
                    print(f"{name} run {run + 1} failed (exit {result.code}):\n{result.log_tail}", file=sys.stderr)
                results[name].append(result)
    print(f"Start-up, {args.runs} run(s) each, median (range); load average now "
          f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs\n")
    print("| target | time to window | time to first result (with heat-map) | process exit |")
    print("| --- | --- | --- | --- |")
    for name, runs in results.items():
        print(f"| {name} | {summarise([r.window_s for r in runs])} | {summarise([r.first_result_s for r in runs])} "
              f"| {summarise([r.total_s for r in runs])} |")
    print("\n| bundle | size (bytes) | MB | MiB | files |")
    print("| --- | --- | --- | --- | --- |")
    for variant in ("lite", "full"):
        bundle = DIST / f"cxr-reader-{variant}"
        if bundle.is_dir():
            size = build.folder_size(bundle)
            files = sum(1 for p in bundle.rglob("*") if p.is_file())
            print(f"| {variant} | {size:,} | {size / 1e6:,.0f} | {size / 2**20:,.0f} | {files:,} |")
    if args.json:
        args.json.write_text(json.dumps({name: [vars(r) for r in runs] for name, runs in results.items()}, indent=2))
    return 0 if all(r.code == 0 for runs in results.values() for r in runs) else 1


if __name__ == "__main__":
    raise SystemExit(main())
