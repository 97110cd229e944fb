"""``cxr-classify``'s DICOM options: ``--dicom-out DIR`` (Secondary Capture, Comprehensive SR and
Encapsulated PDF per classified DICOM film), ``--deidentify``, and ``--send AE@HOST:PORT`` (C-STORE
of those outputs to a node when the run ends). Kept out of ``cli.py`` so that the batch loop only
calls :class:`DicomRun`'s two hooks."""
from __future__ import annotations

import argparse
import logging
import shutil
import tempfile
from pathlib import Path

from .cli_progress import say
from .cli_types import output_path, positive
from .outputs.output_paths import safe_name_part

logger = logging.getLogger("cxr_engine.cli")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("DICOM outputs and sending (nothing is sent unless --send is given)")
    group.add_argument("--dicom-out", type=output_path, metavar="DIR",
                       help="write per classified DICOM film a Secondary Capture (film, heat-map and result burned "
                            "in), a Comprehensive SR (TID 1500) and the PDF report as an Encapsulated PDF, in the "
                            "film's study (new series); never inside an input folder or the folder of an input file")
    group.add_argument("--deidentify", action="store_true",
                       help="with --dicom-out/--send: de-identify the outputs (PS3.15 Annex E basic profile: "
                            "pseudonymous patient, new UIDs, dates emptied; files named by input number only, "
                            "NNNNN_sc.dcm). The CSV, heat-map and lung-mask PNGs keep the input paths")
    group.add_argument("--send", metavar="AE@HOST:PORT",
                       help="send the DICOM outputs to this node (C-STORE) when the run ends; without --dicom-out "
                            "they are written to a temporary folder first. The node is verified (C-ECHO) before any "
                            "film is classified: no answer stops the run with exit status 2")
    group.add_argument("--ae-title", default=None, metavar="AE",
                       help="this program's AE title when sending (default CXRREADER)")
    group.add_argument("--network-timeout", type=positive(float), default=30.0, metavar="S",
                       help="seconds to wait for any answer from the node (default 30)")


def output_problems(args) -> list[str]:
    """One line per DICOM option that cannot be used (``--send X: reason``), checked before any work."""
    from .network.dicom_network import DicomNode
    from .outputs.output_paths import folder_problem

    lines = []
    if args.dicom_out is not None:
        reason = folder_problem(args.dicom_out, args.paths)
        if reason:
            lines.append(f"--dicom-out {args.dicom_out}: {reason}")
    if args.send:
        try:
            DicomNode.parse(args.send)
        except ValueError as exc:
            lines.append(f"--send {exc}")
    if args.ae_title is not None:
        try:
            DicomNode(args.ae_title, "localhost", 1)
        except ValueError as exc:
            lines.append(f"--ae-title {exc}")
    if args.deidentify and not (args.dicom_out or args.send):
        lines.append("--deidentify: applies to DICOM outputs; add --dicom-out DIR or --send AE@HOST:PORT")
    return lines


def node_problem(args) -> str | None:
    """With ``--send``: Verify (C-ECHO) the node before any film is classified, so that a node that is
    down, unreachable or refuses this AE title stops the run at once (``--send NODE: reason``); None
    when it answers or nothing is sent."""
    from .network.dicom_network import DicomNetworkError, DicomNode, NetworkSettings, verify

    if not args.send:
        return None
    node = DicomNode.parse(args.send)
    try:
        verify(node, NetworkSettings(args.ae_title or "CXRREADER", args.network_timeout))
    except DicomNetworkError as exc:
        return f"--send {exc} (checked with Verify (C-ECHO) before classifying; nothing was classified)"
    except Exception as exc:  # a library error: told, not a traceback
        logger.exception("Verify (C-ECHO) of %s failed", node)
        return f"--send {node}: Verify (C-ECHO) failed: {type(exc).__name__}: {exc}"
    return None


def wanted(args) -> bool:
    return bool(args.dicom_out or args.send)


class DicomRun:
    """The DICOM side of one ``cxr-classify`` run: write each row's outputs, send at the end."""

    def __init__(self, args, card):
        from .outputs.dicom_outputs import DicomOutputWriter

        self.args = args
        self._temporary = None
        folder = args.dicom_out
        if folder is None:
            self._temporary = tempfile.mkdtemp(prefix="cxr-dicom-out-")
            folder = Path(self._temporary)
        self.writer = DicomOutputWriter(Path(folder), card, deidentify=args.deidentify,
                                        inputs=tuple(args.paths), outbox=self._temporary is not None)
        self.written: list[Path] = []
        self._rows = 0

    def on_row(self, row) -> None:
        """Write the outputs of one classified row (rows come in input order) from its full-resolution
        ``film`` and ``heatmap`` (``cxr_engine.batch.result_rows`` with ``heatmaps``); a failure becomes
        one of the row's warnings."""
        from .outputs.dicom_outputs import DicomOutputError

        index = self._rows
        self._rows += 1
        image, heatmap_result = row.film, row.heatmap
        if row.status != "ok" or image is None:
            return
        if getattr(image, "source_format", "dicom") != "dicom":
            row.warnings = (*row.warnings, "no DICOM outputs: not a DICOM file (no study to add them to)")
            return
        try:
            # A de-identified object's file name must not carry the source's (often the patient's name or ID):
            # the input's number alone, which the CSV row of the same number ties back to the film.
            stem = f"{index:05d}" if self.writer.deidentify else f"{index:05d}_{safe_name_part(Path(row.path).stem)}"
            objects = self.writer.write(image, heatmap_result, warnings=row.warnings, stem=stem,
                                        out_of_scope=row.out_of_scope)
        except DicomOutputError as exc:
            logger.warning("%s", exc)
            row.warnings = (*row.warnings, f"DICOM outputs not written: {exc.reason}")
            return
        self.written.extend(obj.path for obj in objects)

    def finish(self, send: bool = True) -> int:
        """Send what was written when ``--send`` asks and ``send`` is True (False: an interrupted run sends
        nothing); returns the number of files that failed. The temporary outbox is removed either way."""
        from .network.dicom_network import DicomNetworkError, DicomNode, NetworkSettings, send_files

        try:
            if not (self.args.send and send):
                return 0
            node = DicomNode.parse(self.args.send)
            settings = NetworkSettings(self.args.ae_title or "CXRREADER", self.args.network_timeout)
            if not self.written:
                say(f"nothing to send to {node}")
                return 0
            try:
                report = send_files(node, self.written, settings)
            except DicomNetworkError as exc:
                say(f"--send {exc}")
                return len(self.written)
            except Exception as exc:  # a library error mid-send: told, not a traceback
                logger.exception("sending to %s failed", node)
                say(f"--send {node}: {type(exc).__name__}: {exc}")
                return len(self.written)
            for path, reason in report.failed:
                say(f"--send {node}: {path}: {reason}")
            logger.info("sent %d of %d DICOM outputs to %s", len(report.done), len(self.written), node)
            return len(report.failed)
        finally:
            if self._temporary:
                shutil.rmtree(self._temporary, ignore_errors=True)
