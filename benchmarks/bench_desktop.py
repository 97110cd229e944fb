"""Desktop start-up and memory benchmark.

Measures, in one fresh process: time from process start to the main window shown (and whether
torch was imported by then), to the first image on screen, to its first classification with
Grad-CAM, and the resident memory with a folder open after every thumbnail and a "classify all".

    python -m benchmarks.make_dicom_folder /tmp/bench100 -n 100
    QT_QPA_PLATFORM=offscreen python -m benchmarks.bench_desktop /tmp/bench100 --model CARD.json
"""
from __future__ import annotations

import time

T0 = time.perf_counter()

import argparse  # noqa: E402
import json  # noqa: E402
import resource  # noqa: E402
import sys  # noqa: E402
from pathlib import Path  # noqa: E402


def rss_mib() -> float:
    """Current resident set size (Linux /proc), MiB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("folder", type=Path)
    parser.add_argument("--model", default="")
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()

    from PySide6.QtCore import QTimer
    from PySide6.QtWidgets import QApplication

    app = QApplication(sys.argv[:1])
    from cxr_desktop.main_window import MainWindow

    window = MainWindow(model=args.model, device=args.device)
    window.show()
    times = {"torch_imported_at_window": "torch" in sys.modules}
    app.processEvents()  # the first paint
    times.update({"window_shown_s": time.perf_counter() - T0, "rss_at_window_mib": rss_mib()})

    def mark(key):
        def record(*_):
            times.setdefault(key, time.perf_counter() - T0)
        return record

    window.imageShown.connect(mark("first_image_s"))
    window.camShown.connect(mark("first_classification_s"))
    window.scanFinished.connect(mark("scan_done_s"))
    window.modelReady.connect(mark("model_ready_s"))

    def after_first_cam(*_):
        times.setdefault("rss_after_first_classification_mib", rss_mib())
        if "classify_all_started" not in times:
            times["classify_all_started"] = True
            window.classify_everything()  # thumbnails keep loading meanwhile

    def done(count):
        times["classify_all_done_s"] = time.perf_counter() - T0
        times["images"] = len(window.browser.image_paths())
        times["classified"] = count
        times["rss_with_folder_open_mib"] = rss_mib()
        app.quit()

    window.camShown.connect(after_first_cam)
    window.classifyAllFinished.connect(done)
    QTimer.singleShot(0, lambda: window.open_paths([args.folder]))
    QTimer.singleShot(600_000, app.quit)
    app.exec()
    window.close()
    times.pop("classify_all_started", None)
    print(json.dumps({k: round(v, 3) if isinstance(v, float) else v for k, v in times.items()}, indent=2))


if __name__ == "__main__":
    main()
