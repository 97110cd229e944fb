"""Unattended runs for tests and docs: open, wait for the first classification, screenshot, PDF
and/or the shown result as JSON, quit.

Each output is written as soon as what it shows is ready: the first film's result and heat-map (and its lung
fields when asked); a screenshot also waits for the thumbnails of the study tree's rows in view, never for the
whole folder's (a folder of 13,891 films took half a minute more to decode them all). The time limit's message
names what was still awaited. The paths opened are a script's: they do not join the reader's recent folders.

The run ends with ``QApplication.exit(code)``: 0 on success, 1 with a logged reason otherwise
(nothing to show, no readable image, model failure, a model named with ``--model`` that cannot be
used, export failure or the time limit). The first
image that can be read is used: unreadable ones before it are skipped, each named in the log, by the app's own
rule for opening a folder (``study_opening.StudyOpening.first_failed``: the same cap, and nothing skipped when the
decoding process cannot start).
"""
from __future__ import annotations

import json
import logging
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from PySide6.QtCore import QBuffer, QIODevice, QObject, QTimer
from PySide6.QtWidgets import QApplication

from cxr_engine.outputs.atomic import write_bytes_atomic
from cxr_engine.outputs.undecodable import escape_undecodable

from . import layout_state
from .formatting import no_image_text
from .report_export import ExportRequest
from .result_model import NO_MODEL

logger = logging.getLogger(__name__)

#: How often a screenshot's wait for the thumbnails in view looks again, in milliseconds.
THUMBNAIL_POLL_MS = 100


@dataclass(frozen=True)
class AutomationTask:
    """What to produce: a screenshot, a PDF of the first study and/or the result shown for the
    first image as JSON (``result_json``, see ``shown_result``); with the lung outline and/or the
    cardiothoracic ratio's lines on the first image when asked."""

    screenshot: Path | None = None
    overlay: bool = False
    pdf: Path | None = None
    deidentify: bool = False
    timeout_s: float = 300.0
    result_json: Path | None = None
    lung_outline: bool = False  # outline the lung fields (waits for them)
    ctr: bool = False  # show the cardiothoracic ratio's lines (waits for them)
    heatmap_style: str = "colour"  # or "outline" (viewer_model.HEATMAP_STYLES)
    model_named: bool = False  # --model was given: a model that cannot be used fails the run


class Automation(QObject):
    """Drives a ``MainWindow`` through one task; ``exit_code`` holds the outcome."""

    def __init__(self, window, task: AutomationTask):
        super().__init__(window)
        self.window, self.task = window, task
        self.exit_code: int | None = None
        layout_state.for_unattended_run(window)  # not the last session's toggles, size or viewports
        window.opening.remember_opened = False  # nor the reader's recent folders and last folder
        self._started = time.perf_counter()
        self._first: Path | None = None
        self._acted = False
        self._scanned = False
        self._awaiting = ""  # once acting: what the outputs still wait for (``_pending``)
        window.scanFinished.connect(self._on_scanned)
        window.imageShown.connect(self._on_image)
        window.opening.noFilmShown.connect(self._on_no_film)
        window.heatmapShown.connect(self._on_heatmap)
        window.classification.problem.connect(self._on_not_classified)
        window.modelUnavailable.connect(self._on_no_model)
        window.exportFinished.connect(self._on_exported)
        window.exportFailed.connect(self._fail)
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.timeout.connect(lambda: self._fail(
            f"timed out after {task.timeout_s:g} s waiting for {self._pending()}"))
        self._timer.start(int(task.timeout_s * 1000))
        # An exception in any slot (Qt prints it and goes on) ends an unattended run at once, with status 1,
        # rather than leaving the caller waiting for the time limit.
        self._previous_hook = previous_hook = sys.excepthook

        def fail_on_exception(kind, value, traceback) -> None:
            previous_hook(kind, value, traceback)
            self._fail(f"unexpected error: {kind.__name__}: {value}")

        self._hook = sys.excepthook = fail_on_exception

    # ------------------------------------------------------------------ waiting
    def _pending(self) -> str:
        """What the run waits for now, in words for the time limit's message."""
        if self._first is None:
            return "the first film to be shown" if self._scanned else "the scan of the paths given"
        if self._acted:
            return self._awaiting or f"the outputs of {self._first} to be made"
        if not self.window.classification.settled:
            return f"the model to load, to classify {self._first}"
        return f"the classification and heat-map of {self._first}"

    def _on_scanned(self, results) -> None:
        self._scanned = True
        if not self.window.browser.image_paths():
            self._fail(no_image_text(results))

    def _on_image(self, path: Path) -> None:
        if self._first is None:
            self._first = path
        if self.window.result.state == NO_MODEL:
            self._proceed_without_model()

    def _on_no_film(self, why: str) -> None:
        """Opening stopped looking for a readable first image (each unreadable one skipped is named in the log)."""
        if self._first is None:
            self._fail(why)

    def _on_no_model(self, message: str) -> None:
        if self.window.result.state != NO_MODEL:
            self._fail(message)
        elif self._first is not None:
            self._proceed_without_model()

    def _proceed_without_model(self) -> None:
        if self.task.model_named:
            self._fail("the model named with --model cannot be used: " + self.window.result.message)
            return
        if self.task.overlay:
            self._fail("--overlay needs a model, and none is available: " + self.window.result.message)
            return
        logger.warning("no model available: the output shows the image without a classification")
        self._act()

    def _on_heatmap(self, path: Path) -> None:
        if path == self._first:
            logger.info("first classification after %.2f s", time.perf_counter() - self._started)
            self._act()

    def _on_not_classified(self, path: Path, problem: str) -> None:
        """The first film gets no class (e.g. it holds no image): the outputs show the panel's message
        (``shown_result``'s ``message``) instead of a class; ``--overlay`` has no heat-map to show."""
        if self._first is None or Path(path) != self._first or self._acted:
            return
        if self.task.overlay:
            self._fail(f"--overlay needs a heat-map, and {path} has none: {problem}")
            return
        logger.warning("%s: %s", path, problem)
        QTimer.singleShot(0, self._act)  # once the panel shows the message

    # ------------------------------------------------------------------ acting
    def _act(self) -> None:
        if self._acted:
            return
        self._acted = True
        if self.task.overlay:
            self.window.viewer.set_heatmap_style(self.task.heatmap_style)
            self.window.viewer.set_heatmap_visible(True)
        # A screenshot shows the thumbnails in view; the layout settles before the outputs are made.
        then = lambda: self._wait_for_thumbnails(lambda: QTimer.singleShot(200, self._produce))  # noqa: E731
        if self.task.lung_outline or self.task.ctr:
            self._wait_for_lungs(then)
        else:
            then()

    def _wait_for_lungs(self, then) -> None:
        """Switch the lung outline / CTR on and go on once the first image's lung fields are shown."""
        lungs = self.window.lungs
        called = []
        self._awaiting = f"the lung fields of {self._first}"

        def once(*_):
            if not called:
                called.append(True)
                self._awaiting = ""
                then()

        lungs.resultReady.connect(once)
        lungs.set_outline_visible(self.task.lung_outline)
        lungs.set_ctr_visible(self.task.ctr)
        if lungs.current_result is not None:
            once()

    def _wait_for_thumbnails(self, then) -> None:
        """With a screenshot, call ``then`` once the thumbnails of the study tree's rows in view have come (each a
        thumbnail or a reason, ``StudyOpening.thumbnails_to_come``), else at once: the result and the PDF need none."""
        if self.task.screenshot is None:
            then()
            return
        opening, in_view = self.window.opening, self.window.browser.paths_in_view()
        poll = QTimer(self)
        poll.setInterval(THUMBNAIL_POLL_MS)

        def check() -> None:
            to_come = opening.thumbnails_to_come(in_view)
            if to_come:
                self._awaiting = (f"the thumbnails of {len(to_come)} of the {len(in_view)} film(s) in view in the "
                                  f"study tree (the first: {to_come[0]})")
                return
            poll.stop()
            poll.deleteLater()
            self._awaiting = ""
            then()

        poll.timeout.connect(check)
        poll.start()
        check()

    def _produce(self) -> None:
        image = self.window.viewer.image
        if image is not None:  # the image checks' worker may not have answered yet: the outputs need them
            self.window.result.set_image_check(self.window.classification.image_check(image))
        for path, save, what in ((self.task.result_json, self._save_result, "result"),
                                 (self.task.screenshot, self._save_screenshot, "screenshot")):
            if path is None:
                continue
            try:
                save(path)
            except OSError as exc:
                self._fail(f"cannot write the {what} to {path}: {exc.strerror or exc}")
                return
            except Exception as exc:  # in a Qt slot an exception would not end the run: it would wait for the time limit
                logger.exception("writing the %s to %s failed", what, path)
                self._fail(f"cannot write the {what} to {path}: {type(exc).__name__}: {exc}")
                return
        if self.task.pdf is not None:
            paths = self.window.browser.study_paths(self._first)
            self._awaiting = f"the PDF of the first study ({len(paths)} image(s)) to be written to {self.task.pdf}"
            self.window.start_export(ExportRequest(tuple(paths), self.task.pdf, self.task.deidentify))
        else:
            self._finish(0)

    def _save_screenshot(self, path: Path) -> None:
        app = QApplication.instance()
        app.processEvents()
        buffer = QBuffer()
        buffer.open(QIODevice.OpenModeFlag.WriteOnly)
        if not self.window.grab().save(buffer, "PNG"):
            raise OSError("PNG encoding failed")
        write_bytes_atomic(path, bytes(buffer.data()))
        logger.info("screenshot written to %s", path)

    def shown_result(self) -> dict:
        """What the result panel shows for the first image: file, model, predicted class, the
        class probabilities (as computed, unrounded), the film's whole warnings as the CSV's ``warnings``
        column gives them (``ResultModel.film_warnings``: also those the panel leaves to its banner) and the
        image checks' ``out_of_scope`` reasons (``""`` in scope); ``prediction`` and
        ``probabilities`` are null, with ``message`` saying why, when there is no classification.
        With ``--deidentify`` it is de-identified as the PDF is: ``path`` is ``"image 1"`` (the input's number, not
        its name), the file's notes are the de-identified ones (no path, no UID) and every text goes through
        ``deidentify.redact_generated_text`` (no identifier, quoted identifying value, UID, path or file name)."""
        result = self.window.result
        prediction = result.prediction
        if self.task.deidentify:
            return self._deidentified(result, prediction)
        return {
            "path": str(self._first) if self._first is not None else None,
            "model": prediction.model_name if prediction is not None else result.model_name or None,
            "prediction": prediction.label if prediction is not None else None,
            "probabilities": prediction.as_dict() if prediction is not None else None,
            "warnings": list(result.film_warnings),
            "out_of_scope": result.out_of_scope,
            "message": result.message if prediction is None else "",
        }

    def _deidentified(self, result, prediction) -> dict:
        from cxr_engine.outputs.deidentify import redact_generated_text
        from cxr_engine.pixels.image import ImageMetadata

        image = self.window.viewer.image
        first = self._first
        shown = image is not None and first is not None and Path(image.path) == first
        metadata = image.metadata if shown else ImageMetadata()
        paths = (*([first] if first is not None else []), *self.window.workspace.opened)
        notes = self.window.workspace.file_notes(first, deidentified=True) if first is not None else []

        def clean(text: str) -> str:
            return redact_generated_text(text, metadata, paths=paths)

        return {
            "path": "image 1" if first is not None else None,
            "model": prediction.model_name if prediction is not None else result.model_name or None,
            "prediction": prediction.label if prediction is not None else None,
            "probabilities": prediction.as_dict() if prediction is not None else None,
            "warnings": [clean(w) for w in result.film_warnings_with_notes(notes)],
            "out_of_scope": result.out_of_scope,
            "message": clean(result.message) if prediction is None else "",
        }

    def _save_result(self, path: Path) -> None:
        text = json.dumps(_escaped(self.shown_result()), indent=2, ensure_ascii=False) + "\n"
        write_bytes_atomic(path, text.encode("utf-8"))
        logger.info("result written to %s", path)

    def _on_exported(self, path: Path) -> None:
        logger.info("PDF written to %s", path)
        self._finish(0)

    # ------------------------------------------------------------------ ending
    def _fail(self, message: str) -> None:
        if self.exit_code is None:
            logger.error("automation failed: %s", message)
            self._finish(1)

    def _finish(self, code: int) -> None:
        if self.exit_code is not None:
            return
        self.exit_code = code
        self._timer.stop()
        if sys.excepthook is self._hook:
            sys.excepthook = self._previous_hook
        QApplication.instance().exit(code)


def _escaped(value):
    """``value`` (JSON-ready) with every string's bytes that are not UTF-8 as ``\\xNN`` (a file name)."""
    if isinstance(value, str):
        return escape_undecodable(value)
    if isinstance(value, dict):
        return {key: _escaped(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_escaped(item) for item in value]
    return value
