"""Reader annotations kept per image for the session, in image pixel coordinates. No Qt here.

Annotations live only in memory (and in exported PDFs as drawn); they are never written into
the source files.
"""
from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, field, replace
from pathlib import Path

ARROW, TEXT, ELLIPSE, RECTANGLE, RULER, ANGLE = "arrow", "text", "ellipse", "rectangle", "ruler", "angle"
KINDS = (ARROW, TEXT, ELLIPSE, RECTANGLE, RULER, ANGLE)
#: Kinds whose label is a measurement (length, angle, or ROI statistics): ``measurements.label_for``.
MEASURED = (RULER, ANGLE, ELLIPSE, RECTANGLE)

_ids = itertools.count(1)

Point = tuple[float, float]


@dataclass(frozen=True)
class Annotation:
    """One mark: ``points`` are (x, y) = (column, row) in image pixels.

    Text has one point (its anchor); an angle three (one arm's end, the vertex, the other arm's
    end); every other kind two (start/end or opposite corners).
    """

    kind: str
    points: tuple[Point, ...]
    text: str = ""
    id: int = field(default_factory=lambda: next(_ids))

    def __post_init__(self):
        if self.kind not in KINDS:
            raise ValueError(f"unknown annotation kind {self.kind!r}; known: {', '.join(KINDS)}")
        expected = 1 if self.kind == TEXT else 3 if self.kind == ANGLE else 2
        if len(self.points) != expected:
            raise ValueError(f"a {self.kind} needs {expected} point(s), got {len(self.points)}")

    def moved(self, dx: float, dy: float) -> "Annotation":
        """The same annotation translated by ``dx``, ``dy`` pixels."""
        return replace(self, points=tuple((x + dx, y + dy) for x, y in self.points))


@dataclass(frozen=True)
class Length:
    """A measured distance and its unit (``mm`` when the image is calibrated, else ``px``)."""

    value: float
    unit: str
    note: str = ""

    def __str__(self) -> str:
        digits = 1 if self.unit == "mm" else 0
        return f"{self.value:.{digits}f} {self.unit}{self.note}"


def measure(start: Point, end: Point, spacing_mm: tuple[float, float] | None, spacing_source: str | None = None) -> Length:
    """Distance between two image points; ``spacing_mm`` is (row, column) spacing."""
    dx, dy = end[0] - start[0], end[1] - start[1]
    if spacing_mm:
        row_mm, col_mm = spacing_mm
        note = " (detector)" if spacing_source == "ImagerPixelSpacing" else ""
        return Length(math.hypot(dx * col_mm, dy * row_mm), "mm", note)
    return Length(math.hypot(dx, dy), "px")


class AnnotationStore:
    """Annotations per image path; ``listeners`` (callables taking the path) hear of every change (the app
    keeps the marks on disk through one: ``annotation_autosave``)."""

    def __init__(self):
        self._by_path: dict[Path, dict[int, Annotation]] = {}
        self.listeners: list = []

    def _tell(self, path: Path) -> None:
        for listener in self.listeners:
            listener(Path(path))

    def for_path(self, path: Path) -> list[Annotation]:
        """The annotations of one image, oldest first."""
        return list(self._by_path.get(Path(path), {}).values())

    def add(self, path: Path, annotation: Annotation) -> Annotation:
        self._by_path.setdefault(Path(path), {})[annotation.id] = annotation
        self._tell(path)
        return annotation

    def update(self, path: Path, annotation: Annotation) -> None:
        """Replace the stored annotation with the same id (after a move or an edit)."""
        items = self._by_path.get(Path(path), {})
        if annotation.id in items:
            items[annotation.id] = annotation
            self._tell(path)

    def remove(self, path: Path, annotation_id: int) -> None:
        if self._by_path.get(Path(path), {}).pop(annotation_id, None) is not None:
            self._tell(path)

    def forget(self, path: Path) -> None:
        """Drop ``path``'s annotations from memory without telling the listeners (they are kept elsewhere)."""
        self._by_path.pop(Path(path), None)

    def paths(self) -> list[Path]:
        """The images that have annotations in memory."""
        return [path for path, items in self._by_path.items() if items]

    def count(self, path: Path) -> int:
        return len(self._by_path.get(Path(path), {}))
