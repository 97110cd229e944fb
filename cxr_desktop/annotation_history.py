"""Undo and redo of annotation edits, for the whole window (a ``QUndoStack``).

``RecordedAnnotationStore`` is the window's annotation store: every add, move, text edit and
deletion a scene writes into it is recorded as an undo step. Undo and redo write the store back
and emit ``changed(path)`` so that the scenes showing that image redraw its annotations. The
successive positions of one drag make one step (merged until ``seal``, called when the mouse
button is released over a scene).
"""
from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QEvent, QObject, Signal
from PySide6.QtGui import QUndoCommand, QUndoStack

from .annotation_model import Annotation, AnnotationStore

_MOVE_ID = 1801  # QUndoCommand.id() of edits that may merge with the next one


class _Edit(QUndoCommand):
    """One recorded edit: the store before (``None`` = absent) and after, for one annotation."""

    def __init__(self, history: "AnnotationHistory", path: Path, before: Annotation | None,
                 after: Annotation | None, text: str):
        super().__init__(text)
        self.history, self.path, self.before, self.after = history, path, before, after
        self.serial = history.serial
        self._applied = True  # recorded after the scene made the change

    def id(self) -> int:
        return _MOVE_ID if self.before is not None and self.after is not None else -1

    def mergeWith(self, other: QUndoCommand) -> bool:
        if not isinstance(other, _Edit) or other.serial != self.serial or other.path != self.path:
            return False
        if self.after is None or other.before is None or other.before.id != self.after.id:
            return False
        self.after = other.after
        return True

    def redo(self) -> None:
        if self._applied:
            self._applied = False
            return
        self.history.apply(self.path, self.before, self.after)

    def undo(self) -> None:
        self.history.apply(self.path, self.after, self.before)


class RecordedAnnotationStore(AnnotationStore):
    """An ``AnnotationStore`` that records every change in its ``history`` (when one is set)."""

    def __init__(self):
        super().__init__()
        self.history: AnnotationHistory | None = None
        self._replaying = False

    def add(self, path: Path, annotation: Annotation) -> Annotation:
        super().add(path, annotation)
        if self.history is not None and not self._replaying:
            self.history.record_add(path, annotation)
        return annotation

    def update(self, path: Path, annotation: Annotation) -> None:
        before = self.get(path, annotation.id)
        super().update(path, annotation)
        if self.history is not None and not self._replaying and before is not None:
            self.history.record_change(path, before, annotation)

    def remove(self, path: Path, annotation_id: int) -> None:
        before = self.get(path, annotation_id)
        super().remove(path, annotation_id)
        if self.history is not None and not self._replaying and before is not None:
            self.history.record_remove(path, before)

    def get(self, path: Path, annotation_id: int) -> Annotation | None:
        return next((a for a in self.for_path(path) if a.id == annotation_id), None)

    def replay(self, path: Path, old: Annotation | None, new: Annotation | None) -> None:
        """Replace ``old`` by ``new`` (either may be None) without recording it."""
        self._replaying = True
        try:
            if new is None:
                if old is not None:
                    self.remove(path, old.id)
            elif self.get(path, new.id) is None:
                self.add(path, new)
            else:
                self.update(path, new)
        finally:
            self._replaying = False


class AnnotationHistory(QObject):
    """The undo stack of annotation adds, deletions, moves and text edits of ``store``."""

    changed = Signal(object)  # Path whose annotations an undo or redo changed

    def __init__(self, store: RecordedAnnotationStore, parent: QObject | None = None):
        super().__init__(parent)
        self.store = store
        self.stack = QUndoStack(self)
        self.serial = 0
        store.history = self

    def watch(self, scene) -> None:
        """Seal a drag when the mouse is released over ``scene``, and redraw it after undo/redo."""
        scene.installEventFilter(self)
        self.changed.connect(lambda path, s=scene: s.reload_annotations() if s.model.path == path else None)

    def eventFilter(self, obj, event):
        if event.type() == QEvent.Type.GraphicsSceneMouseRelease:
            self.seal()
        return False

    def record_add(self, path: Path, annotation: Annotation) -> None:
        self.seal()
        self.stack.push(_Edit(self, Path(path), None, annotation, f"add {annotation.kind}"))
        self.seal()

    def record_remove(self, path: Path, annotation: Annotation) -> None:
        self.seal()
        self.stack.push(_Edit(self, Path(path), annotation, None, f"delete {annotation.kind}"))
        self.seal()

    def record_change(self, path: Path, before: Annotation, after: Annotation) -> None:
        """A move or an edit; successive changes of one annotation merge until ``seal``."""
        if before != after:
            self.stack.push(_Edit(self, Path(path), before, after, f"move {after.kind}"))

    def remap(self, path: Path, moved) -> None:
        """Every recorded state of ``path``'s annotations becomes ``moved(annotation)``: when the film is shown
        turned or flipped and its marks move with it (not an undo step), undoing an earlier edit must put a
        mark where it then lay on the anatomy, not at the coordinates of the film as it was shown before."""
        path = Path(path)
        for index in range(self.stack.count()):
            edit = self.stack.command(index)
            if isinstance(edit, _Edit) and edit.path == path:
                edit.before = None if edit.before is None else moved(edit.before)
                edit.after = None if edit.after is None else moved(edit.after)

    def seal(self) -> None:
        """End the current drag: the next change starts a new undo step."""
        self.serial += 1

    def apply(self, path: Path, old: Annotation | None, new: Annotation | None) -> None:
        """Replace ``old`` by ``new`` in the store (either may be None) and say so."""
        self.store.replay(path, old, new)
        self.changed.emit(path)
