"""PDF export of one image or a whole study through ``cxr_engine.outputs.report``.

Three steps: a worker decodes and classifies what is not cached yet; the GUI thread renders
each image through an ``ImageScene`` exactly as the viewer draws it (window, orientation,
annotations, heat-map); a second worker writes the PDF atomically.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from PySide6.QtCore import QObject, Signal

from cxr_engine.errors import CxrError
from cxr_engine.models.suitability import image_warnings

from .image_jobs import LoadedImage, load_image
from .image_scene import ImageScene
from .viewer_model import ViewerModel
from .workers import Worker, create_worker, while_alive

logger = logging.getLogger(__name__)

#: Longest side of the images handed to the report (it downsizes further for the page).
RENDER_PX = 1600


@dataclass(frozen=True)
class ExportRequest:
    """What the reader asked for in the export dialog."""

    paths: tuple[Path, ...]
    destination: Path
    deidentify: bool
    comment: str = ""
    reader_name: str = ""


def gather(paths, loaded: dict, cams: dict, classifier, no_model_reason: str):
    """Generator worker: ``(path, LoadedImage or None, CamResult or None, reason)`` per image, in order.

    Uses what the viewer already decoded and classified; the rest is decoded and classified, heat-map
    included, by the engine's ``classify_files`` (one image at a time), or only decoded without a model.
    """
    from cxr_engine import classify_files

    items: dict[Path, LoadedImage] = {}

    def read(path: Path):
        items[path] = loaded.get(path) or load_image(path)
        return items[path].image

    wanted = [path for path in paths if path not in cams] if classifier is not None else []
    events = (event for event in classify_files(wanted, classifier, heatmaps=True, batch_size=1, reader=read)
              if event.done)
    for path in paths:
        if classifier is not None and path not in cams:
            event = next(events)
            item = items.pop(path, None)
            yield path, item if event.image is not None else None, event.heatmap, event.reason
            continue
        try:
            item = loaded.get(path) or load_image(path)
        except CxrError as exc:
            yield path, None, None, getattr(exc, "reason", str(exc))
            continue
        yield path, item, cams.get(path), "" if path in cams else no_model_reason


def write_pdf(request: ExportRequest, pages, card) -> Path:
    """Worker: the engine's atomic PDF writer."""
    from cxr_engine.outputs.report import write_report

    return write_report(request.destination, pages, model_card=card, deidentify=request.deidentify,
                            reader_name=request.reader_name, app_version=_app_version())


def _out_of_scope(check, prediction, limit, view_position: str) -> str:
    from cxr_engine.models.scope_score import out_of_scope

    return out_of_scope(check.reasons if check is not None else "", prediction.probabilities if prediction else None,
                        limit, view_position, getattr(prediction, "scope_reasons", ""))


class ReportExport(QObject):
    """One export run; ``finished(path)`` or ``failed(message)`` ends it."""

    progress = Signal(int, int)
    finished = Signal(object)
    failed = Signal(str)

    def __init__(self, window, request: ExportRequest):
        super().__init__(window)
        self.window, self.request = window, request
        self.pages: list = []
        self.skipped: list[tuple[Path, str]] = []
        self.worker: Worker | None = None

    def start(self) -> Worker:
        w = self.window
        loaded = {p: w.images.get(p) for p in self.request.paths if w.images.get(p) is not None}
        cams = {}
        for path in self.request.paths:
            target = w.result.cam_class if path == w.viewer.path else ""
            cam = w.service.cached_cam(path, target)
            if cam is not None:
                cams[path] = cam
        classifier = w.service.classifier if w.service.ready else None
        reason = w.result.message if w.service.card is None else "the model is not loaded"
        self.worker = create_worker(gather, list(self.request.paths), loaded, cams, classifier, reason)
        self.worker.yielded.connect(self._add_page)
        self.worker.returned.connect(lambda _: self._write())
        self.worker.errored.connect(lambda exc: self._fail(f"Export failed: {exc}"))
        self.worker.aborted.connect(lambda: self._fail("Export cancelled"))
        return self.worker.start()

    @while_alive
    def _add_page(self, value) -> None:
        path, item, cam, reason = value
        self.progress.emit(len(self.pages) + len(self.skipped) + 1, len(self.request.paths))
        if item is None:
            self.skipped.append((path, reason))
            return
        try:
            self.pages.append(self._page(path, item, cam, reason))
        except Exception as exc:
            logger.exception("rendering a report page failed")
            self.skipped.append((path, f"{type(exc).__name__}: {exc}"))

    def _page(self, path: Path, item: LoadedImage, cam, reason: str):
        from cxr_engine.outputs.report import ReportPage

        w = self.window
        if path == w.viewer.path:
            scene = w.scene  # the image on screen: exactly as the reader set it up
        else:
            model = ViewerModel()
            scene = ImageScene(model, w.annotations)
            model.set_image(item.image, item.renderer)
            model.set_heatmap_opacity(w.viewer.heatmap_opacity)
            model.set_heatmap_visible(w.viewer.heatmap_visible)
            if cam is not None:
                model.set_heatmap(cam.heatmap, cam.target_class, cam.prediction.probability(cam.target_class))
                model.set_heatmap_style(w.viewer.heatmap_style)
            w.lungs.decorate(scene, path)
        # The scene renders at the physical aspect (non-square pixels already squared), so the
        # page must not stretch the panels again: pixel_aspect=1.0, not the image's own.
        displayed = scene.render_image(RENDER_PX)
        heat = scene.render_image(RENDER_PX, heatmap=True, annotations=False) if cam is not None else None
        prediction = cam.prediction if cam is not None else w.service.predictions.get(path)
        return ReportPage(
            displayed=displayed, metadata=item.image.metadata, heatmap=heat, prediction=prediction,
            cam_target=cam.target_class if cam is not None else None,
            not_classified_reason="" if prediction is not None else reason,
            warnings=image_warnings(item.image, w.service.card.input_size if w.service.card else None),
            comment=self.request.comment, file_name=path.name, pixel_aspect=1.0, heatmap_style=w.viewer.heatmap_style,
            out_of_scope=_out_of_scope(w.classification.image_check(item.image), prediction, w.result.scope_limit,
                                       item.image.metadata.view_position),
            measurements=(*w.lungs.report_lines(path), *scene.measurement_lines()),
        )

    @while_alive
    def _write(self) -> None:
        if not self.pages:
            reasons = "; ".join(r for _, r in self.skipped) or "nothing to export"
            self.failed.emit(f"No page could be made: {reasons}")
            return
        writer = create_worker(write_pdf, self.request, list(self.pages), self.window.service.card)
        writer.returned.connect(self._done)
        writer.errored.connect(lambda exc: self._fail(f"The PDF could not be written: {exc}"))
        self.worker = writer
        writer.start()

    @while_alive
    def _done(self, path: Path) -> None:
        self.finished.emit(path)

    @while_alive
    def _fail(self, message: str) -> None:
        self.failed.emit(message)


def _app_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("cxr-reader")
    except PackageNotFoundError:
        return ""
