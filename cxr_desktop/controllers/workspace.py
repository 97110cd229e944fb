"""The study workspace: what the reader opened, what the scan found, and the decoded films.

Every decode in the app (the viewer, the comparison viewports, the thumbnails, classify-all, the PDF
export) goes through one ``CachedDecoder`` (``cxr_engine.reading.decode_cache``) in front of the
app's pool of isolated decoding workers, so a film is decoded once per size (``DecodeRequest``).
The viewer shows a film at full resolution; the model reads it as ``model_image`` gives it, the way
``cxr-classify`` reads the file, so that a film has one prediction wherever it is shown.
"""
from __future__ import annotations

import threading
from collections import OrderedDict
from pathlib import Path
from typing import Callable

from cxr_engine import ScanResult
from cxr_engine.reading.decode_pool import VIEW, decode_priority
from cxr_engine.reading.reduced_decode import FULL, DecodeRequest

from ..image_jobs import LoadedImage, shared_decoder
from ..scan_job import scan_paths

#: Films kept with their renderers for the viewer (decoded radiographs are tens of megabytes each).
SHOWN_CACHE_SIZE = 4


class StudyWorkspace:
    """The paths opened, their ``ScanResult``s (the study tree's data) and the films shown lately.

    ``load(path)`` may run in any thread: it returns the film at full resolution with its renderer,
    decoded through the shared cache. ``decoder`` (default: the app's ``shared_decoder()``) is anything
    with ``read(path, request)``; tests pass a counting one.
    """

    def __init__(self, decoder=None, shown_cache_size: int = SHOWN_CACHE_SIZE):
        self._decoder = decoder
        self.size = shown_cache_size
        self.opened: list[Path] = []
        self.scans: list[ScanResult] = []
        self._clashes: dict[str, tuple[Path, ...]] | None = None  # uid_clashes of ``scans``, made on first use
        self._shown: OrderedDict[Path, LoadedImage] = OrderedDict()
        #: The image checks' reasons undone for a film the reader asked to see corrected (turned and/or
        #: inverted back, ``cxr_engine.models.image_checks.reoriented``); the file is not changed.
        self._corrections: dict[Path, str] = {}
        self._lock = threading.Lock()

    @property
    def decoder(self):
        """The one decode cache of the app (started on first use)."""
        if self._decoder is None:
            self._decoder = shared_decoder()
        return self._decoder

    # ------------------------------------------------------------------ opening and scanning
    def open(self, paths: list[Path]) -> None:
        """Start over with ``paths``: no scan results, no films shown."""
        self.opened = [Path(p) for p in paths]
        self.set_scans([])
        self.clear()

    def scan(self, progress: Callable[[object], None], should_cancel: Callable[[], bool]) -> list[ScanResult]:
        """Scan what was opened (``cxr_engine.find_images``); run in a worker. Raises
        ``FileNotFoundError`` naming the first path that does not exist."""
        return scan_paths(self.opened, progress=progress, should_cancel=should_cancel)

    def set_scans(self, scans: list[ScanResult]) -> None:
        self.scans = list(scans)
        self._clashes = None

    @property
    def cancelled(self) -> bool:
        return any(scan.cancelled for scan in self.scans)

    def output_problem(self, path: Path, films=()) -> str | None:
        """Why an export must not be written at ``path`` (None when it may): the CLI's one rule
        (``cxr_engine.outputs.output_paths.source_problem``) with what was opened and the exported
        ``films`` as the inputs, so no export lands in a folder a study was opened from."""
        from cxr_engine.outputs.output_paths import source_problem

        return source_problem(Path(path), [*self.opened, *films])

    def problems(self) -> list[tuple[Path, str]]:
        """``(path, reason)`` for every file the scan could not use."""
        return [(error.path, error.reason) for scan in self.scans for error in scan.errors]

    def copy_groups(self) -> list[tuple[Path, tuple[Path, ...]]]:
        """``(kept, copies)`` for each SOP Instance stored as several identical files: listed once as
        ``kept``, the ``copies`` left out (``cxr_engine.reading.copies``)."""
        return [(kept, others) for scan in self.scans for kept, others in scan.copies.items()]

    def uid_clashes(self) -> dict[str, tuple[Path, ...]]:
        """SOP Instance UID -> the different images (two or more paths) that claim it, each listed as its
        own image (``cxr_engine.reading.uid_clashes``)."""
        from cxr_engine.reading.uid_clashes import uid_clashes

        if self._clashes is None:  # asked on every film shown (file_notes): once per study, not per film
            self._clashes = uid_clashes(instance for scan in self.scans for instance in scan.all_instances()
                                        if instance.is_image)
        return self._clashes

    def uid_clash_note(self, path: Path, deidentified: bool = False) -> str:
        """The warning for ``path`` when other images claim its SOP Instance UID (``""`` when none do);
        ``deidentified``: without the UID and the paths."""
        from cxr_engine.reading.uid_clashes import clash_note, clash_note_deidentified

        for uid, paths in self.uid_clashes().items():
            if Path(path) in paths:
                return clash_note_deidentified(len(paths)) if deidentified else clash_note(uid, paths)
        return ""

    def file_notes(self, path: Path, deidentified: bool = False) -> list[str]:
        """The warnings the study's files add to ``path``'s result, as ``cxr-classify`` adds them to its
        row: the identical copies left out for it, the other paths to the same file (links; identified only), the
        other images that claim its SOP Instance UID;
        ``deidentified``: without paths or UIDs (a de-identified PDF: file names may be the patient's)."""
        from cxr_engine.reading.copies import aliases_note, copies_note, copies_note_deidentified

        notes = [copies_note_deidentified(len(others)) if deidentified else copies_note(others)
                 for kept, others in self.copy_groups() if Path(kept) == Path(path)]
        if not deidentified:  # the other paths to the same file (links); de-identified, paths are left out
            notes += [aliases_note(others) for scan in self.scans for kept, others in scan.aliases.items()
                      if Path(kept) == Path(path)]
        return notes + list(filter(None, [self.uid_clash_note(path, deidentified)]))

    # ------------------------------------------------------------------ decoded films
    def load(self, path: Path) -> LoadedImage:
        """``path`` at full resolution with its renderer: the one kept, else decoded through the shared
        cache (in the calling thread; raises ``ImageReadError`` naming the file and the reason)."""
        path = Path(path)
        loaded = self.get(path)
        if loaded is None:
            from cxr_engine.pixels.rendering import Renderer

            with decode_priority(VIEW):  # the film the reader asked for goes before thumbnails and batches
                image = self._corrected(path, self.decoder.read(path, FULL))
            loaded = LoadedImage(image, Renderer(image))
            self._keep(path, loaded)
        return loaded

    def model_image(self, path: Path, request: DecodeRequest):
        """The ``CxrImage`` the model reads for ``path``'s film: the file decoded as ``request`` (the model's
        ``DecodeRequest.for_model``, as ``cxr-classify`` and classify-all decode it) through the shared
        cache, then corrected as the reader asked (``correct``) the way ``cxr-classify --auto-orient``
        corrects it, so both give one probability. In the calling thread; raises ``ImageReadError``
        naming the file and the reason."""
        path = Path(path)
        return self._corrected(path, self.decoder.read(path, request))

    def correct(self, path: Path, reasons: str) -> None:
        """Show and classify ``path``'s film turned and/or inverted back per the image checks' ``reasons``
        on the film as it is shown now (added to a correction made before) until another study is opened;
        the file is not changed. The film kept for the viewer is corrected in place of a new decode."""
        from cxr_engine.models.image_checks import combined_reasons, reoriented
        from cxr_engine.pixels.rendering import Renderer

        path = Path(path)
        with self._lock:
            total = combined_reasons(self._corrections.get(path, ""), reasons)
            if total:
                self._corrections[path] = total
            else:
                self._corrections.pop(path, None)
            kept = self._shown.get(path)
            if kept is not None:
                upright = reoriented(kept.image, reasons)
                self._shown[path] = LoadedImage(upright, Renderer(upright))

    def correction(self, path: Path | None) -> str:
        """The image checks' reasons undone on ``path``'s film (``correct``), ``""`` when it is shown as stored."""
        with self._lock:
            return self._corrections.get(Path(path), "") if path is not None else ""

    def _corrected(self, path: Path, image):
        from cxr_engine.models.image_checks import reoriented

        reasons = self.correction(path)
        return reoriented(image, reasons) if reasons else image

    def get(self, path: Path) -> LoadedImage | None:
        """The film kept for ``path``, or None."""
        with self._lock:
            loaded = self._shown.get(Path(path))
            if loaded is not None:
                self._shown.move_to_end(Path(path))
            return loaded

    def _keep(self, path: Path, loaded: LoadedImage) -> None:
        path = Path(path)
        with self._lock:
            self._shown[path] = loaded
            self._shown.move_to_end(path)
            while len(self._shown) > self.size:
                self._shown.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._shown.clear()
            self._corrections.clear()
