"""The viewer's lung fields: the outline toggle and the cardiothoracic ratio tool.

Segmentation runs in a worker (``lung_jobs.lung_job``) the first time either is switched on for an
image, and its result is kept for the few most recent images. The outline and the CTR lines are
overlay items of the ``ImageScene`` (children of the image item); when the plausibility check
fails, ``status`` carries the engine's warning instead of an outline. Neither is offered on a film
that is not a projection radiograph, nor on one the image checks find inverted or turned
(``suitability.lung_fields_refusal``; ``refusal`` says why): once the reader views it corrected, the
lung fields are found again on the corrected film, the one on screen (``forget``). The reader's CTR lines are
kept per image (``CtrState``) and go into the PDF (``report_lines``); lines the reader moved are also kept on this
PC beside the film's marks (``keeper``, the window's ``AnnotationAutosave``: by the film's bytes, on the film as
stored), so the film shows them again, "adjusted by the reader", after the window is closed or another folder
opened (the lung fields are then found again, and the reader's lines put on the model's proposal).
"""
from __future__ import annotations

import logging
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from PySide6.QtCore import QObject, Signal

from cxr_engine.models.cardiothoracic import CardiothoracicRatio, Line, projection_text, report_line
from cxr_engine.models.suitability import lung_fields_refusal

from .lung_items import CtrOverlayItem, LungOutlineItem
from .lung_jobs import LungJobResult, lung_job
from .viewer_model import ViewerModel
from .workers import Worker, create_worker, while_alive

logger = logging.getLogger(__name__)

#: Lung results kept (a mask is one byte per pixel of the film).
CACHE_SIZE = 4
WORKING = "Finding the lung fields…"


@dataclass
class CtrState:
    """One image's ratio: as the model proposed it and as the reader left it."""

    proposed: CardiothoracicRatio
    current: CardiothoracicRatio
    view_position: str

    @property
    def adjusted(self) -> bool:
        return (self.current.thoracic, self.current.cardiac) != (self.proposed.thoracic, self.proposed.cardiac)

    def report_line(self) -> str:
        return report_line(self.current, self.view_position, self.adjusted)


class LungFieldsController(QObject):
    """Keeps the lung outline and the CTR lines of the current image in step with the toggles.

    ``changed`` fires whenever ``status``, ``ctr_reason`` or the current ratio changes (the panel
    mirrors them); ``resultReady(path)`` once an image's lung fields are shown (or found missing, or
    refused: only upright projection radiographs are segmented, ``suitability.lung_fields_refusal``).
    ``check(image)`` gives the image checks' verdict (``ImageCheck`` or None) on the film as shown, in
    the worker; the window passes the classification's, the one its banner shows. ``keeper`` (optional; the
    window's ``AnnotationAutosave``) keeps the lines the reader moved (``keep_ctr``) and gives them back
    (``ctr_for``); its ``filmsForgotten`` (another folder opens) drops what is known of the films here.
    """

    changed = Signal()
    resultReady = Signal(object)
    outlineVisibleChanged = Signal(bool)
    ctrVisibleChanged = Signal(bool)

    def __init__(self, viewer: ViewerModel, scene, segment: Callable | None = None, parent: QObject | None = None,
                 check: Callable | None = None, keeper=None):
        super().__init__(parent)
        self.viewer, self.scene, self.segment, self.check = viewer, scene, segment, check
        self.keeper = keeper
        self.outline_visible = False
        self.ctr_visible = False
        self.status = ""
        self.ctr_reason = ""
        #: Why the current film gets neither outline nor ratio (``""``: they are offered).
        self.refusal = ""
        self.results: OrderedDict[Path, LungJobResult] = OrderedDict()
        self.ctr_states: dict[Path, CtrState] = {}
        self.outline_item: LungOutlineItem | None = None
        self.ctr_item: CtrOverlayItem | None = None
        self._worker: Worker | None = None
        self._worker_path: Path | None = None
        self._stale: set[Worker] = set()  # workers whose film was replaced while they ran
        viewer.imageChanged.connect(self.refresh)
        if keeper is not None:
            keeper.filmsForgotten.connect(self.forget_all)

    # ------------------------------------------------------------------ toggles
    def set_outline_visible(self, visible: bool) -> None:
        if visible != self.outline_visible:
            self.outline_visible = visible
            self.outlineVisibleChanged.emit(visible)
            self.refresh()

    def set_ctr_visible(self, visible: bool) -> None:
        if visible != self.ctr_visible:
            self.ctr_visible = visible
            self.ctrVisibleChanged.emit(visible)
            self.refresh()

    @property
    def current_result(self) -> LungJobResult | None:
        path = self.viewer.path
        return self.results.get(Path(path)) if path is not None else None

    @property
    def current_ctr(self) -> CtrState | None:
        path = self.viewer.path
        return self.ctr_states.get(Path(path)) if path is not None and self.ctr_item is not None else None

    # ------------------------------------------------------------------ showing
    def refresh(self) -> None:
        """Redraw the overlays for the current image and the toggles (segmenting first if needed)."""
        self._remove_items()
        self.status = self.ctr_reason = self.refusal = ""
        image = self.viewer.image
        if image is None or not (self.outline_visible or self.ctr_visible):
            self.changed.emit()
            return
        refusal = lung_fields_refusal(image)
        if refusal:  # not a projection radiograph: nothing to segment
            self.status = self.ctr_reason = self.refusal = refusal
            self.changed.emit()
            self.resultReady.emit(Path(image.path))
            return
        result = self.current_result
        if result is None:
            self.status = WORKING
            self._start(image)
            self.changed.emit()
            return
        if result.refusal:  # inverted or turned as shown
            self.status = self.ctr_reason = self.refusal = result.refusal
            self.changed.emit()
            return
        fields = result.fields
        if not fields.found:
            self.status = fields.warning or ""
        elif self.outline_visible:
            self.outline_item = LungOutlineItem(result.contours)
            self.scene.add_overlay(self.outline_item)
            self.status = f"Lung fields outlined ({fields.model_name or 'lung model'})"
        if self.ctr_visible:
            self._show_ctr(result)
        self.changed.emit()

    def _show_ctr(self, result: LungJobResult) -> None:
        image = self.viewer.image
        if result.ctr is None:
            self.ctr_reason = result.ctr_reason
            return
        state = self.ctr_states.get(result.path)
        if state is None:
            state = CtrState(result.ctr, self._kept_ctr(result.path, result.ctr), image.metadata.view_position)
            self.ctr_states[result.path] = state
        self.ctr_item = make_ctr_item(state, lambda ctr, path=result.path: self._on_dragged(path, ctr))
        self.scene.add_overlay(self.ctr_item)

    def _on_dragged(self, path: Path, ctr: CardiothoracicRatio) -> None:
        state = self.ctr_states.get(path)
        if state is not None:
            state.current = ctr
            self._keep(path, state)
            self.changed.emit()

    def reset_ctr(self) -> None:
        """Put the current image's lines back where the model proposed them."""
        state = self.current_ctr
        if state is not None:
            state.current = state.proposed
            self._keep(Path(self.viewer.path), state)
            self.refresh()

    def _kept_ctr(self, path: Path, proposed: CardiothoracicRatio) -> CardiothoracicRatio:
        """``proposed`` with the lines the reader left on ``path``'s film (kept by ``keeper``), if any."""
        lines = self.keeper.ctr_for(path) if self.keeper is not None else None
        if lines is None:
            return proposed
        return proposed.with_lines(Line(*lines["thoracic"]), Line(*lines["cardiac"]))

    def _keep(self, path: Path, state: CtrState) -> None:
        """Have ``keeper`` keep the reader's lines on ``path``'s film (or forget them: back to the proposal)."""
        if self.keeper is None:
            return
        ctr = state.current
        self.keeper.keep_ctr(path, {"thoracic": (ctr.thoracic.start, ctr.thoracic.end),
                                    "cardiac": (ctr.cardiac.start, ctr.cardiac.end)} if state.adjusted else None)

    def _remove_items(self) -> None:
        for item in (self.outline_item, self.ctr_item):
            if item is not None:
                self.scene.remove_overlay(item)
        self.outline_item = self.ctr_item = None

    # ------------------------------------------------------------------ the worker
    def _start(self, image) -> None:
        path = Path(image.path)
        if self._worker is not None and self._worker_path == path and not self._worker.done:
            return  # already on it
        worker = create_worker(lung_job, image, self.segment, self.check)
        worker.returned.connect(lambda result, w=worker: self._on_result(result, w))
        worker.errored.connect(lambda exc, p=path, w=worker: self._on_failed(p, exc, w))
        self._worker, self._worker_path = worker, path
        worker.start()

    def forget(self, path: Path) -> None:
        """Drop what is known of ``path``'s lung fields and CTR lines (a job still running on it is
        ignored): its film was replaced, e.g. shown corrected, so they are found again on the new one."""
        path = Path(path)
        self.results.pop(path, None)
        self.ctr_states.pop(path, None)
        if self._worker is not None and self._worker_path == path:
            self._stale.add(self._worker)
            self._worker = None

    def forget_all(self) -> None:
        """Drop what is known of every film's lung fields and CTR lines (another folder opens: a film may show
        otherwise, e.g. no longer corrected, or have been replaced); the lines the reader moved come back
        from ``keeper`` when the film is shown again."""
        for path in {*self.results, *self.ctr_states, *([self._worker_path] if self._worker_path else [])}:
            self.forget(path)

    @while_alive
    def _on_result(self, result: LungJobResult, worker: Worker | None = None) -> None:
        if worker in self._stale:
            self._stale.discard(worker)
            return
        self.results[result.path] = result
        self.results.move_to_end(result.path)
        while len(self.results) > CACHE_SIZE:
            self.results.popitem(last=False)
        if self.viewer.path is not None and Path(self.viewer.path) == result.path:
            self.refresh()
            self.resultReady.emit(result.path)

    @while_alive
    def _on_failed(self, path: Path, exc: Exception, worker: Worker | None = None) -> None:
        if worker in self._stale:
            self._stale.discard(worker)
            return
        logger.warning("lung fields failed for one image: %s", exc)
        if self.viewer.path is not None and Path(self.viewer.path) == path:
            self.status = f"Lung fields could not be computed: {getattr(exc, 'reason', None) or exc}"
            self.changed.emit()
            self.resultReady.emit(path)

    # ------------------------------------------------------------------ export
    def report_lines(self, path: Path) -> tuple[str, ...]:
        """The PDF's measurement lines for ``path`` (the CTR while the tool is on)."""
        state = self.ctr_states.get(Path(path))
        return (state.report_line(),) if self.ctr_visible and state is not None else ()

    def decorate(self, scene, path: Path) -> None:
        """Draw ``path``'s outline and CTR lines, as the viewer would, on another ``ImageScene``
        (a report page of an image that is not on screen)."""
        result = self.results.get(Path(path))
        if self.outline_visible and result is not None and result.fields is not None and result.fields.found:
            scene.add_overlay(LungOutlineItem(result.contours))
        state = self.ctr_states.get(Path(path))
        if self.ctr_visible and state is not None:
            scene.add_overlay(make_ctr_item(state))


def make_ctr_item(state: CtrState, on_change=None) -> CtrOverlayItem:
    """The overlay item for a ratio as the reader left it, captioned PA / AP (flagged while it is an unusual
    proposal the reader has not adjusted)."""
    return CtrOverlayItem(state.current, projection_text(state.view_position), on_change, proposed=state.proposed)
