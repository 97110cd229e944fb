"""Model choice and loading, the same for every face (CLI, desktop, scripts).

:func:`choose_card` turns a name, a card path, ``$CXR_MODEL_CARD`` or nothing into a model card;
:func:`load_classifier` turns that into a loaded classifier on the chosen backend and device.
"""
from __future__ import annotations

import logging
import os
import sys
from pathlib import Path

from ..errors import ModelError
from .model_card import ModelCard, below_bar_text, default_card, find_card, is_classifier_card, list_bundled

logger = logging.getLogger(__name__)

#: A card path or bundled model name that overrides the default choice (tests, kiosks, scripts).
MODEL_ENV = "CXR_MODEL_CARD"


def choose_card(model: str | os.PathLike[str] | ModelCard | None = None, models_dir: Path | None = None) -> ModelCard:
    """The model card to use: ``model`` (a ``ModelCard`` or ``EnsembleCard``, a bundled model name or a card
    ``.json`` path; an ensemble card is chosen like any other),
    else ``$CXR_MODEL_CARD``, else the best bundled model that meets the project's bar.

    A model below the bar is used only when named (logged as a warning). Raises ``ModelError`` (its
    message names the model or card file and says why): no such model, an unreadable or inconsistent
    card (an unknown ``preprocessing_version`` included), or no bundled model that meets the bar.
    """
    if is_classifier_card(model):
        model.validate()
        return model
    requested = str(model) if model else os.environ.get(MODEL_ENV, "")
    if requested:
        card = find_card(requested, models_dir)
        if not card.meets_bar:
            logger.warning("%s For testing only.", below_bar_text(card, f"model {card.name}"))
        return card
    card = default_card(models_dir)
    if card is None:
        bundled = ", ".join(c.name for c in list_bundled(models_dir)) or "none"
        raise ModelError(f"no bundled model meets the project's bar; choose one by name (bundled: {bundled})")
    return card


def load_classifier(model: str | os.PathLike[str] | ModelCard | None = None, *, backend: str = "auto",
                    device: str = "auto", threads: int | None = None, cpu_fallback: bool = False,
                    models_dir: Path | None = None):
    """A loaded classifier for ``model`` (see :func:`choose_card`) on ``backend`` and ``device``.

    ``backend`` is ``auto`` (torch on a GPU, else ONNX Runtime when the card has an ONNX export, else
    torch on the CPU), ``torch`` or ``onnx`` (``cxr_engine.models.backends``); ``device`` is ``auto``,
    ``cpu`` or ``cuda[:N]``. ``threads`` sets torch's intra-op thread count when the torch backend
    runs (None leaves torch's default). With ``cpu_fallback`` a device that cannot be used gives a
    classifier on the CPU and the reason in its ``load_warning``; without, it raises.

    The weights are checked against the card's sha256 and loaded without pickle. The returned object
    has ``card``, ``name``, ``classes``, ``device``, ``device_description()``, ``predict(images)`` (a
    list of ``Prediction``), ``predict_with_heatmap(image, target_class=None)`` (a ``HeatmapResult`` whose
    ``heatmap`` is float32 in the image's rows × columns) and ``close()``.

    Raises:
        ModelError: no usable card (see :func:`choose_card`), the backend's library or the card's ONNX
            file is missing, or the weights do not match the card.
        ValueError: an unknown backend, or (without ``cpu_fallback``) a device that cannot be used.
    """
    from .backends import BACKENDS, create_classifier

    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {', '.join(BACKENDS)}, got {backend!r}")
    card = choose_card(model, models_dir)
    warning = ""
    try:
        classifier = create_classifier(card, backend=backend, device=device)
        _ = classifier.device  # torch resolves (and refuses) the device here
    except ValueError as exc:
        if not cpu_fallback or device == "cpu":
            raise
        warning = f"{exc}; using the CPU"
        logger.warning("%s: %s", card.name, warning)
        classifier = create_classifier(card, backend=backend, device="cpu")
    if threads is not None and "torch" in sys.modules and _is_torch(classifier):
        import torch

        torch.set_num_threads(max(1, threads))
    classifier.load()
    classifier.load_warning = warning
    return classifier


def runtime_description(classifier) -> str:
    """Where ``classifier`` runs, in words (``device_description()``), with the PyTorch version for the torch backend."""
    text = classifier.device_description()
    if _is_torch(classifier):
        import torch

        text += f" (PyTorch {torch.__version__.split('+')[0]})"
    return text


def _is_torch(classifier) -> bool:
    if "torch" not in sys.modules:
        return False
    from .ensemble import EnsembleClassifier
    from .torch_backend import Classifier

    if isinstance(classifier, EnsembleClassifier):
        return all(_is_torch(member) for member in classifier.members)
    return isinstance(classifier, Classifier)
