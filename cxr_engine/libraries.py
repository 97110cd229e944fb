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
