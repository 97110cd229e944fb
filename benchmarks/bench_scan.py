"""Time :func:`cxr_engine.reading.scanning.scan` on a generated folder of DICOM files.

    python -m benchmarks.bench_scan -n 2000 --cxr3 /work/shared/data/cxr3

The files are written just before the scan, so they are in the page cache: the figure is
header-parsing speed, not cold-disk speed.
"""
from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from cxr_engine.reading.scanning import scan

try:
    from benchmarks.make_dicom_folder import DEFAULT_CXR3, make_dicom_folder
except ImportError:  # run as a script, python benchmarks/bench_scan.py: benchmarks/ is on sys.path
    from make_dicom_folder import DEFAULT_CXR3, make_dicom_folder


def benchmark_scan(n_files: int, cxr3_dir: str | Path = DEFAULT_CXR3) -> dict:
    """Generate ``n_files`` DICOM files in a temporary folder and time one scan of it.

    Returns the counts the scan found, the counts expected, ``scan_s`` and ``files_per_s``
    (files seen by the scan, junk included, per wall-clock second).
    """
    with tempfile.TemporaryDirectory(prefix="cxr-bench-scan-") as tmp:
        t0 = time.perf_counter()
        expected = make_dicom_folder(tmp, n_files, cxr3_dir=cxr3_dir)
        generate_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        result = scan(tmp)
        scan_s = time.perf_counter() - t0
    return {
        "files_seen": result.files_seen,
        "instances": len(result.all_instances()),
        "patients": len(result.patients),
        "studies": len(result.all_studies()),
        "series": len(result.all_series()),
        "errors": len(result.errors),
        "expected": {k: expected[k] for k in ("n_files", "patients", "studies", "series")},
        "generate_s": round(generate_s, 3),
        "scan_s": round(scan_s, 3),
        "files_per_s": round(result.files_seen / scan_s, 1),
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-n", "--n-files", type=int, default=2000)
    parser.add_argument("--cxr3", type=Path, default=DEFAULT_CXR3, help="cxr3 data folder")
    args = parser.parse_args(argv)
    r = benchmark_scan(args.n_files, args.cxr3)
    print(
        f"scan: {r['files_seen']} files ({r['instances']} instances, {r['patients']} patients, "
        f"{r['studies']} studies, {r['series']} series, {r['errors']} errors) "
        f"in {r['scan_s']:.3f} s = {r['files_per_s']:.0f} files/s"
    )


if __name__ == "__main__":
    main()
