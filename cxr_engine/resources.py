"""Where bundled resources (models, sample studies, icons) live, in a checkout or a bundle."""
from __future__ import annotations

import os
import sys
from pathlib import Path


def resources_dir() -> Path:
    """``$CXR_RESOURCES``, else a PyInstaller bundle's ``resources/``, else the checkout's."""
    override = os.environ.get("CXR_RESOURCES")
    if override:
        return Path(override)
    bundle = getattr(sys, "_MEIPASS", None)
    if bundle:
        return Path(bundle) / "resources"
    return Path(__file__).resolve().parents[1] / "resources"


def models_dir() -> Path:
    return resources_dir() / "models"


def samples_dir() -> Path:
    return resources_dir() / "samples"
