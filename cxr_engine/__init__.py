"""CXR Reader's engine: DICOM/PNG/JPEG reading and display, study scanning, models, inference, Grad-CAM.

Pure Python; never imports Qt. Heavy libraries (torch, timm, cv2) are imported lazily: importing
this package imports none of them, and each public name below loads its module on first use.

The public API (stable names; everything else is the engine's inside):

- ``read_image(path)`` → ``CxrImage``: one film, any supported file (``reading.read``).
- ``find_images(paths, exclude=())`` → ``FoundImages``: the images in files, folders and DICOMDIRs,
  the one discovery the CLI and the desktop share (``reading.discovery``).
- ``scan(path)`` → ``ScanResult``: a folder, file or DICOMDIR as Patient → Study → Series → Instance
  (``reading.scanning``).
- ``choose_card(model)`` / ``load_classifier(model, backend=, device=)``: the model card, and a loaded
  classifier on the chosen backend and device (``models.loading``).
- ``classify_files(files, classifier, heatmaps=False)`` → ``FileEvent`` per file and stage
  (``classification``).
- ``write_report(path, pages, model_card=...)``: the PDF report (``outputs.report``).
"""
from __future__ import annotations

import os as _os

__version__ = "0.2.0"

# Offline and private: ONNX Runtime's official builds (1.2x on Linux and macOS too) record usage events
# under ~/.cache/Microsoft/DeveloperTools and may upload them. Set before onnxruntime is first imported, this
# is its full opt-out (no events, device identifier, cache or uploader); worker processes inherit it. An
# administrator's own setting is kept. ``libraries.import_onnxruntime`` also switches its events off.
_os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")

#: Public name → the module that defines it.
_PUBLIC = {
    "read_image": "cxr_engine.reading.read",
    "find_images": "cxr_engine.reading.discovery",
    "FoundImages": "cxr_engine.reading.discovery",
    "scan": "cxr_engine.reading.scanning",
    "ScanResult": "cxr_engine.reading.scanning",
    "choose_card": "cxr_engine.models.loading",
    "load_classifier": "cxr_engine.models.loading",
    "classify_files": "cxr_engine.classification",
    "FileEvent": "cxr_engine.classification",
    "write_report": "cxr_engine.outputs.report",
    "ReportPage": "cxr_engine.outputs.report",
    "CxrImage": "cxr_engine.pixels.image",
    "ModelCard": "cxr_engine.models.model_card",
    "Prediction": "cxr_engine.models.classifier",
    "CxrError": "cxr_engine.errors",
    "ImageReadError": "cxr_engine.errors",
    "ModelError": "cxr_engine.errors",
}

__all__ = sorted(_PUBLIC)


def __getattr__(name: str):
    module = _PUBLIC.get(name)
    if module is None:
        raise AttributeError(f"module 'cxr_engine' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # later look-ups skip this function
    return value


def __dir__() -> list[str]:
    """The public API and ``__version__``; not the helpers, imports and subpackages the module also holds."""
    return sorted([*__all__, "__version__"])
