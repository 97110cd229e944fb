"""How fast does ``cxr-classify`` get through a folder of films? Wall time including start-up, peak memory.

Each case builds its folder once (in ``--work``), then, in the same run:

- ``j2k``: ``--films`` copies of ``966_fixed.dcm`` (2128×2000, 12-bit JPEG 2000 lossless), each its own
  instance (a new SOP Instance UID: byte-identical copies of one instance are classified once). First
  pydicom alone decodes every file at full resolution (``dcmread(f).pixel_array``, one process),
  then ``cxr-classify`` classifies the folder; the ratio of the two is the issue's acceptance
  figure (at most 0.25). The two alternate ``--rounds`` times, so machine load weighs on both.
- ``jpeg``: the same film windowed to 8 bits and stored as JPEG baseline (quality 90), ``--films`` copies.
- ``small``: ``--small`` of cxr3's JPEG images (at most 256 px), sorted by name.

``cxr-classify`` runs as a user runs it (``python -m cxr_engine FOLDER --csv …``, default options:
isolated decoding pool, reduced decodes for the model, ONNX Runtime on a CPU); ``--compare-full``
adds a run with ``--full-decode --decode-workers 1``, and ``--baseline DIR`` a run of the
``cxr_engine`` of another source tree (e.g. ``git archive fdad1e6 | tar -x -C DIR``, the
release before reduced decoding and the pool) on the same folder, right after.
Peak memory is the largest sum of the resident memory of the command and its decoding workers,
sampled every 50 ms from /proc. The load average is printed before and after.

    python -m benchmarks.bench_classify_folder --cases j2k jpeg small --compare-full
"""
from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared" / "data"
FILM = SHARED / "dicom" / "966_fixed.dcm"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.bench_classify_folder", description=__doc__.split("\n\n")[0])
    parser.add_argument("--cases", nargs="+", default=["j2k", "jpeg", "small"], choices=("j2k", "jpeg", "small"))
    parser.add_argument("--films", type=int, default=40, help="copies of the film in the j2k and jpeg folders")
    parser.add_argument("--small", type=int, default=500, help="cxr3 JPEG images in the small folder")
    parser.add_argument("--rounds", type=int, default=1, help="times each measurement is repeated, alternating")
    parser.add_argument("--compare-full", action="store_true", help="also time --full-decode --decode-workers 1")
    parser.add_argument("--make-only", action="store_true", help="only build the folders (and print where)")
    parser.add_argument("--baseline", type=Path, metavar="DIR", help="also time the cxr_engine of this source tree")
    parser.add_argument("--work", type=Path, default=Path(tempfile.gettempdir()) / "cxr-bench-folders")
    parser.add_argument("cli_args", nargs="*", help="extra cxr-classify options (after --)")
    args = parser.parse_args(argv)
    print(f"load average before: {os.getloadavg()}; {os.cpu_count()} cores", flush=True)
    for case in args.cases:
        folder = make_folder(case, args)
        if args.make_only:
            print(folder)
            continue
        count = sum(1 for p in folder.iterdir() if p.is_file())
        for round_number in range(1, args.rounds + 1):
            if case == "j2k":
                seconds = pydicom_full_decode(folder)
                print(f"[{case} round {round_number}] pydicom pixel_array of {count} files: {seconds:.2f} s", flush=True)
            if case == "small":
                rate = model_only_rate(min(count, 64))
                print(f"[{case} round {round_number}] the model alone (the engine's ONNX classifier, 8 prepared inputs "
                      f"per call): {rate:.1f} films/s, the ceiling for any folder", flush=True)
            cpu_before = _children_cpu_s()
            elapsed, peak = run_cli(folder, args.cli_args)
            cpu = _children_cpu_s() - cpu_before
            line = (f"[{case} round {round_number}] cxr-classify {count} files: {elapsed:.2f} s = {count / elapsed:.1f} films/s, "
                    f"CPU {cpu:.2f} s (command and workers), peak {peak / 2**20:.0f} MiB, load {os.getloadavg()[0]:.1f}")
            if case == "j2k":
                line += f"; ratio to pydicom's decode {elapsed / seconds:.2f}"
            print(line, flush=True)
            if args.baseline:
                cpu_before = _children_cpu_s()
                elapsed, peak = run_cli(folder, args.cli_args, cwd=args.baseline)
                cpu = _children_cpu_s() - cpu_before
                print(f"[{case} round {round_number}] baseline {args.baseline}: {elapsed:.2f} s = "
                      f"{count / elapsed:.1f} films/s, CPU {cpu:.2f} s, peak {peak / 2**20:.0f} MiB, "
                      f"load {os.getloadavg()[0]:.1f}", flush=True)
            if args.compare_full:
                elapsed, peak = run_cli(folder, ["--full-decode", "--decode-workers", "1", *args.cli_args])
                print(f"[{case} round {round_number}] cxr-classify --full-decode --decode-workers 1: {elapsed:.2f} s = "
                      f"{count / elapsed:.1f} films/s, peak {peak / 2**20:.0f} MiB", flush=True)
    print(f"load average after: {os.getloadavg()}")
    return 0


def make_folder(case: str, args) -> Path:
    # "_instances": folders of an older run held byte-identical copies, which cxr-classify now classifies once.
    folder = args.work / {"j2k": f"j2k_{args.films}_instances", "jpeg": f"jpeg_{args.films}_instances",
                          "small": f"small_{args.small}"}[case]
    if folder.exists():
        return folder
    partial = folder.with_name(folder.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True)
    if case == "j2k":
        for i in range(args.films):
            copy_as_instance(FILM, partial / f"film_{i:04d}.dcm")
    elif case == "jpeg":
        source = partial / "film_0000.dcm"
        write_jpeg_film(FILM, source)
        for i in range(1, args.films):
            copy_as_instance(source, partial / f"film_{i:04d}.dcm")
    else:
        images = sorted((SHARED / "cxr3" / "images").rglob("*.jpg"), key=lambda p: p.name)[: args.small]
        for image in images:
            shutil.copy(image, partial / image.name)
    partial.rename(folder)
    return folder


def copy_as_instance(source: Path, target: Path) -> None:
    """``source`` with a new SOP Instance UID (pixel data bytes unchanged) at ``target``."""
    import pydicom
    from pydicom.uid import generate_uid

    ds = pydicom.dcmread(source)
    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = generate_uid(entropy_srcs=[target.name])
    ds.save_as(target, enforce_file_format=True)


def write_jpeg_film(source: Path, target: Path) -> None:
    """``source``'s film as shown (default window, MONOCHROME2) in 8 bits, stored as JPEG baseline q90."""
    import io

    import numpy as np
    import pydicom
    from PIL import Image
    from pydicom.encaps import encapsulate
    from pydicom.uid import JPEGBaseline8Bit, generate_uid

    from cxr_engine.reading.read import read_image

    values = np.rint(read_image(source).display() * 255).astype(np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(values).save(buffer, format="JPEG", quality=90)
    ds = pydicom.dcmread(source)
    ds.file_meta.TransferSyntaxUID = JPEGBaseline8Bit
    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 8, 8, 7, 0
    for keyword in ("WindowCenter", "WindowWidth", "RescaleIntercept", "RescaleSlope", "PresentationLUTShape"):
        if keyword in ds:
            delattr(ds, keyword)
    ds.PixelData = encapsulate([buffer.getvalue()])
    ds["PixelData"].VR = "OB"
    ds.save_as(target, enforce_file_format=True)


def pydicom_full_decode(folder: Path) -> float:
    """Seconds for pydicom to decode every file of ``folder`` at full resolution, in a fresh process."""
    code = ("import sys, time, pathlib, pydicom\n"
            "t = time.perf_counter()\n"
            "for p in sorted(pathlib.Path(sys.argv[1]).iterdir()):\n"
            "    pydicom.dcmread(p).pixel_array\n"
            "print(time.perf_counter() - t)\n")
    return _number_from_fresh_process(code, str(folder))


def model_only_rate(images: int) -> float:
    """Films/s of the bundled default model on ONNX Runtime alone (batches of 8 of a prepared
    input, session already loaded; the first batch not counted), in a fresh process. An averaged
    model's film costs its members' passes one after the other."""
    code = ("import sys, time, numpy as np\n"
            "from cxr_engine.models.backends import create_classifier\n"
            "from cxr_engine.models.ensemble_card import networks\n"
            "from cxr_engine.models.model_card import default_card\n"
            "cards = networks(default_card())\n"
            "n = int(sys.argv[1]) // 8 * 8\n"
            "seconds = 0.0\n"
            "for member in cards:\n"
            "    c = create_classifier(member, backend='onnx').load()\n"
            "    s = member.input_size\n"
            "    x = np.random.default_rng(0).normal(size=(8, member.in_chans, s, s)).astype(np.float32)\n"
            "    c._logits(x)\n"
            "    t = time.perf_counter()\n"
            "    for _ in range(n // 8):\n"
            "        c._logits(x)\n"
            "    seconds += time.perf_counter() - t\n"
            "print(n / seconds)\n")
    return _number_from_fresh_process(code, str(images))


def _number_from_fresh_process(code: str, argument: str) -> float:
    """The number ``code`` prints last, run as ``python -c code argument`` in a fresh process (nothing
    imported or cached by this one)."""
    done = subprocess.run([sys.executable, "-c", code, argument], capture_output=True, text=True, check=True)
    return float(done.stdout.strip().splitlines()[-1])


def run_cli(folder: Path, extra: list[str], cwd: Path | None = None) -> tuple[float, int]:
    """(wall seconds from process start to exit, peak summed RSS bytes of the process tree);
    ``cwd``: run the ``cxr_engine`` found there instead of this one."""
    with tempfile.TemporaryDirectory(prefix="cxr-bench-") as temp:
        quiet = ["-q"] if cwd is None else []  # a baseline may predate -q
        command = [sys.executable, "-m", "cxr_engine", str(folder), "--csv", str(Path(temp) / "out.csv"), *quiet, *extra]
        started = time.perf_counter()
        process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, cwd=cwd)
        peak = [0]
        sampler = threading.Thread(target=_sample_memory, args=(process, peak), daemon=True)
        sampler.start()
        _, stderr = process.communicate()
        elapsed = time.perf_counter() - started
        sampler.join()
        if process.returncode not in (0, 1):
            raise RuntimeError(f"cxr-classify failed ({process.returncode}): {stderr[-2000:]}")
        with open(Path(temp) / "out.csv", encoding="utf-8") as handle:
            rows = handle.read().count("\n") - 1
        if rows != sum(1 for p in folder.iterdir() if p.is_file()):
            raise RuntimeError(f"cxr-classify wrote {rows} rows for {folder}")
    return elapsed, peak[0]


def _children_cpu_s() -> float:
    """User + system CPU seconds of this process's finished children (and theirs, once reaped)."""
    import resource

    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _sample_memory(process: subprocess.Popen, peak: list[int]) -> None:
    page = os.sysconf("SC_PAGE_SIZE")
    while process.poll() is None:
        total = sum(_rss_pages(pid) for pid in _tree(process.pid)) * page
        peak[0] = max(peak[0], total)
        time.sleep(0.05)


def _tree(root: int) -> list[int]:
    parents: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat", encoding="ascii", errors="replace") as handle:
                    fields = handle.read().rsplit(")", 1)[1].split()
                parents.setdefault(int(fields[1]), []).append(int(entry))
            except (OSError, IndexError, ValueError):
                continue
    found, queue = [], [root]
    while queue:
        pid = queue.pop()
        found.append(pid)
        queue += parents.get(pid, [])
    return found


def _rss_pages(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/statm", encoding="ascii") as handle:
            return int(handle.read().split()[1])
    except (OSError, IndexError, ValueError):
        return 0


if __name__ == "__main__":
    raise SystemExit(main())
