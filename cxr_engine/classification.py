"""The one path from files to predictions: decode, check, classify (with heat-maps if asked), and
turn every failure into a reason. The CLI, the desktop app and the PDF export all run it."""
from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path

from .errors import CxrError, DecoderStartError
from .reading.read import read_image

logger = logging.getLogger(__name__)

#: The stages a file goes through, as :class:`FileEvent` ``stage``. ``not-classified``: the file was read
#: but holds no image to classify (blank, near-constant, a few pixels across: ``cxr_engine.pixels.content``).
DECODED, CLASSIFIED, FAILED, NOT_CLASSIFIED = "decoded", "classified", "failed", "not-classified"


#: ``classify_files``' default ``checker``: the bundled image checks (``default_checker()``).
BUNDLED_CHECKER = "bundled"


def model_reader(card) -> Callable[[Path], object]:
    """``read_image`` at the resolution ``card``'s model input needs (``DecodeRequest.for_model``: JPEG 2000
    and JPEG films decoded at the smallest stored resolution that keeps twice the input size), the
    decode ``cxr-classify`` and the desktop app classify from; full resolution without a card."""
    import functools

    from .reading.reduced_decode import DecodeRequest

    if card is None:
        return read_image
    return functools.partial(read_image, request=DecodeRequest.for_model(card.input_size, card.preprocessing_version))


@dataclass(frozen=True)
class FileEvent:
    """One step of one file in :func:`classify_files`.

    ``stage`` is ``decoded`` (``image`` is set), then ``classified``, ``not-classified`` or ``failed`` (the
    file's last event).
    ``index`` is the file's position in the list given. A ``classified`` event has ``prediction``
    (``Prediction``), ``heatmap`` (a ``HeatmapResult``: prediction and float32 heat-map in the image's
    rows × columns, [0, 1]) when heat-maps were asked for, ``warnings`` (the reader's and the
    suitability ones, the image checks', ``out of scope: ...``) and ``out_of_scope`` (``""`` in scope,
    else short reasons separated by ``;``), and ``corrected`` when ``auto_orient`` turned or inverted the
    film before classifying it. ``image.reduction`` > 1 when the reader decoded a reduced film (the
    default); ``cxr_engine.models.classifier.heatmap_at_full_resolution`` puts the heat-map on the full
    film. A ``failed`` event has ``reason`` in words, and ``image``
    when the file was decoded but could not be classified. A ``not-classified`` event has ``image`` and
    ``reason`` (``cxr_engine.pixels.content.no_content_reason``: ``no image content: ...``) and no prediction.
    Either, with ``image``, keeps the ``warnings`` that hold without a class, as the app's panel, PDF and
    ``--result-json`` give them for such a film (``image_checks.film_warnings`` without a prediction: the
    header's and decoding warnings, the image checks' when they ran); a file that could not be read has none.
    """

    stage: str
    index: int
    path: Path
    image: object | None = None
    prediction: object | None = None
    heatmap: object | None = None
    warnings: tuple[str, ...] = ()
    out_of_scope: str = ""
    reason: str = ""
    #: The image checks' reasons undone before classifying (``auto_orient``: e.g. ``inverted``,
    #: ``rotated-180``); ``image`` and ``heatmap`` are then the corrected film's. ``""`` when none.
    corrected: str = ""

    @property
    def done(self) -> bool:
        """True for the file's last event (``classified``, ``not-classified`` or ``failed``)."""
        return self.stage != DECODED


def classify_files(
    files: Iterable[str | Path],
    classifier,
    *,
    heatmaps: bool = False,
    batch_size: int = 8,
    reader: Callable[[Path], object] | None = None,
    decode_threads: int = 1,
    checker=BUNDLED_CHECKER,
    auto_orient: bool = False,
) -> Iterator[FileEvent]:
    """Classify ``files`` with ``classifier`` (see ``load_classifier``), yielding a :class:`FileEvent`
    per file and stage: ``decoded`` when a file is read, then its ``classified`` or ``failed`` event.
    The final events come in the order of ``files``; a failing file is a ``failed`` event, never an
    exception; only a decoding worker that cannot start raises (``DecoderStartError``: not the file's
    fault, and every next file would meet it). To cancel, stop iterating and close the generator: nothing more is classified, and reads
    not yet started are dropped.

    ``reader`` decodes one file into a ``CxrImage``; the default is ``read_image`` at the resolution the
    model input needs (``DecodeRequest.for_model`` of the classifier's card, as ``cxr-classify`` and the
    desktop app decode), so the same file gets the same probability here as there. A
    ``cxr_engine.reading.decode_pool.DecodePool`` keeps native decoders in worker processes with a
    time limit; ``decode_threads`` files are decoded at once, ahead of the model (``reader`` must then be
    thread-safe). Images are classified ``batch_size`` at a time in one forward pass, in a thread of its
    own while the next batch is read and checked (``classifier`` is called from that thread); when a batch fails
    each of its images is retried alone, so one bad image does not fail its neighbours. With ``heatmaps``
    each image gets its Grad-CAM heat-map (one image per pass). A film that holds no image (blank,
    near-constant, under 32 px a side: ``cxr_engine.pixels.content``) is never given to the model: its
    final event is ``not-classified`` with the reason. Each film is checked
    before it is classified by ``checker`` (default: the bundled image checks, ``default_checker()``, as
    ``cxr-classify`` does; an ``ImageChecker``; ``None`` turns the checks off), its reasons going to
    ``out_of_scope`` and ``warnings``; with ``auto_orient`` too, a film found turned
    and/or inverted is classified as it looks corrected, and says so in ``warnings``. ``uncertain`` is
    added to ``out_of_scope`` where the card records an out-of-scope threshold that the prediction
    passes (``cxr_engine.models.scope_score``); ``lateral`` where the header's View Position is lateral.
    """
    if isinstance(files, (str, os.PathLike)):  # one file, not an iterable of its characters
        files = [files]
    if checker is BUNDLED_CHECKER:
        from .models.image_checks import default_checker

        checker = default_checker()
    if reader is None:
        reader = model_reader(getattr(classifier, "card", None))
    from concurrent.futures import Future, ThreadPoolExecutor

    from .models.ensemble import disagreement_note
    from .models.image_checks import film_warnings
    from .models.scope_score import out_of_scope, threshold
    from .pixels.content import no_content_reason
    from .reading.decode_pool import decode_in_order

    pending: list[tuple[int, Path, object]] = []
    checks: dict[int, tuple[str, str, str]] = {}  # index -> (the checks' reasons, their warning, reasons undone)
    limit = threshold(getattr(classifier, "card", None))
    # One batch at a time is in the model (its own thread; ONNX Runtime and torch release the GIL)
    # while this thread decodes, checks and collects the next one, so that the two overlap.
    model_thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="cxr-model")
    in_model: list[Future] = []

    def flush() -> Iterator[FileEvent]:
        """Hand the pending images to the model, once the batch before them has come out."""
        yield from collect()
        if pending:
            in_model.append(model_thread.submit(_classify_pending, list(pending), classifier, heatmaps))
            pending.clear()

    def collect() -> Iterator[FileEvent]:
        """The final events of the batch in the model, once it is done."""
        if not in_model:
            return
        for event in in_model.pop().result():
            reasons, warning, corrected = checks.pop(event.index, ("", "", ""))
            if event.stage == CLASSIFIED:
                probabilities = tuple(event.prediction.probabilities)
                scope = out_of_scope(reasons, probabilities, limit, event.image.metadata,
                                     event.prediction.scope_reasons)
                # The classification's own note first: header notes (pixel spacing, secondary capture) come on
                # nearly every converted film, and led the column (a reading radiologist's finding).
                note = disagreement_note(classifier.card, event.prediction, scope)
                event = replace(event, warnings=film_warnings(scope, warning, event.warnings, model_note=note),
                                out_of_scope=scope, corrected=corrected)
            elif event.image is not None:  # read, then classification failed: what the film itself shows stands
                scope = out_of_scope(reasons, None, limit, event.image.metadata)
                event = replace(event, warnings=film_warnings(scope, warning, _own_warnings(event.image, classifier)),
                                corrected=corrected)
            yield event

    try:
        for index, (path, image) in enumerate(decode_in_order([Path(f) for f in files], reader, decode_threads)):
            if isinstance(image, DecoderStartError):
                raise image  # no file's fault, and every next file would meet it too
            if isinstance(image, Exception):
                yield from flush()  # the final events keep the input order
                yield from collect()
                yield FileEvent(FAILED, index, path, reason=_read_reason(path, image))
                continue
            empty = no_content_reason(image)
            if empty:
                yield FileEvent(DECODED, index, path, image)
                yield from flush()
                yield from collect()
                yield FileEvent(NOT_CLASSIFIED, index, path, image, reason=empty,
                                warnings=_own_warnings(image, classifier))
                continue
            if checker is not None:
                image, checks[index] = _checked(image, path, checker, auto_orient)
            yield FileEvent(DECODED, index, path, image)
            pending.append((index, path, image))
            if len(pending) >= batch_size:
                yield from flush()
        yield from flush()
        yield from collect()
    finally:  # on cancel, a batch already in the model finishes there unseen; nothing new starts
        model_thread.shutdown(wait=False, cancel_futures=True)


def _read_reason(path: Path, error: Exception) -> str:
    if isinstance(error, CxrError):
        return getattr(error, "reason", str(error))
    logger.error("unexpected error reading %s", path, exc_info=error)  # a decoder bug must not end the batch
    return f"unexpected error: {type(error).__name__}: {error}"


def _checked(image, path: Path, checker, auto_orient: bool):
    """(the image to classify, (out_of_scope reasons, warning, the reasons undone by ``auto_orient``));
    a failing check becomes a warning."""
    from .models.image_checks import correction_note, reoriented

    try:
        check = checker.check(image)
        if auto_orient and check.correctable:
            upright = reoriented(image, check.correction)
            again = checker.check(upright)
            note = correction_note(check.correction)
            return upright, (again.scope_reasons, "; ".join(filter(None, (note, again.warning))), check.correction)
        return image, (check.scope_reasons, check.warning, "")
    except Exception as exc:  # the classification stands without the check
        logger.exception("image check failed for %s", path)
        return image, ("", f"image check failed: {type(exc).__name__}: {exc}", "")


def _classify_pending(pending: list[tuple[int, Path, object]], classifier, heatmaps: bool) -> list[FileEvent]:
    """One final event per pending image, in order; a failed batch is retried one image at a time."""
    if not pending:
        return []
    try:
        if heatmaps:
            return [_classified(index, path, image, classifier, classifier.predict_with_heatmap(image))
                    for index, path, image in pending]
        predictions = classifier.predict([image for _, _, image in pending])
        return [_classified(index, path, image, classifier, None, prediction)
                for (index, path, image), prediction in zip(pending, predictions)]
    except Exception as exc:
        if len(pending) == 1:
            index, path, image = pending[0]
            logger.exception("classification failed for %s", path)
            return [FileEvent(FAILED, index, path, image, reason=f"classification failed: {type(exc).__name__}: {exc}")]
        return [event for item in pending for event in _classify_pending([item], classifier, heatmaps)]


def _classified(index: int, path: Path, image, classifier, heatmap, prediction=None) -> FileEvent:
    prediction = heatmap.prediction if heatmap is not None else prediction
    return FileEvent(CLASSIFIED, index, path, image, prediction, heatmap, warnings=_own_warnings(image, classifier))


def _own_warnings(image, classifier) -> tuple[str, ...]:
    """The film's own warnings (``suitability.image_warnings``: decoding, windows, suitability), which hold
    whether or not it is classified."""
    from .models.suitability import image_warnings

    return image_warnings(image, getattr(getattr(classifier, "card", None), "input_size", None))
