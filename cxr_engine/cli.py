"""``cxr-classify``: classify chest X-ray files and folders into a CSV, optionally with heat-maps."""
from __future__ import annotations

import argparse
import contextlib
import csv
import functools
import logging
import os
import signal
import sys
import warnings
from pathlib import Path

from . import dicom_cli
from .cli_progress import say
from .cli_types import output_path, positive
from .models.backends import BACKENDS
from .batch import csv_columns, result_rows
from .errors import DecoderStartError, ImageReadError, ModelError

EXIT_OK, EXIT_SOME_FAILED, EXIT_USAGE = 0, 1, 2
#: A run stopped by Ctrl-C (SIGINT) or SIGTERM: 128 + the signal's number, as a shell reports it.
EXIT_SIGINT, EXIT_SIGTERM = 128 + signal.SIGINT, 128 + signal.SIGTERM

logger = logging.getLogger("cxr_engine.cli")
#: What to try when the decoding workers cannot start (``DecoderStartError``).
NO_ISOLATION_HINT = ("; --no-isolation decodes in this process instead (without the workers' protection "
                     "from damaged files)")


class _HelpFormatter(argparse.HelpFormatter):
    """argparse's formatter without line breaks at hyphens, so that a model's name
    (``efficientnet-lite0-b1-average``) is never split across two lines of ``--help``."""

    def _split_lines(self, text, width):
        import textwrap

        return textwrap.wrap(" ".join(text.split()), width, break_on_hyphens=False)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="cxr-classify", formatter_class=_HelpFormatter,
        description=(
            "Classify frontal chest X-rays (DICOM, PNG, JPEG; folders are searched recursively) as "
            "normal, pneumonia or covid. Research use only; not a medical device. Source files and folders "
            "are never written: an output (--csv, heat-maps, lung masks, DICOM objects) that is an input, or "
            "lies inside an input folder or the folder of an input file, is refused. "
            "Files this program wrote (heat-maps, lung masks, AI result DICOM objects) found in a folder are "
            "skipped."
        ),
        epilog="Exit status: 0 all inputs classified (and, with --send, all outputs sent); 1 some inputs failed "
               "or were not classified (no image content), or, with --send, some outputs were not sent (the rest are still written); 2 the run did not start: "
               "bad usage, no image found, an output path that cannot be written or that is an input or lies inside "
               "an input folder or the folder of an input file, an output folder holding an earlier run's files "
               "(without --overwrite), a model that cannot be loaded, or a --send node "
               "that does not answer Verify (C-ECHO); "
               "all checked before any film is classified; 130 / 143 stopped by Ctrl-C / SIGTERM (the CSV holds "
               "the rows written until then).",
    )
    parser.add_argument("paths", nargs="+", metavar="PATH", help="image files or folders")
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress details")
    parser.add_argument("-q", "--quiet", action="store_true",
                        help="no progress bar or lines, no summary line and no notes (copies, the PDF's fonts) on "
                             "standard error (a file that fails is still named there)")
    classification = parser.add_argument_group("classification")
    classification.add_argument("--model", metavar="NAME|card.json", help=_model_help())
    classification.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"),
                                help="where to run the model")
    classification.add_argument("--backend", default="auto", choices=BACKENDS,
                                help="inference library (default auto: torch on a GPU, else ONNX Runtime when the "
                                     "model has an ONNX export, else torch on the CPU)")
    classification.add_argument("--batch-size", type=positive(int), default=8, help="images per forward pass (default 8)")
    classification.add_argument("--auto-orient", action="store_true",
                                help="classify a film that the image checks find turned (90/180/270 degrees) or "
                                     "inverted as it looks corrected (the file is not changed); the warnings column "
                                     "says so, and out_of_scope holds what the checks find on the corrected film")
    outputs = parser.add_argument_group("outputs")
    outputs.add_argument("--csv", type=output_path, metavar="FILE", help="write the results here (default: standard output)")
    outputs.add_argument("--heatmap-dir", type=output_path, metavar="DIR",
                         help="write a PNG of each image with its Grad-CAM heat-map here (NNNNN_<stem>_cam.png), and "
                              "the raw heat-map as a 16-bit greyscale PNG at the image's pixel grid "
                              "(NNNNN_<stem>_heatmap.png, 0-65535 for 0-1); never inside an input folder or the folder of an input file")
    # The option's earlier name, kept working for existing scripts; not shown in --help.
    outputs.add_argument("--cam-dir", dest="heatmap_dir", type=output_path, help=argparse.SUPPRESS)
    outputs.add_argument("--lung-mask-dir", type=output_path, metavar="DIR",
                         help="write each image's lung mask from the bundled lung model here (NNNNN_<stem>_lungs.png, "
                              "8-bit, 255 = lung, at the image's pixel grid); implausible lung fields add a warning; "
                              "never inside an input folder or the folder of an input file")
    outputs.add_argument("--overwrite", action="store_true",
                         help="an output folder (--heatmap-dir, --lung-mask-dir, --dicom-out) that holds files an "
                              "earlier run wrote is refused, so that two runs' files never mix; with --overwrite "
                              "those files are removed before the run (other files in the folder are left alone). "
                              "The --csv file is always replaced whole")
    decoding = parser.add_argument_group("decoding")
    decoding.add_argument("--isolation", action=argparse.BooleanOptionalAction, default=True,
                          help="decode each file in a worker process with a time limit, so a damaged or "
                               "crafted file cannot crash or hang the batch")
    decoding.add_argument("--decode-timeout", type=positive(float), default=60.0, metavar="S",
                          help="seconds one file may take to decode (with --isolation)")
    decoding.add_argument("--full-decode", action="store_true",
                          help="classify every image decoded at full resolution; by default JPEG 2000 and JPEG "
                               "images are classified as decoded at the smallest stored resolution that keeps "
                               "twice the model's input size on the short side, as the desktop app does (the "
                               "heat-maps, lung masks and DICOM outputs are drawn on the full-resolution film "
                               "either way). The probabilities can then differ a little from the default's and "
                               "the app's (by up to 0.04 on the real test DICOMs)")
    decoding.add_argument("--decode-workers", type=positive(int), metavar="N",
                          help="files decoded at once, each in its own worker process with --isolation "
                               "(default: one per core)")
    dicom_cli.add_arguments(parser)
    return parser


def _model_help() -> str:
    """``--model``'s help, naming the bundled models and the default from their cards (JSON only: no model
    is loaded, no inference library imported)."""
    from .models.model_card import default_card, list_bundled

    names = ", ".join(card.name for card in list_bundled()) or "none"
    best = default_card()
    default = f"{best.name}, the best bundled model that meets the project's bar" if best else \
        "none: no bundled model meets the project's bar, so name one"
    return f"a bundled model ({names}) or a model card .json (default: $CXR_MODEL_CARD when set, else {default})"


def _select_card(name: str | None):
    """The card ``--model`` names, else ``$CXR_MODEL_CARD``'s, else the best bundled one (``choose_card``)."""
    from .models.loading import choose_card

    try:
        return choose_card(name)
    except ModelError as exc:
        raise ModelError(str(exc) if name else f"{exc}; choose one with --model") from None


def output_path_problems(args) -> list[str]:
    """One line per output path that cannot be written (``--csv FILE: reason``); the output folders
    are created on the way (see ``cxr_engine.outputs.output_paths``), except where an output would write an
    input or into an input folder: that is refused before anything is created."""
    from .outputs.output_paths import file_problem, folder_problem

    checks = (("--csv", args.csv, file_problem), ("--heatmap-dir", args.heatmap_dir, folder_problem),
              ("--lung-mask-dir", args.lung_mask_dir, folder_problem))
    lines = []
    for option, path, check in checks:
        reason = check(path, args.paths) if path is not None else None
        if reason:
            lines.append(f"{option} {path}: {reason}")
    lines += dicom_cli.output_problems(args)
    return lines or _earlier_run_problems(args)


def _output_folders(args) -> list[tuple[str, Path]]:
    folders = (("--heatmap-dir", args.heatmap_dir), ("--lung-mask-dir", args.lung_mask_dir),
               ("--dicom-out", args.dicom_out))
    return [(option, folder) for option, folder in folders if folder is not None]


def _earlier_run_problems(args) -> list[str]:
    """One line per output folder that holds an earlier run's files, unless ``--overwrite``
    (``cxr_engine.outputs.earlier_outputs``)."""
    from .outputs.earlier_outputs import earlier_outputs_problem

    if args.overwrite:
        return []
    return [f"{option} {folder}: {reason}" for option, folder in _output_folders(args)
            if (reason := earlier_outputs_problem(folder))]


def _remove_earlier_outputs(args) -> str | None:
    """With ``--overwrite``, remove the earlier run's files from the output folders; why not, else None."""
    from .outputs.earlier_outputs import remove_earlier_outputs

    if not args.overwrite:
        return None
    for option, folder in _output_folders(args):
        try:
            removed = remove_earlier_outputs(folder)
        except OSError as exc:
            return f"{option} {folder}: cannot remove a file an earlier run wrote: {exc.strerror or exc}"
        if removed and not args.quiet:
            say(f"{option} {folder}: removed {removed} file(s) an earlier run wrote (--overwrite)")
    return None


#: Loggers whose warnings are notes on how an output looks, not failures (the PDF's "report: N character(s) ...
#: have no glyph in any font here", a font that cannot be used): not shown with ``--quiet``.
NOTE_LOGGERS = ("cxr_engine.outputs.report",)


@contextlib.contextmanager
def _standard_error(verbose: bool, quiet_notes: bool = False):
    """Standard error carries the CLI's own lines (``cxr-classify: ...``): the batch loop names each file
    that fails, once, in input order, so the folder scan's log lines and pydicom's warnings about damaged
    headers are left out (``cxr_engine.reading.library_output``), as are pynetdicom's protocol log lines (the
    send's own message says what happened), and with ``quiet_notes`` (``--quiet``) the warnings of
    :data:`NOTE_LOGGERS`; ``--verbose`` shows every log record,
    with its level and logger. The loggers' levels and the warning filters are restored on the way out."""
    from .reading.library_output import silence_pydicom

    if verbose:
        logging.basicConfig(level=logging.INFO, handlers=[_log_handler("%(levelname)s %(name)s: %(message)s")])
        yield
        return
    logging.basicConfig(level=logging.WARNING, handlers=[_log_handler("cxr-classify: %(message)s")])
    notes = NOTE_LOGGERS if quiet_notes else ()
    quiet = [logging.getLogger(name) for name in ("cxr_engine.reading.scanning", "pydicom", "pynetdicom", *notes)]
    levels = [each.level for each in quiet]
    with warnings.catch_warnings():
        silence_pydicom()
        quiet[0].setLevel(logging.ERROR)
        # pynetdicom logs each protocol fault in its own words ("Unknown PDU type received '0x48'", "ACSE timeout
        # reached ..."); the send's own line (DicomNetworkError) says what happened and what to check.
        quiet[2].setLevel(logging.CRITICAL)
        for each in quiet[3:]:
            each.setLevel(logging.ERROR)
        try:
            yield
        finally:
            for each, level in zip(quiet, levels):
                each.setLevel(level)


def _log_handler(layout: str) -> logging.Handler:
    """Standard error for log records, their control characters escaped (``cli_progress.PrintableFormatter``)."""
    from .cli_progress import PrintableFormatter

    handler = logging.StreamHandler()
    handler.setFormatter(PrintableFormatter(layout))
    return handler


class Terminated(BaseException):
    """SIGTERM, raised in the main thread as Ctrl-C raises ``KeyboardInterrupt``."""


def _raise_terminated(signum, frame):
    raise Terminated()


def _interrupt_code(exc: BaseException) -> int:
    return EXIT_SIGTERM if isinstance(exc, Terminated) else EXIT_SIGINT


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    handlers = {number: signal.getsignal(number) for number in (signal.SIGINT, signal.SIGTERM)}
    signal.signal(signal.SIGTERM, _raise_terminated)
    try:
        with _standard_error(args.verbose, quiet_notes=args.quiet):
            return _run(args)
    except (KeyboardInterrupt, Terminated) as exc:  # before the results were being written
        say("interrupted before any file was classified; nothing was written")
        return _interrupt_code(exc)
    finally:
        for number, handler in handlers.items():
            signal.signal(number, handler)


def _run(args) -> int:
    problems = output_path_problems(args)
    if not problems:
        problems = [line for line in [dicom_cli.node_problem(args)] if line]
    if not problems:
        problems = [line for line in [_remove_earlier_outputs(args)] if line]
    for line in problems:
        say(line)
    if problems:
        return EXIT_USAGE
    try:
        card = _select_card(args.model)
    except ModelError as exc:
        say(str(exc))
        return EXIT_USAGE
    try:
        reader = _start_reader(args, card)  # decoding workers start while the inputs are scanned
    except DecoderStartError as exc:
        say(f"{exc}; nothing was classified{NO_ISOLATION_HINT}")
        return EXIT_USAGE
    try:
        return _classify_inputs(args, card, reader)
    finally:
        if args.isolation:
            reader.close()


def _classify_inputs(args, card, reader) -> int:
    """Find the inputs, load the model(s) and write the results; ``reader`` decodes one file."""
    outputs = [folder for folder in (args.heatmap_dir, args.lung_mask_dir, args.dicom_out) if folder is not None]
    from .reading.discovery import find_images

    inputs = find_images(args.paths, exclude=outputs)
    files = inputs.files
    if inputs.own_outputs and not args.quiet:
        from .messages import own_outputs_skipped

        say(f"{own_outputs_skipped(inputs.own_outputs)}; -v lists them")
    if inputs.aliases and not args.quiet:
        _print_aliases(inputs.aliases, args.verbose)
    if inputs.copies and not args.quiet:
        _print_copies(inputs.copies, args.verbose)
    if inputs.uid_clashes and not args.quiet:
        _print_uid_clashes(inputs.uid_clashes)
    if not files:
        beside = " (outside the output folders)" if outputs else ""
        say(f"no DICOM, PNG or JPEG files found in the given paths{beside}")
        return EXIT_USAGE

    from .models.loading import load_classifier

    try:
        classifier = load_classifier(card, backend=args.backend, device=args.device)
    except (ModelError, ValueError) as exc:
        say(str(exc))
        return EXIT_USAGE
    segmenter = None
    if args.lung_mask_dir:
        from .models.lung_fields import LungSegmenter, lung_card

        try:
            segmenter = LungSegmenter(lung_card()).load()
        except (ModelError, ValueError) as exc:
            say(f"lung model: {exc}")
            return EXIT_USAGE
    return _write_results(files, classifier, args, reader, segmenter, inputs.problems, _file_notes(inputs))


#: Copies named one by one on standard error; the rest are counted (each is in the warnings column).
COPIES_SHOWN = 5


def _print_copies(copies: dict, verbose: bool) -> None:
    """One line per image stored as several identical files (the first ``COPIES_SHOWN``); ``-v`` logs
    every copy's path."""
    from .reading.copies import copies_line

    for path, others in list(copies.items())[:COPIES_SHOWN]:
        say(f"{copies_line(path, others)}" + ("" if verbose else "; -v lists them"))
        for other in others:
            logger.info("%s: identical copy of %s, left out", other, path)
    if len(copies) > COPIES_SHOWN:
        say(f"{len(copies) - COPIES_SHOWN} more images stored as several files, each classified "
            "once (see the warnings column)")


def _print_aliases(aliases: dict, verbose: bool) -> None:
    """One line per file reached by several paths (the first ``COPIES_SHOWN``); ``-v`` logs every other path."""
    from .reading.copies import aliases_line

    for path, others in list(aliases.items())[:COPIES_SHOWN]:
        say(aliases_line(path, others) + ("" if verbose else "; -v lists them"))
        for other in others:
            logger.info("%s: the same file as %s, left out", other, path)
    if len(aliases) > COPIES_SHOWN:
        say(f"{len(aliases) - COPIES_SHOWN} more files reached by several paths, each classified once (see the "
            "warnings column)")


def _print_uid_clashes(clashes: dict) -> None:
    from .reading.uid_clashes import clash_note

    for uid, paths in clashes.items():
        say(f"warning: {clash_note(uid, paths)}")


def _file_notes(inputs) -> dict[Path, list[str]]:
    """The warnings discovery adds to a file's row (absolute path -> lines): the other paths to the same file and
    the copies left out for it, the other images that claim its SOP Instance UID."""
    from .reading.copies import aliases_note, copies_note
    from .reading.uid_clashes import clash_note

    notes: dict[Path, list[str]] = {}
    for path, others in inputs.aliases.items():
        notes.setdefault(Path(os.path.abspath(path)), []).append(aliases_note(others))
    for path, others in inputs.copies.items():
        notes.setdefault(Path(os.path.abspath(path)), []).append(copies_note(others))
    for uid, paths in inputs.uid_clashes.items():
        for path in paths:
            notes.setdefault(Path(os.path.abspath(path)), []).append(clash_note(uid, paths))
    return notes


def _start_reader(args, card):
    """What decodes the inputs, as :func:`_decode_request` says: a started ``DecodePool`` of
    ``--decode-workers`` isolated workers (default one per core), or ``read_image`` in this
    process without ``--isolation``."""
    from .reading.decode_pool import DecodePool, available_cores
    from .reading.read import read_image

    request = _decode_request(args, card)
    if not args.isolation:
        return functools.partial(read_image, request=request)
    return DecodePool(args.decode_workers or available_cores(), request, timeout_s=args.decode_timeout).start()


def _image_checker():
    """The bundled image checks (``cxr_engine.models.image_checks``), or None (logged) when they are missing:
    every film is then classified with an empty ``out_of_scope``."""
    from .models.image_checks import default_checker

    return default_checker()


def _write_results(files, classifier, args, reader, segmenter=None, problems=None, notes=None) -> int:
    import time

    from .outputs.atomic import atomic_output
    from .cli_progress import BatchCounts, summary_line

    from .reading.decode_pool import available_cores

    # The scan names instances by absolute path; a file given on the command line may be relative.
    notes = notes or {}
    workers = args.decode_workers or available_cores()
    dicom = dicom_cli.DicomRun(args, classifier.card) if dicom_cli.wanted(args) else None
    rows = result_rows(files, classifier, heatmap_dir=args.heatmap_dir, batch_size=args.batch_size,
                       reader=_with_known_problems(reader, problems or {}),
                       lung_dir=args.lung_mask_dir, lung_segmenter=segmenter, decode_threads=workers,
                       checker=_image_checker(), auto_orient=args.auto_orient, heatmaps=dicom is not None,
                       full_reader=_full_reader(args, reader))
    # an averaged model's run always says on how many films its networks disagreed, 0 included
    from .models.ensemble_card import EnsembleCard

    averaged = isinstance(classifier.card, EnsembleCard)
    counts, started, failures = BatchCounts(disagree=0 if averaged else None), time.monotonic(), 0
    written = completed = False
    try:
        with (atomic_output(args.csv, "w") if args.csv else _stdout()) as handle:
            with reader if args.isolation else contextlib.nullcontext():
                interrupted, stopped, failures = _write_rows(handle, rows, files, classifier, args, dicom, notes,
                                                             counts)
            written = True  # every row is in and the decoders stopped; completing the CSV (fsync, rename) is left
        completed = True
    except (_CsvNotWritten, OSError) as exc:
        # Closing the CSV after a row failed to go in fails again (its buffer): the first failure is named.
        cause = next((e for e in _exception_chain(exc) if isinstance(e, _CsvNotWritten)), None)
        if cause is None and not (args.csv and written and not completed and isinstance(exc, OSError)):
            raise
        not_saved = str(cause) if cause is not None else exc.strerror or str(exc)
    else:
        not_saved = None
    if not_saved is not None:  # a full disk, the folder removed: one line, not a traceback
        rows.close()
        say(f"cannot write --csv {args.csv}: {not_saved}; the rows of the {counts.total} files done are not saved"
            + (" (the DICOM outputs written are kept, not sent)" if dicom else ""))
        if dicom:
            dicom.finish(send=False)
        return EXIT_SOME_FAILED
    if stopped is not None:
        done = (f"stopped after {counts.total} of {len(files)} files; {'the CSV' if args.csv else 'standard output'} "
                f"holds their rows" if counts.total else "nothing was classified")
        say(f"{stopped}; {done}{NO_ISOLATION_HINT}")
        if dicom:
            dicom.finish(send=False)
        return EXIT_SOME_FAILED if counts.total else EXIT_USAGE
    if interrupted is not None:
        where = "the CSV" if args.csv else "standard output"
        say(f"interrupted after {counts.total} of {len(files)} files; {where} holds the "
            f"{counts.total} rows")
        if dicom:
            dicom.finish(send=False)
        return _interrupt_code(interrupted)
    logger.info("%d of %d inputs classified with %s on %s", len(files) - failures, len(files), classifier.name, classifier.device)
    if not args.quiet:
        print(summary_line(counts, time.monotonic() - started), file=sys.stderr)
    unsent = dicom.finish() if dicom else 0
    return EXIT_SOME_FAILED if failures or unsent else EXIT_OK


def _exception_chain(exc: BaseException):
    """``exc`` and the exceptions it was raised while handling (``__context__``), newest first."""
    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        yield exc
        exc = exc.__context__


class _CsvNotWritten(Exception):
    """A row could not be written to ``--csv`` (the disk is full, the folder is gone): the reason."""


def _write_rows(handle, rows, files, classifier, args, dicom, notes, counts):
    """Write each result row to ``handle`` (the CSV, or standard output) as it comes, the DICOM outputs first;
    returns (the interruption, the decoder's stop, the number of failed files). ``_CsvNotWritten`` when
    ``--csv`` cannot take a row."""
    from .cli_progress import progress

    interrupted = stopped = None
    failures = 0
    writer = csv.DictWriter(handle, fieldnames=csv_columns(classifier.classes))
    writer.writeheader()
    try:
        for row in progress(rows, len(files), quiet=args.quiet):
            if dicom:
                dicom.on_row(row)
            # After the DICOM outputs: what discovery found about the file (copies, a shared UID) names
            # local paths, and is no suitability warning to flag the result out of scope in the hospital record.
            row.warnings = (*row.warnings, *notes.get(Path(os.path.abspath(row.path)), ()))
            row.film = row.heatmap = None  # the outputs are written; the next films need the memory
            try:
                writer.writerow(row.as_csv(classifier.classes))
                handle.flush()
            except OSError as exc:
                if not args.csv:
                    raise
                raise _CsvNotWritten(exc.strerror or str(exc)) from exc
            counts.add(row)
            if row.status != "ok":
                failures += 1
                say(f"{row.path}: {row.message}")
            elif row.output_warnings:  # classified, but an output asked for is missing: the run did not all it was asked
                failures += 1
                for warning in row.output_warnings:
                    say(f"{row.path}: {warning}")
    except (KeyboardInterrupt, Terminated) as exc:
        # The rows written so far are kept: the CSV is completed (renamed into place) below, and a
        # second Ctrl-C while the reads in flight end and the workers stop does not lose it.
        interrupted = exc
        for number in (signal.SIGINT, signal.SIGTERM):
            signal.signal(number, signal.SIG_IGN)
        rows.close()
    except DecoderStartError as exc:  # no file's fault: the rows so far are kept, no more can be read
        stopped = exc
        rows.close()
    return interrupted, stopped, failures


def _decode_request(args, card):
    """What the model reads: full resolution when ``--full-decode`` asks for it, else what the model
    input needs (``DecodeRequest.for_model``, as the desktop app decodes), whatever outputs are asked for,
    so that one film gets one probability."""
    from .reading.reduced_decode import FULL, DecodeRequest

    if args.full_decode:
        return FULL
    return DecodeRequest.for_model(card.input_size, card.preprocessing_version)


def _full_reader(args, reader):
    """What decodes a film again at full resolution for the outputs drawn on it (heat-maps, lung masks,
    DICOM outputs) when the model read it reduced: the same isolated workers, or ``read_image``."""
    from .reading.read import read_image
    from .reading.reduced_decode import FULL

    if args.isolation:
        return functools.partial(reader.read, request=FULL)
    return functools.partial(read_image, request=FULL)


def _with_known_problems(reader, problems: dict):
    """``reader``, except that a file the folder scan could not read fails with the scan's reason
    (the one the desktop app's Problems list shows) without being read again."""
    if not problems:
        return reader

    def read(path):
        if path in problems:
            raise ImageReadError(path, problems[path])
        return reader(path)

    return read


class _stdout:
    """``sys.stdout`` as a context manager that does not close it."""

    def __enter__(self):
        return sys.stdout

    def __exit__(self, *exc):
        sys.stdout.flush()
        return False


if __name__ == "__main__":
    sys.exit(main())
