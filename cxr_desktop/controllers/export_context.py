"""What a PDF export needs from the app, gathered once when it starts, and the pages' data.

``ExportContext`` replaces reaching into the main window: the workspace (decoded films), the one
``ClassificationResults``, the loaded classifier (or why there is none) and the current film's
heat-map class. ``gather`` is the worker step that decodes and classifies what is missing.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from cxr_engine.errors import CxrError

from .results import ClassificationResults
from .workspace import StudyWorkspace


@dataclass(frozen=True)
class ExportContext:
    """The app's state an export reads; ``classifier`` None when no model is loaded (``no_model_reason``
    says why). ``current_path``/``current_class``: the film on screen and its heat-map's class
    (``""``: the predicted one); other films use the predicted class."""

    workspace: StudyWorkspace
    results: ClassificationResults
    classifier: object | None
    card: object | None  # cxr_engine.ModelCard
    no_model_reason: str
    current_path: Path | None
    current_class: str
    scope_limit: float | None
    image_check: Callable[[object], object]  # CxrImage -> ImageCheck or None

    def heatmap(self, path: Path):
        """The ``HeatmapResult`` already computed for ``path`` as it is (or would be) shown, or None."""
        return self.results.heatmap(path, self.current_class if Path(path) == self.current_path else "")

    def prediction(self, path: Path):
        return self.results.prediction(path)


def known_heatmaps(context: ExportContext, paths: list[Path]) -> dict[Path, object]:
    """The ``HeatmapResult``s already computed for ``paths`` (read on the thread that updates the results)."""
    return {path: heatmap_result for path in paths if (heatmap_result := context.heatmap(path)) is not None}


def gather(context: ExportContext, paths: list[Path], heatmap_results: dict[Path, object]):
    """Generator worker: ``(path, LoadedImage or None, HeatmapResult or None, reason)`` per film, in order.

    ``heatmap_results``: the heat-maps known when the export started (``known_heatmaps``). Films come from the
    workspace (decoded once, through its shared cache); what has no heat-map yet is classified with one
    by the engine's ``classify_files`` (one film at a time) from the film as the model reads it
    (``StudyWorkspace.model_image``, as classify-all and ``cxr-classify`` do: one probability per film),
    its heat-map put on the full-resolution film; or only decoded without a model.
    """
    from cxr_engine import classify_files
    from cxr_engine.models.classifier import heatmap_at_full_resolution

    from .classification import model_request

    workspace, classifier = context.workspace, context.classifier
    request = model_request(classifier.card) if classifier is not None else None
    items: dict[Path, object] = {}

    def read(path: Path):
        items[path] = workspace.load(path)
        return workspace.model_image(path, request)

    wanted = [path for path in paths if path not in heatmap_results] if classifier is not None else []
    events = (event for event in classify_files(wanted, classifier, heatmaps=True, batch_size=1, reader=read,
                                                checker=None)  # report_export checks each film itself
              if event.done)
    for path in paths:
        if classifier is not None and path not in heatmap_results:
            event = next(events)
            item = items.pop(path, None)
            heatmap_result = event.heatmap
            if heatmap_result is not None and item is not None:
                reduction = event.image.reduction // max(1, item.image.reduction)
                heatmap_result = heatmap_at_full_resolution(heatmap_result, reduction, item.image.shape)
            yield path, item if event.image is not None else None, heatmap_result, event.reason
            continue
        try:
            item = workspace.load(path)
        except CxrError as exc:
            yield path, None, None, getattr(exc, "reason", str(exc))
            continue
        yield path, item, heatmap_results.get(path), "" if path in heatmap_results else context.no_model_reason
