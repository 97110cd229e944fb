"""The CLI's result rows: one CSV row per file from the engine's ``classify_files``, with the
heat-map and lung-mask PNGs it writes beside."""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator, Sequence

from .classification import BUNDLED_CHECKER, CLASSIFIED, NOT_CLASSIFIED
from .outputs.undecodable import escape_undecodable

logger = logging.getLogger(__name__)

#: The column "cam_path" holds the heat-map overlay's path (``ResultRow.overlay_path``), under the name
#: that existing readers of the CSV know.
EXTRA_COLUMNS = ("cam_path", "warnings", "heatmap_path", "lung_mask_path", "out_of_scope")


def probability_column(cls: str) -> str:
    """The CSV column of one class's probability: ``p_<class>`` with the card's class name (``p_covid``)."""
    return f"p_{cls}"


def csv_columns(classes: Sequence[str]) -> tuple[str, ...]:
    """The CSV header for a model whose card lists ``classes`` (in the card's order): ``path``, ``status``,
    ``prediction``, one ``p_<class>`` per class, ``model``, ``message``, then :data:`EXTRA_COLUMNS`.
    The bundled cards' ``normal, pneumonia, covid`` give ``p_normal, p_pneumonia, p_covid``."""
    return ("path", "status", "prediction", *map(probability_column, classes), "model", "message", *EXTRA_COLUMNS)


@dataclass
class ResultRow:
    """One input file's outcome; ``status`` is ``ok``, ``error`` (the file could not be read or
    classified) or ``not-classified`` (it holds no image: blank, near-constant or a few pixels across;
    ``message`` says which, ``prediction`` and the probabilities are empty). A film read but not classified
    keeps its own ``warnings`` (``FileEvent.warnings``), as the app shows them for it."""

    path: Path
    status: str
    prediction: str = ""
    probabilities: dict[str, float] = field(default_factory=dict)
    model: str = ""
    message: str = ""
    overlay_path: Path | None = None
    warnings: tuple[str, ...] = ()
    #: Outputs of this run that could not be written (a full disk: ``output_not_written``). They name local
    #: folders, so they go to the CSV only, after the film's own ``warnings``, never into the DICOM outputs.
    output_warnings: tuple[str, ...] = ()
    heatmap_path: Path | None = None
    lung_mask_path: Path | None = None
    #: ``""`` in scope, else short reasons separated by ``;``: ``lateral`` (the header's View Position), the
    #: image checks' (``cxr_engine.models.image_checks``) and ``uncertain`` (``cxr_engine.models.scope_score.out_of_scope``).
    out_of_scope: str = ""
    #: The image checks' reasons undone before classifying (``--auto-orient``: ``FileEvent.corrected``, e.g.
    #: ``rotated-180``): the film, its heat-map and its outputs are the corrected film's; not a CSV column
    #: (``warnings`` says so in words). ``""`` when the film is shown as stored.
    corrected: str = ""
    #: The film the outputs are drawn from (a ``CxrImage`` at full resolution, turned as classified) and
    #: its ``HeatmapResult`` on that grid, when outputs were asked for; not written to the CSV.
    film: object | None = field(default=None, repr=False, compare=False)
    heatmap: object | None = field(default=None, repr=False, compare=False)
    #: An averaged model's members and each one's own top class (``Prediction.member_calls``; ``()`` for a single
    #: network or a file not classified): the summary counts the films they disagree on. Not a CSV column (the
    #: ``warnings`` say it in words).
    member_calls: tuple[tuple[str, str], ...] = ()

    def as_csv(self, classes: Sequence[str]) -> dict[str, str]:
        """The row under :func:`csv_columns` of ``classes``: probabilities with six decimals, empty where
        the file was not classified; bytes of a file name that are not UTF-8 as ``\\xNN``; a text cell that a
        spreadsheet would take for a formula with a leading ``'`` (:func:`spreadsheet_text`)."""
        def p(cls: str) -> str:
            return f"{self.probabilities[cls]:.6f}" if cls in self.probabilities else ""

        # A file name that is not UTF-8 (its path, and messages naming it) must not fail the whole CSV.
        row = {
            "path": str(self.path),
            "status": self.status,
            "prediction": self.prediction,
            **{probability_column(cls): p(cls) for cls in classes},
            "model": self.model,
            "message": self.message,
            "cam_path": str(self.overlay_path) if self.overlay_path else "",
            "warnings": "; ".join((*self.warnings, *self.output_warnings)),
            "heatmap_path": str(self.heatmap_path) if self.heatmap_path else "",
            "lung_mask_path": str(self.lung_mask_path) if self.lung_mask_path else "",
            "out_of_scope": self.out_of_scope,
        }
        return {key: spreadsheet_text(escape_undecodable(value)) for key, value in row.items()}


#: What a spreadsheet takes for the start of a formula (OWASP, "CSV Injection"): ``=``, ``+``, ``-``, ``@``, a
#: tab and a carriage return. A ``-`` starting a number is the number's sign.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def spreadsheet_text(cell: str) -> str:
    """``cell`` with a leading ``'`` when it starts as a formula would (:data:`FORMULA_STARTS`), so that a file
    named ``=HYPERLINK(...).dcm`` opened in a spreadsheet is shown, not run; a number (``-0.5``) stays a
    number, and every other cell is unchanged."""
    if not cell.startswith(FORMULA_STARTS) or (cell[0] == "-" and _is_number(cell)):
        return cell
    return "'" + cell


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def output_file_name(path: Path, index: int, kind: str) -> str:
    """A unique, readable PNG name for one of an input's outputs (``cam``: the heat-map overlay, ``heatmap``,
    ``lungs``): the input's number and stem, its control characters replaced (``output_paths.safe_name_part``)."""
    from .outputs.output_paths import safe_name_part

    return f"{index:05d}_{safe_name_part(path.stem)}_{kind}.png"


def overlay_file_name(path: Path, index: int) -> str:
    """A unique, readable PNG name for an input's heat-map overlay: ``NNNNN_<stem>_cam.png``, the name
    scripts reading ``cxr-classify`` outputs know (and ``cxr_engine.outputs.own_outputs`` recognises)."""
    return output_file_name(path, index, "cam")


def result_rows(
    files: list[Path],
    classifier,
    heatmap_dir: Path | None = None,
    batch_size: int = 8,
    reader: Callable[[Path], object] | None = None,
    lung_dir: Path | None = None,
    lung_segmenter=None,
    decode_threads: int = 1,
    checker=BUNDLED_CHECKER,
    auto_orient: bool = False,
    heatmaps: bool = False,
    full_reader: Callable[[Path], object] | None = None,
) -> Iterator[ResultRow]:
    """One CSV row per file, in order, from :func:`cxr_engine.classification.classify_files` (which
    see for ``reader``, ``decode_threads``, ``batch_size``, ``checker`` and ``auto_orient``); a failing
    file becomes an ``error`` row, never an exception; a film that holds no image a ``not-classified`` row.

    With ``heatmap_dir`` each classified input gets its heat-map overlay (``*_cam.png``) and the raw
    heat-map as a 16-bit greyscale PNG at the input's pixel grid (``*_heatmap.png``, 0–65535 for 0–1);
    with ``lung_dir`` and ``lung_segmenter`` (``cxr_engine.models.lung_fields.LungSegmenter``) its lung
    mask (``*_lungs.png``, 8-bit, 255 = lung, at the input's pixel grid), the plausibility warning going
    to ``warnings``. With ``heatmaps`` (or ``heatmap_dir``) each ok row carries its ``film`` and ``heatmap``
    (for the DICOM outputs).

    The model reads each file as ``reader`` decodes it (by default the reduced decode the model input
    needs, as in the desktop app), so asking for outputs never changes a probability or a reason. The
    outputs are drawn on the full-resolution film: where ``reader`` gave a reduced one, ``full_reader``
    (default ``read_image`` at full resolution) decodes the file again, the film is turned as it was
    classified (``auto_orient``) and the heat-map is put on its grid (``heatmap_at_full_resolution``).
    """
    from .classification import classify_files

    events = classify_files(files, classifier, heatmaps=heatmaps or heatmap_dir is not None, batch_size=batch_size,
                            reader=reader, decode_threads=decode_threads, checker=checker, auto_orient=auto_orient)
    outputs = heatmaps or heatmap_dir is not None or (lung_dir is not None and lung_segmenter is not None)
    for event in events:
        if not event.done:
            continue
        if event.stage == NOT_CLASSIFIED:
            yield ResultRow(path=event.path, status=NOT_CLASSIFIED, model=classifier.name, message=event.reason,
                            warnings=event.warnings)
            continue
        if event.stage != CLASSIFIED:
            yield _error_row(event.path, event.reason, classifier, event.warnings)
            continue
        row = _ok_row(event, classifier)
        if outputs:
            row.film, row.heatmap = _full_resolution_film(event, full_reader, row)
        if heatmap_dir is not None:
            try:
                _write_heatmaps(row, event.index, event.path, heatmap_dir)
            except Exception as exc:  # the classification stands (a full disk, a folder gone): only the PNG is missing
                row.output_warnings = (*row.output_warnings, output_not_written("heat-map", heatmap_dir, exc, event.path))
        if lung_dir is not None and lung_segmenter is not None:
            _add_lung_mask(row, event.index, event.path, row.film, lung_segmenter, lung_dir)
        yield row


def _full_resolution_film(event, full_reader, row: ResultRow):
    """(the full-resolution film, its heat-map on that grid) of a classified event, turned as it was
    classified; the classified (reduced) film and its heat-map, with a warning, when the full decode fails."""
    from .models.classifier import heatmap_at_full_resolution

    image, heatmap = event.image, event.heatmap
    if getattr(image, "reduction", 1) == 1:
        return image, heatmap
    if full_reader is None:
        from .reading.read import read_image

        full_reader = read_image
    try:
        full = full_reader(event.path)
        if event.corrected:
            from .models.image_checks import reoriented

            full = reoriented(full, event.corrected)
        if heatmap is not None:
            heatmap = heatmap_at_full_resolution(heatmap, image.reduction // max(1, full.reduction), full.shape)
    except Exception as exc:  # the classification stands; the outputs are drawn on the film it was made from
        logger.warning("%s: full-resolution decode for the outputs failed: %s", event.path, exc)
        row.warnings = (*row.warnings, f"outputs drawn on the reduced film (1/{image.reduction}): "
                                       f"full-resolution decode failed: {getattr(exc, 'reason', exc)}")
        return image, heatmap
    return full, heatmap


def _write_heatmaps(row: ResultRow, index: int, path: Path, heatmap_dir: Path) -> None:
    """The heat-map overlay as the app shows it (``*_cam.png``: ``HeatmapResult.shown``) and the raw heat-map
    (``*_heatmap.png``) of one classified file."""
    from .outputs.atomic import write_bytes_atomic
    from .outputs.png_caption import with_caption
    from .pixels.overlay import blend
    from .pixels.rendering import render, to_square_pixels

    image, heatmap = row.film, row.heatmap.heatmap
    # Shown at the physical aspect (non-square pixels), image and heat-map resampled together.
    rgb = to_square_pixels(blend(render(image), row.heatmap.shown()), image.pixel_aspect)
    rgb = with_caption(rgb, heatmap_caption(row.heatmap, row.out_of_scope, row.corrected))
    overlay_path = heatmap_dir / overlay_file_name(path, index)
    write_bytes_atomic(overlay_path, _png_bytes(rgb))
    row.overlay_path = overlay_path  # named in the CSV only once written
    heatmap_path = heatmap_dir / output_file_name(path, index, "heatmap")
    write_bytes_atomic(heatmap_path, _png_bytes(heatmap_png_array(heatmap)))
    row.heatmap_path = heatmap_path


def heatmap_caption(result, out_of_scope: str = "", corrected: str = "") -> list[str]:
    """The paragraphs under a ``*_cam.png`` (``outputs.png_caption.with_caption``): first, for a film shown
    ``corrected`` (``--auto-orient``), that it is turned and/or inverted from the stored file and how
    (``image_checks.correction_note``, the CSV's wording: beside the film in PACS it looked like another one);
    the class whose score the map shows, its probability and the model; the legend's words
    (``pixels.overlay.LEGEND_SHORT``, as the PDF says them) and what a map is not; a flagged film's reasons
    and what they mean for the map (``image_checks.standalone_heatmap_note``: the PNG has no banner); and that an
    averaged model's networks disagree on the film (``ensemble.disagreement_words``: the app's panel and the CSV's
    warnings give the whole note)."""
    from .display_text import format_percent, sentence_case
    from .models.classifier import CLASS_DISPLAY_NAMES
    from .models.ensemble import disagreement_words
    from .models.image_checks import correction_note, standalone_heatmap_note
    from .pixels.overlay import LEGEND_SHORT

    name = CLASS_DISPLAY_NAMES.get(result.target_class, result.target_class)
    probability = format_percent(result.prediction.probability(result.target_class))
    lines = [f"Grad-CAM heat-map: where the {name} score rose ({name} {probability}, {result.prediction.model_name}).",
             f"Red = strongest. {LEGEND_SHORT} It shows what drove the score, not where a finding is."]
    note = standalone_heatmap_note(out_of_scope)
    shown = correction_note(corrected)
    split = disagreement_words(result.prediction)
    return ([f"{sentence_case(shown)}."] if shown else []) + lines + ([note] if note else []) + (
        [f"{sentence_case(split)}."] if split else [])


def output_not_written(what: str, folder: Path, exc: Exception, source: Path) -> str:
    """The warning for an output PNG of ``source`` that could not be written to ``folder`` (logged too: a
    traceback only for what is not a file-system error, such as a full disk or a folder removed)."""
    if isinstance(exc, OSError):
        logger.warning("%s of %s not written to %s: %s", what, source, folder, exc)
        return f"{what} not written to {folder}: {exc.strerror or exc}"
    logger.exception("%s of %s not written", what, source)
    return f"{what} not written: {type(exc).__name__}: {exc}"


def heatmap_png_array(heatmap) -> "np.ndarray":
    """uint16 raw heat-map values: 0–65535 for the map's 0–1 (rounded), same rows and columns."""
    import numpy as np

    return np.round(np.clip(np.asarray(heatmap, dtype=np.float64), 0.0, 1.0) * 65535.0).astype(np.uint16)


def _png_bytes(array) -> bytes:
    """Lossless PNG (Pillow) of ``array``: uint8 (H, W, 3) RGB, uint8 (H, W) grey or uint16 (H, W)
    16-bit grey; ``ValueError`` for another dtype or shape."""
    import io

    import numpy as np
    from PIL import Image

    array = np.ascontiguousarray(array)
    if not ((array.dtype == np.uint8 and (array.ndim == 2 or (array.ndim == 3 and array.shape[2] == 3)))
            or (array.dtype == np.uint16 and array.ndim == 2)):
        raise ValueError(f"cannot write a {array.dtype} {array.shape} array as PNG")
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, "PNG")
    return buffer.getvalue()


def _add_lung_mask(row: ResultRow, index: int, path: Path, image, segmenter, lung_dir: Path) -> None:
    """Segment the lungs of one classified input and write its mask; a failure becomes a warning."""
    from .outputs.atomic import write_bytes_atomic

    try:
        fields = segmenter.segment(image)
        mask_path = lung_dir / output_file_name(path, index, "lungs")
        write_bytes_atomic(mask_path, _png_bytes(fields.as_png_array()))
    except OSError as exc:  # the classification stands; the mask is an extra
        row.output_warnings = (*row.output_warnings, output_not_written("lung mask", lung_dir, exc, path))
        return
    except Exception as exc:
        logger.exception("lung segmentation failed for %s", path)
        row.warnings = (*row.warnings, f"lung segmentation failed: {type(exc).__name__}: {exc}")
        return
    row.lung_mask_path = mask_path
    if fields.warning:
        row.warnings = (*row.warnings, fields.warning)


def _ok_row(event, classifier) -> ResultRow:
    prediction = event.prediction
    return ResultRow(path=event.path, status="ok", prediction=prediction.label, probabilities=prediction.as_dict(),
                     model=prediction.model_name, warnings=event.warnings, out_of_scope=event.out_of_scope,
                     corrected=event.corrected, member_calls=tuple(prediction.member_calls))


def _error_row(path: Path, reason: str, classifier, warnings: tuple[str, ...] = ()) -> ResultRow:
    return ResultRow(path=path, status="error", model=classifier.name, message=reason, warnings=warnings)
