"""Desktop start-up and memory benchmark.

Measures, in one fresh process: time from process start to the main window shown (and whether
torch was imported by then), to the first image on screen, to its first classification with
Grad-CAM, and the resident memory with a folder open after every thumbnail and a "classify all".
Also: when every thumbnail is shown (``thumbnails_done_s``; ``thumbnails_s`` from the start of the
thumbnail job, which waits for the model to load), how long "classify all" takes
(``classify_all_s``, started with the first classification, while thumbnails may still load), the
longest stall of the GUI thread from opening the folder to the end (``max_gui_stall_ms``: the
longest gap between two ticks of a 10 ms timer, less 10 ms) and the resident memory of the app
with its decoding workers (``rss_with_workers_mib``). With ``--stall-stacks MS`` a watchdog thread
samples the GUI thread's Python stack every 20 ms while it is more than MS late, and each stall
longer than MS is printed with its start, length and the GUI thread's most frequent stack (what
blocked it), plus the other threads' innermost frames (a thread holding the GIL shows there).

    python -m benchmarks.make_dicom_folder /tmp/bench100 -n 100
    QT_QPA_PLATFORM=offscreen python -m benchmarks.bench_desktop /tmp/bench100 --model CARD.json
    python -m benchmarks.bench_classify_folder --cases j2k --films 100 --make-only   # 100 J2K films
    QT_QPA_PLATFORM=offscreen python -m benchmarks.bench_desktop /tmp/cxr-bench-folders/j2k_100 --model efficientnet-lite0
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


def rss_tree_mib() -> float:
    """Resident memory of this process and its children (the decoding workers), MiB."""
    import os

    total = 0
    for pid in [os.getpid(), *_children(os.getpid())]:
        try:
            total += int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * os.sysconf("SC_PAGE_SIZE")
        except (OSError, IndexError, ValueError):
            continue
    return total / 2**20


def _children(pid: int) -> list[int]:
    found = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            found += [int(c) for c in (task / "children").read_text().split()]
        except OSError:
            continue
    return found


class StallMeter:
    """The longest gap between two ticks of a ``period_ms`` timer on the GUI thread, less the period;
    with ``sample_over_ms`` also the GUI thread's stacks during each stall longer than that."""

    def __init__(self, period_ms: int = 10, sample_over_ms: float | None = None):
        import threading

        from PySide6.QtCore import QTimer

        self.period_s, self.longest_s, self.last = period_ms / 1000, 0.0, None
        self.timer = QTimer()
        self.timer.setInterval(period_ms)
        self.timer.timeout.connect(self.tick)
        self.sample_over_s = None if sample_over_ms is None else sample_over_ms / 1000
        self.stalls: list[dict] = []  # start_s (since T0), length_ms, samples (GUI stacks), others
        self._samples: list[tuple[str, str]] = []
        self._gui_thread = threading.get_ident()
        self._stop = threading.Event()
        self._watchdog = threading.Thread(target=self._watch, name="stall-watchdog", daemon=True)

    def start(self) -> None:
        self.last = time.perf_counter()
        self.timer.start()
        if self.sample_over_s is not None:
            self._watchdog.start()

    def stop(self) -> None:
        self._stop.set()

    def tick(self) -> None:
        now = time.perf_counter()
        gap = now - self.last - self.period_s
        self.longest_s = max(self.longest_s, gap)
        samples, self._samples = self._samples, []
        if self.sample_over_s is not None and gap > self.sample_over_s:
            self.stalls.append({"start_s": round(self.last - T0, 2), "length_ms": round(1000 * gap),
                                "samples": samples})
        self.last = now

    def _watch(self) -> None:
        import sys
        import traceback

        while not self._stop.wait(0.02):
            last = self.last
            if time.perf_counter() - last <= self.sample_over_s:
                continue
            frames = sys._current_frames()
            gui = frames.get(self._gui_thread)
            stack = "".join(traceback.format_list(traceback.extract_stack(gui)[-14:])) if gui is not None else "?"
            others = "; ".join(f"{_thread_name(ident)}: {_innermost(frame)}" for ident, frame in frames.items()
                               if ident not in (self._gui_thread, self._watchdog.ident))
            if last == self.last:
                self._samples.append((stack, others))

    def report(self) -> str:
        """Each sampled stall: when, how long, the GUI thread's most frequent stack and the other threads then."""
        from collections import Counter

        lines = []
        for stall in sorted(self.stalls, key=lambda s: -s["length_ms"]):
            lines.append(f"--- stall of {stall['length_ms']} ms at {stall['start_s']} s ({len(stall['samples'])} samples)")
            if stall["samples"]:
                stack, count = Counter(s for s, _ in stall["samples"]).most_common(1)[0]
                lines.append(f"GUI thread ({count} of {len(stall['samples'])} samples):\n{stack.rstrip()}")
                lines.append(f"other threads at the first sample: {stall['samples'][0][1]}")
        return "\n".join(lines)


def _thread_name(ident: int) -> str:
    import threading

    for thread in threading.enumerate():
        if thread.ident == ident:
            return thread.name
    return str(ident)


def _innermost(frame) -> str:
    return f"{Path(frame.f_code.co_filename).name}:{frame.f_lineno} {frame.f_code.co_name}"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("folder", type=Path)
    parser.add_argument("--model", default="")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--limit", type=float, default=600.0, help="seconds before giving up (figures so far are printed)")
    parser.add_argument("--stall-stacks", type=float, metavar="MS",
                        help="print the GUI thread's stacks during each stall longer than MS milliseconds")
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
    window.heatmapShown.connect(mark("first_classification_s"))
    window.scanFinished.connect(mark("scan_done_s"))
    window.modelReady.connect(mark("model_ready_s"))

    def after_first_heatmap(*_):
        times.setdefault("rss_after_first_classification_mib", rss_mib())
        if "classify_all_started" not in times:
            times["classify_all_started"] = True
            times["classify_all_started_s"] = time.perf_counter() - T0
            window.classify_everything()  # thumbnails keep loading meanwhile

    def done(count):
        times["classify_all_done_s"] = time.perf_counter() - T0
        times["images"] = len(window.browser.image_paths())
        times["classified"] = count
        times["rss_with_folder_open_mib"] = rss_mib()
        quit_when_done()

    def quit_when_done():
        """The run ends once classify-all is done and every thumbnail is shown (or at --limit)."""
        if "classify_all_done_s" in times and "thumbnails_done_s" in times:
            times["max_gui_stall_ms"] = 1000 * stalls.longest_s
            app.quit()

    stalls = StallMeter(sample_over_ms=args.stall_stacks)

    def thumbnails_shown():
        paths = window.browser.image_paths()
        worker = window.thumbnail_worker
        if worker is not None and "thumbnails_started_s" not in times:
            times["thumbnails_started_s"] = time.perf_counter() - T0
        failed = {str(path) for path, _ in window.problems.problems()}
        if paths and all(not window.browser._images[p].icon(0).isNull() or str(p) in failed for p in paths):
            if "thumbnails_done_s" not in times:
                times["thumbnails_done_s"] = time.perf_counter() - T0
                quit_when_done()

    thumbnail_check = QTimer()
    thumbnail_check.timeout.connect(thumbnails_shown)
    thumbnail_check.start(20)

    def finished(count):
        times["max_gui_stall_ms"] = 1000 * stalls.longest_s
        times["rss_with_workers_mib"] = rss_tree_mib()
        done(count)

    def open_folder():
        times["open_s"] = time.perf_counter() - T0
        stalls.start()
        window.open_paths([args.folder])

    window.heatmapShown.connect(after_first_heatmap)
    window.classifyAllFinished.connect(finished)
    QTimer.singleShot(0, open_folder)

    def give_up():
        times["gave_up_s"] = time.perf_counter() - T0
        times["max_gui_stall_ms"] = 1000 * stalls.longest_s
        app.quit()

    QTimer.singleShot(int(args.limit * 1000), give_up)
    app.exec()
    stalls.stop()
    window.close()
    times.pop("classify_all_started", None)
    if "classify_all_done_s" in times and "classify_all_started_s" in times:
        times["classify_all_s"] = times["classify_all_done_s"] - times["classify_all_started_s"]
    if "thumbnails_done_s" in times and "thumbnails_started_s" in times:
        times["thumbnails_s"] = times["thumbnails_done_s"] - times["thumbnails_started_s"]
    print(json.dumps({k: round(v, 3) if isinstance(v, float) else v for k, v in times.items()}, indent=2))
    if args.stall_stacks is not None:
        print(stalls.report())


if __name__ == "__main__":
    main()
