"""Which optional libraries this installation has (the lite bundle ships without torch, a source
install may lack onnxruntime), answered without importing them: importing torch takes seconds."""
from __future__ import annotations

import importlib.util


def library_installed(module: str) -> bool:
    """Whether ``module`` (a top-level or dotted name, e.g. ``"onnxruntime"``) can be imported here;
    found with ``importlib.util.find_spec``, which imports at most its parent packages. A name that
    is not a valid module name, or whose parent package fails on import, counts as not installed."""
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


def import_onnxruntime():
    """``onnxruntime``, imported with its telemetry events switched off (``disable_telemetry_events``: Windows'
    trace events; on other systems ``ORT_DISABLE_TELEMETRY``, set when ``cxr_engine`` is imported, already
    keeps it from starting). Every use of ONNX Runtime in the engine imports it through here."""
    import onnxruntime

    disable = getattr(onnxruntime, "disable_telemetry_events", None)
    if disable is not None:
        disable()
    return onnxruntime
