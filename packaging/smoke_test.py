"""Smoke test of a built bundle, offscreen: ``python packaging/smoke_test.py dist/cxr-reader-lite``.

1. The folder: the lite bundle holds nothing of torch (``bundles.LITE_FORBIDDEN``); the full one
   holds torch and torchvision's operator libraries; on Linux no Qt library a plugin needs was
   stripped.
2. ``cxr-reader --bundle-info``: the frozen program imports what its variant promises, and decodes
   the sample study and the extra DICOMs with every pydicom plugin that decodes them from source.
   ``cxr-reader --segment-lungs``: the bundled lung model (ONNX Runtime) finds two plausible lungs
   in each sample-study film, masks at the film's size, without importing torch in the lite bundle.
   ``cxr-reader --dicom-outputs``: each sample-study film's Secondary Capture, Comprehensive SR and
   Encapsulated PDF (identified and de-identified) are written and read back, without torch.
3. The app opens the bundled sample study, classifies the first image (full: with the torch
   backend; lite: ONNX Runtime), writes a screenshot with the heat-map and the study's PDF, and
   exits 0. The PNG must decode, be window-sized and not blank; the PDF must name the classes.
4. The app opens each extra DICOM (default: JPEG-LS and 16-bit JPEG 2000 files from
   ``../shared/data/dicom`` when present) and writes a screenshot.

Writes ``smoke_<variant>.json`` (checks and timings) and the outputs to ``--out``; exit status 0
when every check passed. Times are wall-clock from process start, as seen by this script.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bundles import EXE_NAME, REPO, VARIANTS, forbidden_entries  # noqa: E402

CLASS_NAMES = ("Normal", "Pneumonia", "COVID-19")
MODEL = "efficientnet-lite0"
SHARED_DICOM = Path(os.environ.get("CXR_DATA", REPO.parent / "shared" / "data")) / "dicom"
EXTRA_DICOMS = ("RG1_JLSN.dcm", "JPEG2KLossless_1s_1f_u_16_16.dcm")  # JPEG-LS near-lossless, JPEG 2000 16-bit
WINDOW_MARK = "window shown"  # logged by cxr_desktop.app when the main window is shown
RESULT_MARK = "first classification after"  # logged by cxr_desktop.automation
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@dataclass
class AppRun:
    """One run of the app: exit status, when the window and the first result appeared (seconds
    from process start, ``None`` when not logged), total time and the log's tail."""

    command: list[str]
    code: int | None
    window_s: float | None = None
    first_result_s: float | None = None
    total_s: float = 0.0
    log_tail: str = ""


def executable(bundle: Path) -> Path:
    """The bundle's program (``cxr-reader`` or ``cxr-reader.exe``)."""
    for name in (EXE_NAME, EXE_NAME + ".exe"):
        if (bundle / name).is_file():
            return bundle / name
    raise FileNotFoundError(f"{bundle} holds no {EXE_NAME} program; build it with packaging/build.py")


def run_app(command: list[str], env: dict[str, str] | None = None, timeout_s: float = 600.0,
            cwd: Path | None = None) -> AppRun:
    """Run ``command``, timing the log lines that mark the window and the first classification."""
    started = time.perf_counter()
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env, cwd=cwd,
                            text=True, errors="replace", bufsize=1)
    run = AppRun([str(c) for c in command], None)
    lines: list[str] = []

    def read() -> None:
        for line in proc.stdout:
            now = time.perf_counter() - started
            lines.append(line)
            if run.window_s is None and WINDOW_MARK in line:
                run.window_s = round(now, 3)
            if run.first_result_s is None and RESULT_MARK in line:
                run.first_result_s = round(now, 3)

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        run.code = proc.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        lines.append(f"[smoke test] killed after {timeout_s:g} s\n")
    run.total_s = round(time.perf_counter() - started, 3)
    reader.join(timeout=10)
    run.log_tail = "".join(lines[-40:])
    return run


def check_png(path: Path, min_size: tuple[int, int] = (1000, 600)) -> list[str]:
    """Problems with a screenshot: missing, not a PNG that decodes, smaller than ``min_size``, blank."""
    if not path.is_file():
        return [f"{path.name}: not written"]
    if path.read_bytes()[:8] != PNG_SIGNATURE:
        return [f"{path.name}: not a PNG file"]
    import numpy as np
    from PIL import Image

    try:
        with Image.open(path) as image:
            image.load()
            pixels = np.asarray(image.convert("RGB"))
    except Exception as exc:
        return [f"{path.name}: does not decode ({exc})"]
    problems = []
    height, width = pixels.shape[:2]
    if width < min_size[0] or height < min_size[1]:
        problems.append(f"{path.name}: {width}x{height}, expected at least {min_size[0]}x{min_size[1]}")
    if float(pixels.std()) < 5.0:
        problems.append(f"{path.name}: blank (pixel standard deviation {pixels.std():.1f})")
    return problems


def pdf_text(path: Path) -> str:
    from pypdf import PdfReader

    return "\n".join(page.extract_text() or "" for page in PdfReader(str(path)).pages)


def check_pdf(path: Path, must_contain: tuple[str, ...] = CLASS_NAMES) -> list[str]:
    """Problems with a report: missing, not a PDF that parses, or without one of ``must_contain``."""
    if not path.is_file():
        return [f"{path.name}: not written"]
    if not path.read_bytes().startswith(b"%PDF-"):
        return [f"{path.name}: not a PDF file"]
    try:
        text = pdf_text(path)
    except Exception as exc:
        return [f"{path.name}: does not parse ({type(exc).__name__}: {exc})"]
    return [f"{path.name}: does not mention {word!r}" for word in must_contain if word not in text]


def check_info(info: dict, variant: str, reference: dict | None = None) -> list[str]:
    """Problems in ``--bundle-info`` output: a frozen program with the variant's libraries, and every
    decode that succeeds in ``reference`` (the same check run from source) also succeeding here."""
    problems = [] if info.get("frozen") else ["the program does not run frozen"]
    importable = info.get("importable", {})
    need = ["onnxruntime", "reportlab", "pydicom", "pylibjpeg", "openjpeg", "rle", "jpeg_ls", "gdcm",
            "highdicom", "pynetdicom"]
    absent = ["torch", "torchvision", "timm", "pytorch_grad_cam", "triton", "cv2"] if variant == "lite" else ["triton"]
    if variant == "full":
        need += ["torch", "torchvision", "timm", "pytorch_grad_cam", "cv2"]
    problems += [f"cannot import {name}" for name in need if not importable.get(name)]
    problems += [f"{name} is importable, but the {variant} bundle must not hold it"
                 for name in absent if importable.get(name)]
    for name, plugins in info.get("decoders", {}).items():
        if reference is not None and set(reference["decoders"].get(name, [])) - set(plugins):
            problems.append(f"{name}: decoders {sorted(reference['decoders'][name])} from source, only {plugins} frozen")
    for path, result in info.get("decoded", {}).items():
        name = Path(path).name
        if not result.get("engine", "").startswith("ok"):
            problems.append(f"{name}: the engine cannot read it: {result.get('engine')}")
        expected = (reference or {}).get("decoded", {}).get(path, {}).get("plugins", {})
        for plugin, outcome in expected.items():
            if outcome.startswith("ok") and not result["plugins"].get(plugin, "").startswith("ok"):
                problems.append(f"{name}: plugin {plugin} decodes it from source but not frozen: "
                                f"{result['plugins'].get(plugin, 'not available')}")
    return problems


def _check_films(info: dict, none_done: str, failed: str, check_film) -> list[str]:
    """The problems of a run's films (``info["films"]``: path -> result), in film order: ``none_done``
    when there is no film, ``<file name>: <failed>: <error>`` for a film whose result holds an error,
    else what ``check_film(file name, result)`` finds."""
    problems = [] if info.get("films") else [none_done]
    for path, result in info.get("films", {}).items():
        name = Path(path).name
        if result.get("error"):
            problems.append(f"{name}: {failed}: {result['error']}")
        else:
            problems += check_film(name, result)
    return problems


def check_lungs(info: dict, variant: str) -> list[str]:
    """Problems in ``--segment-lungs`` output for the sample study (frontal chest films, each must be found)."""
    if info.get("error"):
        return [f"the lung model does not load: {info['error']}"]

    def film(name: str, result: dict) -> list[str]:
        if result.get("mask") != result.get("image"):
            return [f"{name}: lung mask {result.get('mask')} is not the image's size {result.get('image')}"]
        if not result.get("found"):
            return [f"{name}: lung fields not found ({result.get('warning')})"]
        return []

    problems = _check_films(info, "--segment-lungs segmented no film", "lung segmentation failed", film)
    if variant == "lite" and info.get("torch_imported"):
        problems.append("lung segmentation imported torch in the lite bundle")
    return problems


def check_dicom_outputs(info: dict, variant: str) -> list[str]:
    """Problems in ``--dicom-outputs`` output: every film got its SC, SR and PDF, identified (in the
    film's study) and de-identified (in a new study), each read back; the network module loads."""
    if info.get("error"):
        return [f"the DICOM outputs could not start: {info['error']}"]

    def film(name: str, result: dict) -> list[str]:
        problems = []
        for who, study in (("identified", "True"), ("deidentified", "False")):
            for kind in ("sc", "sr", "pdf"):
                outcome = result.get(f"{who}/{kind}", "missing")
                if not outcome.startswith("ok") or not outcome.endswith(f"same study: {study}"):
                    problems.append(f"{name}: {who} {kind}: {outcome}")
        return problems

    problems = _check_films(info, "--dicom-outputs wrote nothing", "DICOM outputs failed", film)
    if not str(info.get("network", "")).startswith("ok"):
        problems.append(f"the DICOM network module: {info.get('network')}")
    if variant == "lite" and info.get("torch_imported"):
        problems.append("the DICOM outputs imported torch in the lite bundle")
    return problems


def check_folder(bundle: Path, variant: str) -> list[str]:
    """Problems with the bundle folder itself (what it holds, missing Qt libraries)."""
    internal = bundle / "_internal"
    if not internal.is_dir():
        return [f"{bundle} has no _internal folder: not a PyInstaller 6 one-folder bundle"]
    problems = []
    if variant == "lite":
        problems += [f"lite bundle holds {hit}" for hit in forbidden_entries(internal)]
    else:
        if not (internal / "torch").is_dir():
            problems.append("full bundle holds no torch")
        if not any((internal / "torchvision").glob("_C_stable.*")):
            problems.append("full bundle lacks torchvision/_C_stable (operator torchvision::nms would be missing)")
        problems += [f"full bundle holds {hit}" for hit in forbidden_entries(internal, ("triton", "triton/*"))]
    problems += missing_qt_libraries(internal)
    return problems


def missing_qt_libraries(internal: Path) -> list[str]:
    """Linux: Qt, PySide6 or shiboken libraries that a bundled Qt plugin or module needs but the
    bundle lacks (a stripped library still in use). Other platforms: not checked."""
    if not sys.platform.startswith("linux") or shutil.which("ldd") is None:
        return []
    env = dict(os.environ, LD_LIBRARY_PATH=str(internal))
    problems = set()
    for lib in sorted(internal.joinpath("PySide6").rglob("*.so*")):
        if lib.is_symlink() or not lib.is_file():
            continue
        out = subprocess.run(["ldd", str(lib)], capture_output=True, text=True, env=env).stdout
        for line in out.splitlines():
            name = line.split("=>")[0].strip()
            if "not found" in line and name.startswith(("libQt6", "libpyside6", "libshiboken6")):
                problems.add(f"{lib.relative_to(internal).as_posix()} needs {name}, which the bundle lacks")
    return sorted(problems)


#: pydicom's own 12-bit JPEG Extended (Process 2 & 4) file: only imagecodecs decodes it, and that
#: package loads its codec extensions lazily, so a bundle can import it and still fail to decode.
PYDICOM_EXTRAS = ("JPGExtended.dcm",)


def pydicom_test_files(names: tuple[str, ...] = PYDICOM_EXTRAS) -> list[Path]:
    """Those of ``names`` that the installed pydicom ships (its test data, no download)."""
    try:
        import pydicom.data
    except ImportError:
        return []
    folder = Path(pydicom.data.__file__).parent / "test_files"
    return [folder / n for n in names if (folder / n).is_file()]


def extra_dicoms(names: list[str] | None) -> list[Path]:
    if names is not None:
        return [Path(n) for n in names]
    return [SHARED_DICOM / n for n in EXTRA_DICOMS if (SHARED_DICOM / n).is_file()] + pydicom_test_files()


#: A 1600 x 1000 offscreen screen: the first window fits the screen it opens on, and Qt's default
#: offscreen screen (800 x 800) would give a smaller screenshot than a desktop does.
OFFSCREEN_SCREEN = Path(__file__).resolve().parents[1] / "docs" / "offscreen_1600x1000.json"


def app_env(settings: Path) -> dict[str, str]:
    """Offscreen, private settings, and nothing that would point the bundle at the checkout."""
    env = {k: v for k, v in os.environ.items() if k not in ("CXR_MODEL_CARD", "CXR_RESOURCES", "PYTHONPATH")}
    env.update(QT_QPA_PLATFORM=f"offscreen:configfile={OFFSCREEN_SCREEN}", CXR_DESKTOP_SETTINGS=str(settings))
    return env


@dataclass
class SmokeReport:
    variant: str
    bundle: str
    problems: list[str] = field(default_factory=list)
    runs: dict[str, dict] = field(default_factory=dict)

    @property
    def passed(self) -> bool:
        return not self.problems


def smoke_test(bundle: Path, variant: str, out: Path, extras: list[Path], timeout_s: float = 600.0) -> SmokeReport:
    report = SmokeReport(variant, str(bundle))
    out.mkdir(parents=True, exist_ok=True)
    exe = executable(bundle)
    report.problems += check_folder(bundle, variant)

    study = bundle / "_internal" / "resources" / "samples" / "study"
    dicoms = [str(p) for p in sorted(study.glob("*.dcm"))] + [str(p) for p in extras]
    with tempfile.TemporaryDirectory() as tmp:
        env = app_env(Path(tmp) / "settings.ini")
        info_path, reference_path = out / f"bundle_info_{variant}.json", Path(tmp) / "reference.json"
        run = run_app([str(exe), "--bundle-info", str(info_path), *dicoms], env, timeout_s)
        report.runs["bundle_info"] = asdict(run)
        source = run_app([sys.executable, str(REPO / "packaging" / "cxr_reader.py"), "--bundle-info",
                          str(reference_path), *dicoms], dict(env, PYTHONPATH=str(REPO)), timeout_s, cwd=REPO)
        if run.code != 0 or not info_path.is_file():
            report.problems.append(f"--bundle-info failed (exit {run.code}): {run.log_tail[-1500:]}")
        else:
            reference = json.loads(reference_path.read_text()) if source.code == 0 else None
            report.problems += check_info(json.loads(info_path.read_text()), variant, reference)

        lungs_path = out / f"lungs_{variant}.json"
        lungs_path.unlink(missing_ok=True)
        samples = [str(p) for p in sorted(study.glob("*.dcm"))]
        run = run_app([str(exe), "--segment-lungs", str(lungs_path), *samples], env, timeout_s)
        report.runs["segment_lungs"] = asdict(run)
        if run.code != 0 or not lungs_path.is_file():
            report.problems.append(f"--segment-lungs failed (exit {run.code}): {run.log_tail[-1500:]}")
        else:
            report.problems += check_lungs(json.loads(lungs_path.read_text()), variant)

        dicom_path = out / f"dicom_outputs_{variant}.json"
        dicom_path.unlink(missing_ok=True)
        dicom_folder = out / f"dicom_outputs_{variant}"
        shutil.rmtree(dicom_folder, ignore_errors=True)
        run = run_app([str(exe), "--dicom-outputs", str(dicom_path), str(dicom_folder), *samples], env, timeout_s)
        report.runs["dicom_outputs"] = asdict(run)
        if run.code != 0 or not dicom_path.is_file():
            report.problems.append(f"--dicom-outputs failed (exit {run.code}): {run.log_tail[-1500:]}")
        else:
            report.problems += check_dicom_outputs(json.loads(dicom_path.read_text()), variant)

        # The sample study: screenshot with the heat-map and the first study's PDF, in one run.
        shot, pdf = out / f"screenshot_{variant}.png", out / f"report_{variant}.pdf"
        for stale in (shot, pdf):
            stale.unlink(missing_ok=True)
        backend = ["--backend", "torch"] if variant == "full" else []
        run = run_app([str(exe), str(study), "--model", MODEL, *backend, "--screenshot", str(shot), "--overlay",
                       "--export-pdf", str(pdf), "--timeout", str(int(timeout_s))], env, timeout_s + 30)
        report.runs["sample_study"] = asdict(run)
        if run.code != 0:
            report.problems.append(f"sample study run exited {run.code}: {run.log_tail[-2000:]}")
        report.problems += check_png(shot) + check_pdf(pdf)
        if variant == "full" and "PyTorch" not in run.log_tail:
            report.problems.append("the full bundle did not report running the model on PyTorch")

        # Each extra DICOM on its own, through the app (ONNX Runtime in both bundles: backend auto).
        for dicom in extras:
            folder = Path(tmp) / dicom.stem
            folder.mkdir()
            shutil.copy(dicom, folder / dicom.name)
            shot = out / f"screenshot_{variant}_{dicom.stem}.png"
            shot.unlink(missing_ok=True)
            run = run_app([str(exe), str(folder), "--model", MODEL, "--screenshot", str(shot),
                           "--timeout", str(int(timeout_s))], env, timeout_s + 30)
            report.runs[dicom.name] = asdict(run)
            if run.code != 0:
                report.problems.append(f"{dicom.name}: exited {run.code}: {run.log_tail[-1500:]}")
            report.problems += check_png(shot)
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("bundle", type=Path, help="the bundle folder, e.g. dist/cxr-reader-lite")
    parser.add_argument("--variant", choices=VARIANTS, help="default: from the folder name")
    parser.add_argument("--out", type=Path, default=REPO / "out" / "smoke", help="where outputs and the report go")
    parser.add_argument("--dicom", nargs="*", metavar="FILE", help="extra DICOM files to open (default: JPEG-LS and "
                        "JPEG 2000 files from the shared data, when present)")
    parser.add_argument("--timeout", type=float, default=600.0, help="seconds per app run")
    args = parser.parse_args(argv)
    variant = args.variant or next((v for v in VARIANTS if args.bundle.name.endswith(v)), None)
    if variant is None:
        parser.error("cannot tell the variant from the folder name; give --variant")
    report = smoke_test(args.bundle, variant, args.out, extra_dicoms(args.dicom), args.timeout)
    summary = asdict(report) | {"passed": report.passed}
    (args.out / f"smoke_{variant}.json").write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    for name, run in report.runs.items():
        print(f"{name}: exit {run['code']}, window {run['window_s']} s, first result {run['first_result_s']} s, "
              f"total {run['total_s']} s")
    for problem in report.problems:
        print("PROBLEM:", problem)
    print(f"smoke test of {args.bundle} ({variant}): {'passed' if report.passed else 'FAILED'}")
    return 0 if report.passed else 1


if __name__ == "__main__":
    raise SystemExit(main())
