"""Choosing the inference backend: torch (``inference.Classifier``) or ONNX Runtime (``onnx_backend.OnnxClassifier``).

Both offer the same interface: name, classes, card, device, device_description(), load(),
preprocess(), predict(images), predict_with_heatmap(image, target_class), close().
"""
from __future__ import annotations

import logging
import os
import sys

from ..errors import ModelError
from ..libraries import library_installed
from .model_card import ModelCard

logger = logging.getLogger(__name__)

BACKENDS = ("auto", "torch", "onnx")


def create_classifier(card: ModelCard, backend: str = "auto", device: str = "auto"):
    """A classifier for ``card`` on ``backend`` (see ``choose_backend`` for ``auto``); nothing is loaded yet.
    For an ensemble card an ``ensemble.EnsembleClassifier`` whose members run on that backend and device.

    ``device`` is ``auto``, ``cpu`` or ``cuda[:N]``. Raises ``ModelError`` when the backend's library
    or the card's ONNX file is missing, ``ValueError`` for a bad backend or an unusable device.
    """
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {', '.join(BACKENDS)}, got {backend!r}")
    from .ensemble_card import EnsembleCard

    if isinstance(card, EnsembleCard):
        from .ensemble import EnsembleClassifier

        if backend == "auto":
            backend = choose_backend(card, device)
        return EnsembleClassifier(card, [create_classifier(m, backend, device) for m in card.member_cards])
    if backend == "auto":
        backend = choose_backend(card, device)
        logger.info("backend auto: using %s for model %s", backend, card.name)
    if backend == "onnx":
        return _onnx_classifier(card, device)
    if not library_installed("torch"):
        raise ModelError("PyTorch is not installed here; use the ONNX backend"
                         + ("" if card.onnx_file else f" (model {card.name!r} has no ONNX export yet)"))
    from .torch_backend import Classifier

    return Classifier(card, device=device)


def choose_backend(card: ModelCard, device: str = "auto") -> str:
    """``torch`` when torch can use a GPU (or ``device`` asks for CUDA); else ``onnx`` when the card
    names an ONNX file (an ensemble: every member's card does) and onnxruntime is installed; else
    ``torch`` on the CPU. An ensemble's members all run on the backend chosen here."""
    if device.startswith("cuda") or (device == "auto" and _torch_has_gpu()):
        return "torch"
    cards = getattr(card, "member_cards", None) or [card]
    if all(c.onnx_file for c in cards) and library_installed("onnxruntime"):
        return "onnx"
    return "torch"


def _onnx_classifier(card: ModelCard, device: str):
    if not library_installed("onnxruntime"):
        raise ModelError("onnxruntime is not installed here; use the torch backend")
    from .onnx_backend import CPU_PROVIDERS, OnnxClassifier

    if device in ("auto", "cpu"):
        return OnnxClassifier(card, CPU_PROVIDERS)
    from ..libraries import import_onnxruntime

    onnxruntime = import_onnxruntime()

    if device not in ("cuda", "cuda:0") or "CUDAExecutionProvider" not in onnxruntime.get_available_providers():
        raise ValueError(f"ONNX Runtime here cannot run on {device!r}; use cpu, or the torch backend for a GPU")
    return OnnxClassifier(card, ("CUDAExecutionProvider", *CPU_PROVIDERS))


def _torch_has_gpu() -> bool:
    """Whether torch is installed and sees a GPU. Importing torch takes seconds, so a machine whose
    GPU driver library cannot even be loaded is answered without it."""
    if not library_installed("torch") or not gpu_driver_present():
        return False
    import torch

    return torch.cuda.is_available()


def gpu_driver_present() -> bool:
    """Whether the NVIDIA driver library (or, on Linux, the ROCm kernel driver) is present."""
    import ctypes

    if sys.platform.startswith("linux") and os.path.exists("/dev/kfd"):
        return True
    names = {"win32": ("nvcuda.dll",), "darwin": ()}.get(sys.platform, ("libcuda.so.1",))
    for name in names:
        try:
            ctypes.CDLL(name)
            return True
        except OSError:
            continue
    return False
