"""Large-folder benchmark: 20,000 DICOM files plus junk, deep nesting and symlink loops.

Measures, each in a fresh process so peak memory is the scan's own:

1. the engine's ``scan``: wall time, files/s, counts, peak resident memory;
2. cancelling an engine scan 1 s in: how long until it returns;
3. the desktop app opening the folder (offscreen): a 20 ms heartbeat timer on the GUI thread
   records the longest gap (GUI stall) from the open until 5 s after the tree is filled, the
   time until the tree is filled, and peak memory;
4. cancelling the app's scan 1 s in (as the Cancel button does): time until the app shows
   what it had found.

    python -m benchmarks.bench_large_folder /tmp/large20k -n 20000 --junk 2000

The folder is generated once (deterministic) and reused; delete it to regenerate.
"""
from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import threading
import time
from pathlib import Path

try:
    from benchmarks.make_dicom_folder import DEFAULT_CXR3, make_dicom_folder
except ImportError:  # run as a script
    from make_dicom_folder import DEFAULT_CXR3, make_dicom_folder

STAMP = "bench_large_folder.json"


def peak_rss_mib() -> float:
    """Peak resident set size of this process (VmHWM), MiB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return round(int(line.split()[1]) / 1024, 1)
    import resource

    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def add_hazards(root: Path, n_junk: int, seed: int = 0) -> dict:
    """Junk files of every kind, a folder nested 40 deep, and symlinks that loop or dangle."""
    rng = random.Random(seed)
    junk = root / "junk"
    kinds = ("random.dcm", "notes.txt", "empty.dcm", "noext", "truncated.dcm", "image.png")
    sample = next(root.rglob("*.dcm")).read_bytes()
    for index in range(n_junk):
        folder = junk / f"J{index // 100:03d}"
        folder.mkdir(parents=True, exist_ok=True)
        kind = kinds[index % len(kinds)]
        if kind == "random.dcm":
            data = bytes(rng.randrange(256) for _ in range(rng.randrange(1, 2000)))
        elif kind == "notes.txt":
            data = b"scan notes\n" * rng.randrange(1, 20)
        elif kind == "empty.dcm":
            data = b""
        elif kind == "noext":
            data = b"\x00" * rng.randrange(1, 500)
        elif kind == "truncated.dcm":
            data = sample[:rng.randrange(132, len(sample) // 2)]
        else:
            data = b"\x89PNG\r\n\x1a\n" + bytes(rng.randrange(256) for _ in range(64))
        (folder / f"{index:05d}_{kind}").write_bytes(data)
    deep = root / "deep"
    for level in range(40):
        deep = deep / f"d{level:02d}"
    deep.mkdir(parents=True, exist_ok=True)
    (deep / "bottom.dcm").write_bytes(sample)
    links = {"loop_parent": "..", "loop_self": ".", "loop_root": str(root), "dangling": "no/such/target"}
    for name, target in links.items():
        (root / "deep" / name).symlink_to(target)
    (deep / "back_to_top").symlink_to(root)
    return {"junk_files": n_junk, "nested_depth": 40, "symlinks": len(links) + 1, "extra_dicoms": 1}


def ensure_folder(folder: Path, n_files: int, n_junk: int, cxr3: Path) -> dict:
    stamp = folder / STAMP
    wanted = {"n_files": n_files, "n_junk": n_junk}
    if stamp.exists():
        made = json.loads(stamp.read_text())
        if {k: made.get(k) for k in wanted} == wanted:
            return made
        raise SystemExit(f"{folder} was generated with other settings ({made}); delete it first")
    if folder.exists() and any(folder.iterdir()):
        raise SystemExit(f"{folder} exists and is not a generated benchmark folder")
    start = time.perf_counter()
    expected = make_dicom_folder(folder, n_files, cxr3_dir=cxr3)
    hazards = add_hazards(folder, n_junk)
    made = {**wanted, "expected": {k: expected[k] for k in ("n_files", "patients", "studies", "series")},
            **hazards, "generate_s": round(time.perf_counter() - start, 1)}
    stamp.write_text(json.dumps(made, indent=2))
    return made


# --------------------------------------------------------------------------- measurements (child processes)

def child_engine_scan(folder: Path, cancel_after_s: float | None) -> dict:
    from cxr_engine.reading.scanning import scan

    cancel = threading.Event()
    cancelled_at = []
    if cancel_after_s is not None:
        def request_cancel():
            time.sleep(cancel_after_s)
            cancelled_at.append(time.perf_counter())
            cancel.set()
        threading.Thread(target=request_cancel, daemon=True).start()
    start = time.perf_counter()
    result = scan(folder, should_cancel=cancel.is_set)
    end = time.perf_counter()
    out = {"scan_s": round(end - start, 2), "files_seen": result.files_seen,
           "instances": len(result.all_instances()), "patients": len(result.patients),
           "studies": len(result.all_studies()), "series": len(result.all_series()),
           "errors": len(result.errors), "skipped_non_dicom": result.skipped_non_dicom,
           "cancelled": result.cancelled, "peak_rss_mib": peak_rss_mib()}
    out["files_per_s"] = round(result.files_seen / max(end - start, 1e-9), 1)
    if cancelled_at:
        out["cancel_to_return_ms"] = round((end - cancelled_at[0]) * 1000, 1)
    return out


def child_desktop(folder: Path, cancel_after_s: float | None) -> dict:
    from PySide6.QtCore import QTimer
    from PySide6.QtWidgets import QApplication

    app = QApplication(sys.argv[:1])
    from cxr_desktop.main_window import MainWindow

    window = MainWindow(model="none")
    window.show()
    app.processEvents()
    ticks: list[float] = []
    heartbeat = QTimer()
    heartbeat.setInterval(20)
    heartbeat.timeout.connect(lambda: ticks.append(time.perf_counter()))
    out: dict = {}
    start = time.perf_counter()

    def finished(results):
        out["tree_filled_s"] = round(time.perf_counter() - start, 2)
        out["images_in_tree"] = window.browser.image_count()
        out["problems_listed"] = window.problems.rowCount()
        out["cancelled"] = any(r.cancelled for r in results)
        if "cancel_requested_at" in out:
            out["cancel_to_shown_ms"] = round((time.perf_counter() - out.pop("cancel_requested_at")) * 1000, 1)
        QTimer.singleShot(5000, app.quit)  # keep measuring while thumbnails load

    def cancel():
        out["cancel_requested_at"] = time.perf_counter()
        window.scan_worker.quit()  # what the progress bar's Cancel button does

    window.scanFinished.connect(finished)
    heartbeat.start()
    QTimer.singleShot(0, lambda: window.open_paths([folder]))
    if cancel_after_s is not None:
        QTimer.singleShot(int(cancel_after_s * 1000), cancel)
    QTimer.singleShot(900_000, app.quit)
    app.exec()
    heartbeat.stop()
    stalls = [(b - a, a - start) for a, b in zip(ticks, ticks[1:])]
    gaps = sorted(gap for gap, _ in stalls)
    out["gui_max_stall_began_s"] = round(max(stalls)[1], 2) if stalls else None
    out.pop("cancel_requested_at", None)  # the scan had finished before the cancel
    out["gui_max_stall_ms"] = round(gaps[-1] * 1000, 1) if gaps else None
    out["gui_p99_tick_ms"] = round(gaps[int(0.99 * (len(gaps) - 1))] * 1000, 1) if gaps else None
    out["heartbeats"] = len(ticks)
    out["peak_rss_mib"] = peak_rss_mib()
    window.close()
    return out


def run_child(mode: str, folder: Path, cancel_after_s: float | None) -> dict:
    command = [sys.executable, "-m", "benchmarks.bench_large_folder", "--child", mode, str(folder)]
    if cancel_after_s is not None:
        command += ["--cancel-after", str(cancel_after_s)]
    env = {**os.environ, "QT_QPA_PLATFORM": os.environ.get("QT_QPA_PLATFORM", "offscreen")}
    done = subprocess.run(command, capture_output=True, text=True, env=env, check=False,
                          cwd=Path(__file__).resolve().parents[1])
    if done.returncode != 0:
        raise SystemExit(f"{mode} failed ({done.returncode}):\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.bench_large_folder",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("folder", type=Path)
    parser.add_argument("-n", "--n-files", type=int, default=20000)
    parser.add_argument("--junk", type=int, default=2000)
    parser.add_argument("--cxr3", type=Path, default=DEFAULT_CXR3)
    parser.add_argument("--skip-desktop", action="store_true")
    parser.add_argument("--child", choices=("engine", "desktop"), help=argparse.SUPPRESS)
    parser.add_argument("--cancel-after", type=float, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        measure = child_engine_scan if args.child == "engine" else child_desktop
        print(json.dumps(measure(args.folder, args.cancel_after)))
        return 0
    made = ensure_folder(args.folder, args.n_files, args.junk, args.cxr3)
    report = {"folder": made,
              "engine_scan": run_child("engine", args.folder, None),
              "engine_cancel_1s": run_child("engine", args.folder, 1.0)}
    if not args.skip_desktop:
        report["desktop_open"] = run_child("desktop", args.folder, None)
        report["desktop_cancel_1s"] = run_child("desktop", args.folder, 1.0)
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
