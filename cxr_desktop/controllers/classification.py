"""Classification without Qt: which model, loading it, one film's heat-map, and classify-all.

The functions named "worker" run in the Qt adapter's worker threads (``cxr_desktop.model_service``);
inference libraries (ONNX Runtime, or torch for the torch backend) are imported by them and nowhere
else in the app, so the main window appears before they load.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from cxr_engine import ModelCard, ModelError, choose_card
from cxr_engine.models.loading import MODEL_ENV

#: Images per forward pass in "classify all".
BATCH_SIZE = 8


@dataclass(frozen=True)
class ModelChoice:
    """The card to use, or None with the reason in words."""

    card: ModelCard | None
    message: str = ""


def choose_model(requested: str = "", models_dir: Path | None = None) -> ModelChoice:
    """``requested`` (name or card path; ``$CXR_MODEL_CARD`` when empty), else the best bundled
    model that meets the project's bar (the engine's ``choose_card``), or None with the reason in words.
    A below-bar model is used only when asked for by name."""
    try:
        return ModelChoice(choose_card(requested or None, models_dir))
    except ModelError as exc:
        if requested or os.environ.get(MODEL_ENV):
            return ModelChoice(None, f"The chosen model is not available: {exc}")
        return ModelChoice(None, "No model available: no bundled model meets the project's bar yet. "
                                 "Images can still be viewed; a test model can be chosen in Settings.")


def load(card: ModelCard, device: str, backend: str = "auto"):
    """Worker: the engine's ``load_classifier`` on ``backend`` (``cxr_engine.models.backends.BACKENDS``)
    and ``device``, falling back to the CPU when the device cannot be used; torch, when it runs, leaves
    a core to the GUI and the decoding workers (with every core busy in torch's OpenMP pool, decoding
    and inference slow each other down several times over).
    Returns (classifier, where it runs in words, the fallback warning or "")."""
    from cxr_engine import load_classifier
    from cxr_engine.models.loading import runtime_description

    classifier = load_classifier(card, backend=backend, device=device, cpu_fallback=True,
                                 threads=max(1, (os.cpu_count() or 2) - 1))
    return classifier, runtime_description(classifier), classifier.load_warning


def model_request(card: ModelCard):
    """The ``DecodeRequest`` a film is decoded with for ``card``'s model input, in the app as in
    ``cxr-classify`` (``DecodeRequest.for_model``)."""
    from cxr_engine.reading.reduced_decode import DecodeRequest

    return DecodeRequest.for_model(card.input_size, card.preprocessing_version)


def heatmap(classifier, image, target_class: str, workspace=None):
    """Worker: the ``HeatmapResult`` (prediction and heat-map) of one film for ``target_class``
    (``""``: the predicted class), the heat-map on ``image``'s pixel grid (the film shown).

    With ``workspace`` (a ``StudyWorkspace``) and a film from a file, the model reads the film as
    ``workspace.model_image`` gives it (``model_request``: the same model input as classify-all and
    ``cxr-classify``), so the panel, the tree and the PDF show one probability per film; the heat-map of
    that prediction is then put on the full-resolution grid (``heatmap_at_full_resolution``).
    """
    from cxr_engine.models.classifier import heatmap_at_full_resolution

    source = image
    if workspace is not None and getattr(image, "path", None) is not None:
        source = workspace.model_image(Path(image.path), model_request(classifier.card))
    result = classifier.predict_with_heatmap(source, target_class or None)
    if source is image:
        return result
    return heatmap_at_full_resolution(result, source.reduction // max(1, image.reduction), image.shape)


def classify_paths(classifier, paths: list[Path], workspace, batch_size: int = BATCH_SIZE, checks: bool = True):
    """Generator worker: yields ``(done, total, path, prediction or None, error or "", out_of_scope)`` per
    file, in order, from the engine's ``classify_files``, as ``cxr-classify`` classifies them.

    Files are read as ``workspace.model_image`` gives them: decoded at the resolution the model input
    needs (``DecodeRequest.for_model``) through the workspace's shared decode cache (in front of isolated
    decoding workers, so a damaged file cannot crash or hang the app and a film decoded before is not
    decoded again), corrected where the reader asked; with ``checks`` each is checked by the bundled image
    checks and gets its ``out_of_scope`` reasons (``""`` in scope) from the engine; they are classified
    ``batch_size`` at a time.
    """
    from cxr_engine import classify_files
    from cxr_engine.models.image_checks import default_checker

    checker = default_checker() if checks else None

    request = model_request(classifier.card)
    events = classify_files(paths, classifier, batch_size=batch_size,
                            reader=lambda path: workspace.model_image(path, request),
                            decode_threads=workspace.decoder.pool.workers, checker=checker)
    from cxr_engine.classification import NOT_CLASSIFIED

    from ..formatting import NOT_CLASSIFIED as NOT_CLASSIFIED_TEXT

    done, total = 0, len(paths)
    for event in events:
        if event.done:
            done += 1
            # As the shown film's (formatting.classification_problem): a film without image content is not a failure.
            reason = f"{NOT_CLASSIFIED_TEXT}: {event.reason}" if event.stage == NOT_CLASSIFIED else event.reason
            yield done, total, event.path, event.prediction, reason, event.out_of_scope
