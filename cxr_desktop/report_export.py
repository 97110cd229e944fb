"""PDF export of one image or a whole study through ``cxr_engine.outputs.report``.

Three steps: a worker decodes and classifies what is not known yet (``controllers.export_context.gather``);
the GUI thread renders each image through an ``ImageScene`` exactly as the viewer draws it (window,
orientation, annotations, heat-map); a second worker writes the PDF atomically. What the export reads
of the app comes as an ``ExportContext`` (its data) and an ``ExportView`` (how films are drawn).
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from pathlib import Path

from PySide6.QtCore import QObject, QTimer, Signal

from cxr_engine.models.ensemble import disagreement_note
from cxr_engine.models.image_checks import correction_note, film_warnings
from cxr_engine.models.scope_score import film_out_of_scope
from cxr_engine.models.suitability import image_warnings
from cxr_engine.outputs.undecodable import escape_undecodable

from .controllers.export_context import ExportContext, gather, known_heatmaps
from .formatting import failure_reason
from .image_jobs import LoadedImage
from .image_scene import ImageScene
from .view_export import text_annotations_redacted
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
    #: The reader started it (the export dialog): when the PDF cannot be written, a dialog names the file
    #: and the reason and offers another file for the pages made. Off for automation (no one to ask).
    offer_another_file: bool = False


def write_pdf(request: ExportRequest, pages, card, left_out=()) -> Path:
    """Worker: the engine's atomic PDF writer; ``left_out`` (path, reason) gets a page of the PDF."""
    from cxr_engine.outputs.report import write_report

    return write_report(request.destination, pages, model_card=card, deidentify=request.deidentify,
                        reader_name=request.reader_name, app_version=_app_version(), left_out=left_out)


@dataclass(frozen=True)
class ExportView:
    """How films are drawn for the report: the film on screen as its ``scene`` shows it, the others
    with the viewer's heat-map settings, the shared annotations and the lung-fields decorations."""

    scene: ImageScene
    viewer: ViewerModel
    annotations: object  # the annotation store
    lungs: object  # LungFieldsController (decorate, report_lines)


class ReportExport(QObject):
    """One export run; ``finished(path)``, ``failed(message)`` or ``writeFailed(destination, reason)`` ends it
    (after ``writeFailed`` the pages are kept: ``write_to`` another file)."""

    progress = Signal(int, int)
    finished = Signal(object)
    failed = Signal(str)
    writeFailed = Signal(object, str)

    def __init__(self, context: ExportContext, view: ExportView, request: ExportRequest, parent: QObject | None = None):
        super().__init__(parent)
        self.context, self.view, self.request = context, view, request
        self.pages: list = []
        self.skipped: list[tuple[Path, str]] = []
        self.worker: Worker | None = None

    def start(self) -> Worker:
        paths = list(self.request.paths)
        self.worker = create_worker(gather, self.context, paths, known_heatmaps(self.context, paths))
        self.worker.yielded.connect(self._add_page)
        self.worker.returned.connect(lambda _: self._write())
        self.worker.errored.connect(lambda exc: self._fail(f"Export failed: {exc}"))
        self.worker.aborted.connect(lambda: self._fail("Export cancelled"))
        return self.worker.start()

    @while_alive
    def _add_page(self, value) -> None:
        path, item, heatmap_result, reason = value
        self.progress.emit(len(self.pages) + len(self.skipped) + 1, len(self.request.paths))
        if item is None:
            self.skipped.append((path, reason))
            return
        try:
            self.pages.append(self._page(path, item, heatmap_result, reason))
        except Exception as exc:
            logger.exception("rendering a report page failed")
            # the reason alone (a FileError's text leads with its path, which a de-identified PDF withholds)
            self.skipped.append((path, getattr(exc, "reason", None) or f"{type(exc).__name__}: {exc}"))

    def _page(self, path: Path, item: LoadedImage, heatmap_result, reason: str):
        from cxr_engine.outputs.report import ReportPage, source_burned_in_annotation

        context, view = self.context, self.view
        if path == context.current_path:
            scene = view.scene  # the image on screen: exactly as the reader set it up
        else:
            model = ViewerModel()
            scene = ImageScene(model, view.annotations)
            model.set_image(item.image, item.renderer)
            model.set_heatmap_opacity(view.viewer.heatmap_opacity)
            model.set_heatmap_visible(view.viewer.heatmap_visible)
            if heatmap_result is not None:
                model.set_heatmap(heatmap_result.heatmap, heatmap_result.target_class,
                                  heatmap_result.prediction.probability(heatmap_result.target_class))
                model.set_heatmap_style(view.viewer.heatmap_style)
            view.lungs.decorate(scene, path)
        # The scene renders at the physical aspect (non-square pixels already squared), so the
        # page must not stretch the panels again: pixel_aspect=1.0, not the image's own.
        # A de-identified page shows the notes redacted as the view export does (the page's text layer is
        # redacted by the report; these are pixels).
        with text_annotations_redacted(scene, item.image.metadata, self.request.deidentify):
            displayed = scene.render_image(RENDER_PX, numbered=True)  # the marks numbered as the page's list
        heat = scene.render_image(RENDER_PX, heatmap=True, annotations=False) if heatmap_result is not None else None
        prediction = heatmap_result.prediction if heatmap_result is not None else context.prediction(path)
        card = context.card
        check = context.image_check(item.image)
        scope = film_out_of_scope(check, prediction, context.scope_limit, item.image.metadata)
        # The same warnings as the CSV's column, in its order (``film_warnings``).
        corrected = correction_note(context.workspace.correction(path))
        # As the CSV row and the panel: the identical copies left out, another image claiming its UID (which its
        # Image UID may then mean); de-identified, without the paths and the UID.
        notes = context.workspace.file_notes(path, self.request.deidentify)
        return ReportPage(
            displayed=displayed, metadata=item.image.metadata, heatmap=heat, prediction=prediction,
            heatmap_class=heatmap_result.target_class if heatmap_result is not None else None,
            not_classified_reason="" if prediction is not None else reason,
            warnings=film_warnings(scope, check.warning if check is not None else None,
                                   image_warnings(item.image, card.input_size if card else None), corrected, notes,
                                   disagreement_note(card, prediction, scope) if prediction is not None else ""),
            comment=self.request.comment, file_name=path.name, pixel_aspect=1.0, heatmap_style=view.viewer.heatmap_style,
            out_of_scope=scope,
            measurements=(*view.lungs.report_lines(path), *scene.measurement_lines(numbered=True)),
            # A de-identified page says text burned into the film is not removed (and when the source says it has some):
            # as the decoder recorded it (no header is read here, on the GUI thread).
            burned_in_annotation=source_burned_in_annotation(item.image) if self.request.deidentify else "",
        )

    def write_to(self, destination: Path) -> Worker | None:
        """Write the pages already made to ``destination`` (the first file could not be written)."""
        self.request = replace(self.request, destination=Path(destination))
        return self._write()

    @while_alive
    def _write(self) -> Worker | None:
        if not self.pages:
            reasons = "; ".join(r for _, r in self.skipped) or "nothing to export"
            self.failed.emit(f"No page could be made: {reasons}")
            return None
        destination = self.request.destination
        writer = create_worker(write_pdf, self.request, list(self.pages), self.context.card, list(self.skipped))
        writer.returned.connect(self._done)
        writer.errored.connect(lambda exc: self._write_failed(destination, exc))
        self.worker = writer
        return writer.start()

    @while_alive
    def _write_failed(self, destination: Path, exc: Exception) -> None:
        self.writeFailed.emit(destination, failure_reason(exc))

    @while_alive
    def _done(self, path: Path) -> None:
        self.finished.emit(path)

    @while_alive
    def _fail(self, message: str) -> None:
        self.failed.emit(message)


def _app_version() -> str:
    """The program's version as every output states it (``cxr_engine.__version__``, which the DICOM outputs'
    Software Versions and series UIDs use too), not the installed distribution's metadata, which an editable
    install made before a version change still holds."""
    from cxr_engine import __version__

    return __version__


class PdfExports(QObject):
    """Starts the window's PDF exports and reports how each ended: ``exportFinished(path)`` (files left
    out go to ``problems``) or ``exportFailed(message)``, with a line in the status bar either way."""

    exportFinished = Signal(object)
    exportFailed = Signal(str)

    def __init__(self, context_source, view: ExportView, progress, problems, status_bar, parent: QObject | None = None):
        """``context_source()`` gives the ``ExportContext`` of the moment an export starts."""
        super().__init__(parent)
        self._context_source, self.view = context_source, view
        self.progress, self.problems, self.status_bar = progress, problems, status_bar
        self.export: ReportExport | None = None
        self._closing = False

    def close(self) -> None:
        """Report nothing more: the window is closing."""
        self._closing = True

    def start(self, request: ExportRequest) -> ReportExport | None:
        """Start the export, or None when its destination would write into a source folder
        (``StudyWorkspace.output_problem``): ``exportFailed`` then names the file and the reason."""
        context = self._context_source()
        reason = context.workspace.output_problem(request.destination, request.paths)
        if reason:
            message = f"The PDF was not written: {request.destination} {reason}"
            QTimer.singleShot(0, lambda: self._on_failed(message))  # after the caller has connected
            return None
        export = self.export = ReportExport(context, self.view, request, self)
        export.progress.connect(lambda done, total: self.progress.set_progress(done, total))
        export.finished.connect(lambda path: self._on_finished(export, path))
        export.failed.connect(self._on_failed)
        export.writeFailed.connect(lambda destination, reason: self._on_write_failed(export, destination, reason))
        self.progress.track("Exporting PDF", export.start())
        return export

    @while_alive
    def _on_write_failed(self, export: ReportExport, destination: Path, reason: str) -> None:
        """Nothing the reader made is lost silently: for an export they started, a dialog names the file and
        the reason and offers another file, where the pages already made are written."""
        message = f"The PDF could not be written to {destination}: {reason}."
        self.status_bar.showMessage(message, 10000)
        if export.request.offer_another_file:
            from .export_dialog import another_destination

            another = another_destination(self.parent(), export.context.workspace, destination,
                                          f"{message}\n\nChoose another file for the PDF.", export.request.paths)
            if another is not None:
                self.status_bar.showMessage(f"Writing the PDF to {another}…", 10000)
                self.progress.track("Exporting PDF", export.write_to(another))
                return
        self._on_failed(f"The PDF was not written: {message}")

    @while_alive
    def _on_finished(self, export: ReportExport, path: Path) -> None:
        for skipped_path, reason in export.skipped:
            self.problems.add(skipped_path, f"left out of the PDF: {reason}")
        left_out = len({skipped_path for skipped_path, _ in export.skipped})
        note = f" ({left_out} image(s) not included: listed on its last page and in Problems)" if left_out else ""
        self.status_bar.showMessage(f"PDF written: {escape_undecodable(path)}{note}", 10000)
        self.exportFinished.emit(path)

    @while_alive
    def _on_failed(self, message: str) -> None:
        self.status_bar.showMessage(message, 10000)
        self.exportFailed.emit(message)
