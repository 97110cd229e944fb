"""The one owner of classification results in the app: each film's prediction and its heat-maps.

The result panel, the study tree, the comparison viewports, the PDF export and the DICOM send all
read from here; nothing else keeps a prediction. A heat-map comes with the prediction of the same
forward pass (``HeatmapResult``), so storing one stores the other.
"""
from __future__ import annotations

from collections import OrderedDict
from pathlib import Path
from typing import Callable

#: Heat-maps are full-resolution float32 arrays; keep only a few.
HEATMAP_CACHE_SIZE = 6


def _key(path: Path | str | None) -> Path | None:
    return Path(path) if path is not None else None  # None: an image without a file (tests, previews)


class ClassificationResults:
    """Predictions per film (all kept: a few numbers each) and the last few heat-maps per
    (film, target class); ``""`` as the class means the predicted one.

    ``subscribe(callback)``: ``callback(path, prediction)`` runs after each new prediction.
    """

    def __init__(self, heatmap_cache_size: int = HEATMAP_CACHE_SIZE):
        self.heatmap_cache_size = heatmap_cache_size
        self._predictions: dict[Path, object] = {}
        self._heatmaps: OrderedDict[tuple[Path, str], object] = OrderedDict()
        self._listeners: list[Callable[[Path, object], None]] = []

    def subscribe(self, callback: Callable[[Path, object], None]) -> None:
        self._listeners.append(callback)

    def prediction(self, path: Path | None):
        """The ``Prediction`` of ``path``'s film, or None when it was not classified."""
        return self._predictions.get(_key(path))

    def heatmap(self, path: Path, target_class: str = ""):
        """The ``HeatmapResult`` (prediction and heat-map) of ``path`` for ``target_class``, or None."""
        return self._heatmaps.get((Path(path), target_class))

    def add_prediction(self, path: Path | None, prediction) -> None:
        self._predictions[_key(path)] = prediction
        for callback in list(self._listeners):
            callback(_key(path), prediction)

    def add_heatmap(self, path: Path, requested_class: str, heatmap_result) -> None:
        """Store ``heatmap_result`` (a ``HeatmapResult``) under the class asked for and under its own target class,
        and its prediction."""
        path = Path(path)
        self._heatmaps[(path, requested_class)] = heatmap_result
        self._heatmaps[(path, heatmap_result.target_class)] = heatmap_result
        while len(self._heatmaps) > self.heatmap_cache_size:
            self._heatmaps.popitem(last=False)
        self.add_prediction(path, heatmap_result.prediction)

    def forget(self, path: Path) -> None:
        """Drop what is known of ``path``'s film (its image was replaced, e.g. shown corrected)."""
        for key in [key for key in self._heatmaps if key[0] == Path(path)]:
            del self._heatmaps[key]
        self._predictions.pop(Path(path), None)

    def clear(self) -> None:
        self._predictions.clear()
        self._heatmaps.clear()
