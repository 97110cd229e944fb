"""The AI result of the image on screen as DICOM objects: the engine writes the Secondary Capture
(the film as displayed: window, polarity, rotation and flips, with the heat-map), the Comprehensive
SR and the Encapsulated PDF, either into a folder the reader chooses (*Save to folder…*) or into an
outbox under the cache folder and then to a DICOM node (*Send*, C-STORE); all in a worker with
progress and Cancel. Nothing is sent until the reader presses Send. De-identified, every Send and Save of the app
session shares one de-identifier (:func:`session_deidentifier`), so one study sent twice is one pseudonymous study
of one pseudonymous patient, and one film's objects have one name: saved again into the same folder with another
view, they are refused, naming the file, never put in place of the first (``DicomOutputWriter.replaced_problem``)."""
from __future__ import annotations

import tempfile
import threading
import time
from pathlib import Path

import numpy as np
from PySide6.QtCore import Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDialog,
    QFileDialog,
    QFormLayout,
    QPushButton,
    QVBoxLayout,
)

from cxr_engine.display_text import format_percent
from cxr_engine.network.dicom_network import OperationCancelled, send_files
from cxr_engine.outputs.dicom_outputs import DicomOutputWriter
from cxr_engine.outputs.dicom_outputs.source import Deidentifier
from cxr_engine.outputs.undecodable import escape_undecodable

from .dicom_settings import DicomSettings
from .job_row import JobRow
from .workers import Worker, create_worker, while_alive

KIND_TEXT = {"sc": "Secondary Capture (film, heat-map and result)", "sr": "Structured report (SR)",
             "pdf": "PDF report (Encapsulated PDF)",
             "gsps": "Annotations and window (presentation state, reopens over the original film)"}


_session_deidentifier: Deidentifier | None = None
_session_lock = threading.Lock()


def session_deidentifier() -> Deidentifier:
    """The app session's de-identifier (PS3.15 Annex E, ``source.Deidentifier``), made on first use with a random
    salt kept in memory only: every de-identified Send and Save to folder of this session maps one source UID to one
    new UID and one patient to one pseudonym (docs/dicom_outputs.md, De-identification), as a ``cxr-classify
    --deidentify`` run does; a writer per Send with its own salt gave one study and patient a new pseudonym each
    time. The next session's salt is new, so nothing links the sessions."""
    global _session_deidentifier
    with _session_lock:
        if _session_deidentifier is None:
            _session_deidentifier = Deidentifier()
        return _session_deidentifier


def new_outbox(root: Path) -> Path:
    """A new, empty outbox folder in ``root`` (``<cache>/outbox``): ``<time>-<random>``, made by
    ``tempfile.mkdtemp`` so that two sends in the same second never share one (a successful send removes its
    outbox, and removed the other's kept objects with it); ``OSError`` when it cannot be made."""
    for _ in range(3):
        Path(root).mkdir(parents=True, exist_ok=True)
        try:
            return Path(tempfile.mkdtemp(prefix=time.strftime("%Y%m%d-%H%M%S-"), dir=root))
        except FileNotFoundError:  # another send's clean-up removed the empty root in between: make it again
            continue
    raise FileNotFoundError(f"cannot make an outbox in {root}")


def displayed_film(viewer, heatmap_result) -> np.ndarray:
    """RGB uint8: the viewer's film in its current window and polarity, the heat-map over it at the
    viewer's opacity, square pixels, then turned and flipped as on screen (rotation clockwise, then
    flips along the screen axes, as ``ImageScene`` does)."""
    from cxr_engine.pixels.overlay import blend
    from cxr_engine.pixels.rendering import to_square_pixels

    grey = viewer.render()
    if viewer.heatmap_visible:
        rgb = blend(grey, heatmap_result.shown(), viewer.heatmap_opacity)
    else:
        rgb = np.repeat(grey[..., None], 3, 2)
    rgb = to_square_pixels(rgb, viewer.image.pixel_aspect)
    return np.ascontiguousarray(screen_orientation(rgb, viewer))


def screen_orientation(array: np.ndarray, viewer) -> np.ndarray:
    """``array`` (rows, columns, ...) turned and flipped as the viewer shows its image: turned clockwise by
    ``viewer.rotation``, then flipped along the screen axes, as ``ImageScene`` does."""
    out = np.rot90(array, k=-(viewer.rotation // 90) % 4)
    if viewer.flip_h:
        out = out[:, ::-1]
    if viewer.flip_v:
        out = out[::-1]
    return out


def write_only(folder: Path, card, image, heatmap_result, film, kinds, deidentify: bool, shown: dict, progress,
               should_cancel, inputs=(), outbox: bool = False):
    """Worker: write the outputs into ``folder``; the written objects. ``shown`` holds the
    presentation state's ``marks``, ``window`` and ``inverted``, the result's ``out_of_scope`` and the film's
    whole ``warnings`` (``ResultModel.film_warnings``: as the CSV's, the PDF's and ``--result-json``'s, so the SR
    and the SC say what ``cxr-classify --dicom-out`` says of the same film; without them, the decoder's own)
    (``DicomOutputWriter.write``);
    ``inputs`` the paths open in the app, ``outbox`` says ``folder`` is the app's own outbox.
    De-identified, the objects carry ``shown``'s ``deidentified_warnings`` instead (the file's notes without paths
    or UIDs, as the de-identified PDF gives them: ``Workspace.file_notes(path, deidentified=True)``), and are
    named by the writer without the film's file name (``DicomOutputWriter.deidentified_stem``), by the session's
    de-identifier (:func:`session_deidentifier`: the same new UIDs and pseudonym for the same film at every Send)."""
    progress((0, 0, "writing the DICOM outputs"))
    writer = DicomOutputWriter(folder, card, deidentify=deidentify, kinds=kinds, inputs=tuple(inputs), outbox=outbox,
                               deidentifier=session_deidentifier() if deidentify else None)
    shown = {"warnings": tuple(image.warnings), **shown}
    deidentified_warnings = shown.pop("deidentified_warnings", None)
    if deidentify and deidentified_warnings is not None:
        shown["warnings"] = tuple(deidentified_warnings)
    return writer.write(image, heatmap_result, displayed_rgb=film, **shown)


def write_and_send(node, network, folder: Path, card, image, heatmap_result, film, kinds, deidentify: bool, shown: dict,
                   progress, should_cancel):
    """Worker: write the outputs into ``folder`` (a fresh outbox) and send them; the transfer report. The outbox
    (identified objects, unless de-identified) is removed once every object is sent, when the reader cancels, and
    when writing fails (a partial set is no set to send again: the write error is raised as it is); after a failed
    send of objects all written it stays, so they can be sent again, and the status says where (``OutboxKept``, or
    the report's ``folder`` when the node refused some)."""
    try:
        objects = write_only(folder, card, image, heatmap_result, film, kinds, deidentify, shown, progress,
                             should_cancel, outbox=True)
    except BaseException:
        remove_outbox(folder)  # nothing, or an incomplete set: the write error says why
        raise
    try:
        if should_cancel():
            raise OperationCancelled("cancelled before sending")
        report = send_files(node, [o.path for o in objects], network,
                            progress=lambda done, total, name: progress((done, total, name)), cancelled=should_cancel)
    except OperationCancelled:
        remove_outbox(folder)  # nothing was asked to be kept: the reader cancelled
        raise
    except Exception as exc:
        raise OutboxKept(folder, exc) from exc
    if report.failed:
        report.folder = Path(folder)  # where the objects are kept for a retry; the status names it
    else:
        remove_outbox(folder)
    return report


class OutboxKept(Exception):
    """A send failed after its objects were all written: they stay in ``folder`` for a retry."""

    def __init__(self, folder: Path, cause: Exception):
        self.folder, self.cause = Path(folder), cause
        self.reason = f"{getattr(cause, 'reason', None) or cause} (the objects are kept in {folder} to send again)"
        super().__init__(self.reason)


def remove_outbox(folder: Path) -> None:
    """Remove one of the app's outbox folders (``<cache>/outbox/<time>-<random>``, :func:`new_outbox`) and the
    ``outbox`` folder when empty."""
    import shutil

    shutil.rmtree(folder, ignore_errors=True)
    try:
        Path(folder).parent.rmdir()  # only when no other outbox is kept
    except OSError:
        pass


class SendResultsDialog(QDialog):
    """Choose the node, the objects and de-identification; Send runs ``write_and_send`` in a worker."""

    sent = Signal(object)  # the TransferReport
    saved = Signal(object)  # the written objects
    status_changed = Signal(str)

    def __init__(self, settings: DicomSettings, card, image, heatmap_result, film: np.ndarray, parent=None, *,
                 marks=(), window: tuple[float, float] | None = None, inverted: bool | None = None, inputs=(),
                 out_of_scope: str = "", spatial_transformation=None, warnings: tuple[str, ...] | None = None,
                 deidentified_warnings: tuple[str, ...] | None = None):
        super().__init__(parent)
        self.inputs = tuple(inputs)  # the paths open in the app: no folder of theirs is written
        # out_of_scope: the shown result's reasons; the SR then records no coded Finding.
        self.shown = {"marks": tuple(marks), "window": window, "inverted": inverted, "out_of_scope": out_of_scope,
                      "spatial_transformation": spatial_transformation}
        if warnings is not None:  # the film's whole warnings (``ResultModel.film_warnings``), as the CLI writes them
            self.shown["warnings"] = tuple(warnings)
        if deidentified_warnings is not None:  # the same with the file's notes de-identified (no path, no UID)
            self.shown["deidentified_warnings"] = tuple(deidentified_warnings)
        self.setWindowTitle("AI result as DICOM objects")
        self.settings, self.card, self.image, self.film = settings, card, image, film
        self.heatmap_result = heatmap_result
        self._worker: Worker | None = None
        self._closing = False
        self.node_box = QComboBox()
        for node in settings.nodes():
            self.node_box.addItem(str(node), node)
        self.kinds = {kind: QCheckBox(text) for kind, text in KIND_TEXT.items()}
        for box in self.kinds.values():
            box.setChecked(True)
        if not marks:
            self.kinds["gsps"].setChecked(False)
            self.kinds["gsps"].setEnabled(False)
            self.kinds["gsps"].setToolTip("The image has no annotations")
        self.deidentify = QCheckBox("De-identify (PS3.15 Annex E: pseudonymous patient, new study)")
        form = QFormLayout()
        form.addRow("Node", self.node_box)
        for box in self.kinds.values():
            form.addRow("", box)
        form.addRow("", self.deidentify)
        self.send_button = QPushButton("Send")
        self.send_button.clicked.connect(self.send)
        self.save_button = QPushButton("Save to folder…")
        self.save_button.clicked.connect(self._choose_folder)
        self.job = JobRow((self.save_button, self.send_button), status_above=True)
        probability = format_percent(heatmap_result.prediction.probability(heatmap_result.prediction.label))
        self.job.status.setText(f"{heatmap_result.prediction.display_label} {probability} — {escape_undecodable(Path(image.path).name)}")
        self.job.statusChanged.connect(self.status_changed)
        self.job.cancel_button.clicked.connect(self._cancel_or_close)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(self.job)
        if self.node_box.count() == 0:
            self.send_button.setEnabled(False)
            self.job.set_status("No DICOM node is configured: add one in Settings → DICOM nodes.")

    def note_problem(self, kinds) -> str:
        """Why the chosen objects cannot be written de-identified: a note of the presentation state that
        de-identification makes longer than it holds, named (``writer.deidentified_note_problem``); ``""`` when there
        is none, or the objects are identified or hold no presentation state. Said before anything is written, so
        the reader knows which note to shorten (the note is never cut)."""
        from cxr_engine.outputs.dicom_outputs.writer import deidentified_note_problem

        if not (self.deidentify.isChecked() and "gsps" in kinds and self.shown["marks"]):
            return ""
        return deidentified_note_problem(self.shown["marks"], self.image.metadata)

    def send(self) -> Worker | None:
        node = self.node_box.currentData()
        kinds = tuple(kind for kind, box in self.kinds.items() if box.isChecked())
        if node is None or not kinds or self._worker is not None:
            return None
        problem = self.note_problem(kinds)
        if problem:
            self.job.set_status(f"Not sent: {problem}.")
            return None
        try:
            outbox = new_outbox(self.settings.cache_folder / "outbox")
        except OSError as exc:
            self.job.set_status(f"Not sent: no outbox could be made in {self.settings.cache_folder / 'outbox'} "
                                f"({exc.strerror or exc}); choose another cache folder in Settings → DICOM nodes.")
            return None
        worker = create_worker(write_and_send, node, self.settings.network(), outbox, self.card, self.image,
                               self.heatmap_result, self.film, kinds,
                               self.deidentify.isChecked(), self.shown, _progress=True)
        worker.progress.connect(self._on_progress)
        worker.returned.connect(lambda report: self._done(node, report))
        worker.errored.connect(self._failed)
        worker.when_finished(self._finished)
        self._worker = worker
        self.send_button.setEnabled(False)
        self.job.show_busy()
        self.job.set_status(f"Sending to {node}…")
        return worker.start()

    def _choose_folder(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Save the DICOM objects in")
        if folder:
            self.save_to(Path(folder))

    def save_to(self, folder: Path) -> Worker | None:
        """Write the chosen objects into ``folder`` in a worker; a source folder (of the film or of what is
        open, ``output_paths.source_problem``) is refused with the reason in the status, and so is a file there that
        holds another object under one of their names (an earlier save of the film with another view: the writer
        never replaces it). De-identified, a note too long once de-identified is named first (:meth:`note_problem`)."""
        kinds = tuple(kind for kind, box in self.kinds.items() if box.isChecked())
        if not kinds or self._worker is not None:
            return None
        problem = self.note_problem(kinds)
        if problem:
            self.job.set_status(f"Not saved: {problem}.")
            return None
        worker = create_worker(write_only, Path(folder), self.card, self.image, self.heatmap_result, self.film, kinds,
                               self.deidentify.isChecked(), self.shown, inputs=self.inputs, _progress=True)
        worker.returned.connect(lambda objects: self._saved(folder, objects))
        worker.errored.connect(self._failed)
        worker.when_finished(self._finished)
        self._worker = worker
        self.send_button.setEnabled(False)
        self.save_button.setEnabled(False)
        self.job.set_status(f"Writing into {folder}…")
        return worker.start()

    @while_alive
    def _saved(self, folder: Path, objects) -> None:
        self.job.set_status(f"Wrote {len(objects)} object(s) into {folder}: "
                         + ", ".join(Path(o.path).name for o in objects))
        self.saved.emit(objects)

    @while_alive
    def _on_progress(self, value) -> None:
        done, total, name = value
        self.job.set_progress(done, total)
        self.job.set_status(f"{name}…" if not total else f"Sending {done}/{total}")

    @while_alive
    def _done(self, node, report) -> None:
        failed = "".join(f"\n{escape_undecodable(Path(path).name)}: {reason}" for path, reason in report.failed)
        kept = f"\nThe objects are kept in {report.folder} to send again." if report.failed and report.folder else ""
        self.job.set_status(f"Sent {len(report.done)} object(s) to {node}.{failed}{kept}")
        self.sent.emit(report)

    @while_alive
    def _failed(self, exc: Exception) -> None:
        if isinstance(exc, OperationCancelled):
            self.job.set_status("Cancelled.")
        else:
            self.job.set_status(f"Not done: {getattr(exc, 'reason', None) or exc}")

    @while_alive
    def _finished(self) -> None:
        self._worker = None
        self.job.hide_progress()
        self.send_button.setEnabled(self.node_box.count() > 0)
        self.save_button.setEnabled(True)
        self.job.cancel_button.setText("Close")

    def _cancel_or_close(self) -> None:
        if self._worker is not None:
            self._worker.quit()
            self.job.set_status("Cancelling…")
        else:
            self.reject()

    def done(self, result: int) -> None:
        if self._worker is not None:
            self._worker.quit()
        super().done(result)
