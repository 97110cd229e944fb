"""Batch classification of files and folders into result rows (the CLI's engine room)."""
from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Iterator

from .errors import CxrError
from .reading.read import read_image

logger = logging.getLogger(__name__)

CSV_COLUMNS = ("path", "status", "prediction", "p_normal", "p_pneumonia", "p_covid", "model", "message")
EXTRA_COLUMNS = ("cam_path", "warnings", "heatmap_path", "lung_mask_path", "out_of_scope")


@dataclass
class ResultRow:
    """One input file's outcome; ``status`` is ``ok`` or ``error``."""

    path: Path
    status: str
    prediction: str = ""
    probabilities: dict[str, float] = field(default_factory=dict)
    model: str = ""
    message: str = ""
    cam_path: Path | None = None
    warnings: tuple[str, ...] = ()
    heatmap_path: Path | None = None
    lung_mask_path: Path | None = None
    #: ``""`` in scope, else short reasons separated by ``;``: ``lateral`` (the header's View Position), the
    #: image checks' (``cxr_engine.models.image_checks``) and ``uncertain`` (``cxr_engine.models.scope_score.out_of_scope``).
    out_of_scope: str = ""

    def as_csv(self) -> dict[str, str]:
        def p(cls: str) -> str:
            return f"{self.probabilities[cls]:.6f}" if cls in self.probabilities else ""

        return {
            "path": str(self.path),
            "status": self.status,
            "prediction": self.prediction,
            "p_normal": p("normal"),
            "p_pneumonia": p("pneumonia"),
            "p_covid": p("covid"),
            "model": self.model,
            "message": self.message,
            "cam_path": str(self.cam_path) if self.cam_path else "",
            "warnings": "; ".join(self.warnings),
            "heatmap_path": str(self.heatmap_path) if self.heatmap_path else "",
            "lung_mask_path": str(self.lung_mask_path) if self.lung_mask_path else "",
            "out_of_scope": self.out_of_scope,
        }


@dataclass
class Inputs:
    """What a batch run reads: ``files`` in order, and ``problems``, the reason for each of them
    that the scan already found unreadable (so the CSV gives the reason the app's Problems list
    gives)."""

    files: list[Path]
    problems: dict[Path, str] = field(default_factory=dict)
    #: Files the folder scans skipped because this program wrote them (``cxr_engine.outputs.own_outputs``).
    own_outputs: list[Path] = field(default_factory=list)


def discover_inputs(paths: Iterable[str | Path], exclude: Iterable[str | Path] = ()) -> Inputs:
    """Files named directly (whatever they are), and what a folder or a DICOMDIR holds, except what
    lies in the ``exclude`` folders (the run's own output folders, so that a rerun does not classify
    the heat-maps and masks of the last run).

    Folders and DICOMDIRs are read by ``cxr_engine.reading.scanning.scan(include_raster=True)``, the
    scan the desktop app runs, so both find the same files: DICOM recognised by content or
    suffix (``IM0001.ima``, UID-named files without a suffix), the files a DICOMDIR lists
    (found case-insensitively), and PNG/JPEG; hidden entries are skipped. Each image is
    listed once, in walk order, and each file the scan could not read is listed with its
    reason in ``problems``; DICOM objects that are not images (reports, presentation states)
    are left out, as the app leaves them out of its study tree. Files this program wrote found in a
    folder (heat-map and lung-mask PNGs, its DICOM result objects) are not inputs: they go to
    ``own_outputs`` (``cxr_engine.outputs.own_outputs``).
    """
    from .reading.scanning import is_dicomdir_file, scan

    files: list[Path] = []
    problems: dict[Path, str] = {}
    own: list[Path] = []
    excluded = [Path(os.path.realpath(folder)) for folder in exclude]
    for raw in paths:
        path = Path(raw)
        if not (path.is_dir() or is_dicomdir_file(path)):
            files.append(path)
            continue
        result = scan(path, include_raster=True)
        reasons = {error.path: error.reason for error in result.errors}
        images = set(result.image_files())
        reached = set(result.order)
        own.extend(result.own_outputs)
        for found in result.order:
            if excluded and _inside(found, excluded):
                continue
            if found in images or found in reasons:
                files.append(found)
            if found in reasons:
                problems[found] = reasons[found]
        for error in result.errors:  # folders that could not be listed
            if error.path not in reached and not (excluded and _inside(error.path, excluded)):
                files.append(error.path)
                problems[error.path] = error.reason
    return Inputs(files, problems, own)


def _inside(path: Path, folders: list[Path]) -> bool:
    """Whether ``path`` (links resolved) is one of ``folders`` (resolved) or lies under one of them."""
    path = Path(os.path.realpath(path))
    return any(path == folder or folder in path.parents for folder in folders)


def expand_inputs(paths: Iterable[str | Path]) -> list[Path]:
    """The files of :func:`discover_inputs`, in order."""
    return discover_inputs(paths).files


def output_file_name(path: Path, index: int, kind: str) -> str:
    """A unique, readable PNG name for one of an input's outputs (``cam``, ``heatmap``, ``lungs``)."""
    return f"{index:05d}_{path.stem[:60]}_{kind}.png"


def cam_file_name(path: Path, index: int) -> str:
    """A unique, readable PNG name for an input's heat-map overlay."""
    return output_file_name(path, index, "cam")


def classify_files(
    files: list[Path],
    classifier,
    cam_dir: Path | None = None,
    batch_size: int = 8,
    on_row: Callable[[ResultRow], None] | None = None,
    reader: Callable[[Path], object] = read_image,
    lung_dir: Path | None = None,
    lung_segmenter=None,
    decode_threads: int = 1,
    checker=None,
    auto_orient: bool = False,
) -> Iterator[ResultRow]:
    """Yield one row per file, in order; a failing file becomes an ``error`` row, never an exception.

    ``reader`` decodes one file (``read_image``, or an ``IsolatedReader`` / a
    ``cxr_engine.reading.decode_pool.DecodePool`` to keep native decoders in worker processes with a time
    limit); ``decode_threads`` files are decoded at once, ahead of the model (``reader`` must then be
    thread-safe; the rows keep the input order either way). With ``cam_dir`` each classified input gets
    its heat-map overlay (``*_cam.png``) and the raw heat-map as a 16-bit greyscale PNG at the
    input's pixel grid (``*_heatmap.png``, 0–65535 for 0–1); with ``lung_dir`` and
    ``lung_segmenter`` (``cxr_engine.models.lung_fields.LungSegmenter``) its lung mask (``*_lungs.png``,
    8-bit, 255 = lung, at the input's pixel grid), the plausibility warning going to ``warnings``.
    ``out_of_scope`` holds ``lateral`` when the header's View Position is lateral
    (``cxr_engine.models.scope_score.out_of_scope``). With ``checker`` (``cxr_engine.models.image_checks.ImageChecker``)
    each film is checked before it is classified and its reasons go to ``out_of_scope`` and ``warnings``;
    ``uncertain`` is added where the classifier's card records an out-of-scope threshold that the prediction passes
    (``cxr_engine.models.scope_score``); with ``auto_orient`` too, a film
    found turned and/or inverted is classified (heat-map and lung mask included) as it looks corrected,
    and says so in ``warnings``.
    """
    from .models.scope_score import WORDS, is_uncertain, out_of_scope, threshold

    pending: list[tuple[int, Path, object]] = []
    checks: dict[int, tuple[str, str]] = {}  # index -> (the image checks' reasons, their warning)
    limit = threshold(getattr(classifier, "card", None))

    def flush() -> Iterator[ResultRow]:
        rows = _classify_pending(pending, classifier, cam_dir)
        for (index, _, image), row in zip(pending, rows):
            reasons, warning = checks.pop(index, ("", ""))
            if row.status == "ok":
                uncertain = is_uncertain(row.probabilities.values(), limit)
                row.out_of_scope = out_of_scope(reasons, tuple(row.probabilities.values()), limit,
                                                image.metadata.view_position)
                if uncertain:
                    warning = "; ".join(filter(None, (warning, f"out of scope: {WORDS}")))
                row.warnings = (*row.warnings, warning) if warning else row.warnings
        if lung_dir is not None and lung_segmenter is not None:
            for (index, path, image), row in zip(pending, rows):
                if row.status == "ok":
                    _add_lung_mask(row, index, path, image, lung_segmenter, lung_dir)
        pending.clear()
        yield from rows

    from .reading.decode_pool import decode_in_order

    for index, (path, image) in enumerate(decode_in_order(files, reader, decode_threads)):
        if isinstance(image, CxrError):
            yield from flush()  # rows keep the input order
            yield _error_row(path, getattr(image, "reason", str(image)), classifier)
            continue
        if isinstance(image, Exception):  # a decoder bug must not end the batch
            logger.error("unexpected error reading %s", path, exc_info=image)
            yield from flush()
            yield _error_row(path, f"unexpected error: {type(image).__name__}: {image}", classifier)
            continue
        if checker is not None:
            image, checks[index] = _checked(image, path, checker, auto_orient)
        pending.append((index, path, image))
        if len(pending) >= batch_size:
            yield from flush()
    yield from flush()


def _checked(image, path: Path, checker, auto_orient: bool):
    """(the image to classify, (out_of_scope, warning)); a failing check becomes a warning."""
    from .models.image_checks import describe, reoriented

    try:
        check = checker.check(image)
        if auto_orient and check.correctable:
            upright = reoriented(image, check.reasons)
            again = checker.check(upright)
            note = f"auto-orient: the film looked {describe(check.reasons)}; classified as corrected"
            return upright, (again.reasons, "; ".join(filter(None, (note, again.warning))))
        return image, (check.reasons, check.warning)
    except Exception as exc:  # the classification stands without the check
        logger.exception("image check failed for %s", path)
        return image, ("", f"image check failed: {type(exc).__name__}: {exc}")


def _classify_pending(pending, classifier, cam_dir: Path | None) -> list[ResultRow]:
    if not pending:
        return []
    try:
        if cam_dir is None:
            predictions = classifier.predict([image for _, _, image in pending])
            return [_ok_row(path, image, pred, None, classifier) for (_, path, image), pred in zip(pending, predictions)]
        return [_classify_with_cam(index, path, image, classifier, cam_dir) for index, path, image in pending]
    except Exception as exc:
        if len(pending) == 1:
            index, path, _ = pending[0]
            logger.exception("classification failed for %s", path)
            return [_error_row(path, f"classification failed: {type(exc).__name__}: {exc}", classifier)]
        # Retry one by one so that one bad image does not fail its neighbours.
        return [row for item in pending for row in _classify_pending([item], classifier, cam_dir)]


def _classify_with_cam(index: int, path: Path, image, classifier, cam_dir: Path):
    from .outputs.atomic import write_bytes_atomic
    from .pixels.overlay import blend
    from .pixels.rendering import render, to_square_pixels

    result = classifier.predict_with_cam(image)
    # Shown at the physical aspect (non-square pixels), image and heat-map resampled together.
    rgb = to_square_pixels(blend(render(image), result.heatmap), image.pixel_aspect)
    cam_path = cam_dir / cam_file_name(path, index)
    write_bytes_atomic(cam_path, _png_bytes(rgb[..., ::-1]))
    heatmap_path = cam_dir / output_file_name(path, index, "heatmap")
    write_bytes_atomic(heatmap_path, _png_bytes(heatmap_png_array(result.heatmap)))
    row = _ok_row(path, image, result.prediction, cam_path, classifier)
    row.heatmap_path = heatmap_path
    return row


def heatmap_png_array(heatmap) -> "np.ndarray":
    """uint16 raw heat-map values: 0–65535 for the map's 0–1 (rounded), same rows and columns."""
    import numpy as np

    return np.round(np.clip(np.asarray(heatmap, dtype=np.float64), 0.0, 1.0) * 65535.0).astype(np.uint16)


def _png_bytes(array) -> bytes:
    import cv2

    ok, encoded = cv2.imencode(".png", array)
    if not ok:
        raise RuntimeError("PNG encoding failed")
    return encoded.tobytes()


def _add_lung_mask(row: ResultRow, index: int, path: Path, image, segmenter, lung_dir: Path) -> None:
    """Segment the lungs of one classified input and write its mask; a failure becomes a warning."""
    from .outputs.atomic import write_bytes_atomic

    try:
        fields = segmenter.segment(image)
        mask_path = lung_dir / output_file_name(path, index, "lungs")
        write_bytes_atomic(mask_path, _png_bytes(fields.as_png_array()))
    except Exception as exc:  # the classification stands; the mask is an extra
        logger.exception("lung segmentation failed for %s", path)
        row.warnings = (*row.warnings, f"lung segmentation failed: {type(exc).__name__}: {exc}")
        return
    row.lung_mask_path = mask_path
    if fields.warning:
        row.warnings = (*row.warnings, fields.warning)


def _ok_row(path: Path, image, prediction, cam_path: Path | None, classifier) -> ResultRow:
    from .models.suitability import image_warnings

    return ResultRow(
        path=path,
        status="ok",
        prediction=prediction.label,
        probabilities=prediction.as_dict(),
        model=prediction.model_name,
        cam_path=cam_path,
        warnings=image_warnings(image, classifier.card.input_size),
    )


def _error_row(path: Path, reason: str, classifier) -> ResultRow:
    return ResultRow(path=path, status="error", model=classifier.name, message=reason)
