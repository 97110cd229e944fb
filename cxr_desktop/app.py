"""``cxr-desktop``: start the reader, optionally on a path, or run one unattended task and exit."""
from __future__ import annotations

import argparse
import logging
import sys
import time
from pathlib import Path

from cxr_engine.cli_types import positive

logger = logging.getLogger(__name__)

DEFAULT_TIMEOUT_S = 300.0


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="cxr-desktop",
        description="CXR Reader: view chest X-ray DICOM studies with an AI second reader "
                    "(research use only; not a medical device).",
    )
    parser.add_argument("path", nargs="?", type=Path, help="a folder, DICOMDIR or DICOM/PNG/JPEG file to open")
    parser.add_argument("--screenshot", type=Path, metavar="OUT.png",
                        help="open PATH, wait for the first classification, save a screenshot of the window, exit")
    parser.add_argument("--overlay", action="store_true", help="with --screenshot: show the Grad-CAM heat-map")
    parser.add_argument("--heatmap-style", choices=("colour", "outline"), default="colour",
                        help="with --overlay: a colour wash (default) or one outline where Grad-CAM x class "
                             "probability reaches 0.5")
    parser.add_argument("--lung-outline", action="store_true",
                        help="with --screenshot / --export-pdf: outline the lung fields on the first image")
    parser.add_argument("--ctr", action="store_true",
                        help="with --screenshot / --export-pdf: show the cardiothoracic ratio's proposed lines")
    parser.add_argument("--export-pdf", type=Path, metavar="OUT.pdf",
                        help="open PATH, wait for the first classification, write the first study's PDF, exit")
    parser.add_argument("--deidentify", action="store_true",
                        help="with --export-pdf and/or --result-json: leave out patient identifiers (the PDF as "
                             "File > Export PDF's De-identify; the JSON names the image by number, without its path, "
                             "UIDs or identifiers); text burned into the image is not removed")
    parser.add_argument("--result-json", type=Path, metavar="OUT.json",
                        help="open PATH, wait for the first classification, write the class probabilities "
                             "shown for the first image as JSON, exit (with or without --screenshot / --export-pdf)")
    parser.add_argument("--model", default="", metavar="NAME|card.json", help="bundled model name or model card path")
    parser.add_argument("--device", choices=("auto", "cpu", "cuda"), help="where to run the model")
    parser.add_argument("--backend", choices=("auto", "torch", "onnx"),
                        help="inference backend for this session (default: the Settings choice, else auto)")
    parser.add_argument("--timeout", type=positive(float), default=DEFAULT_TIMEOUT_S, metavar="SECONDS",
                        help=f"limit for --screenshot / --export-pdf / --result-json (default {DEFAULT_TIMEOUT_S:g})")
    parser.add_argument("-v", "--verbose", action="store_true", help="log more detail")
    args = parser.parse_args(argv)
    automated = args.screenshot is not None or args.export_pdf is not None or args.result_json is not None
    if automated and args.path is None:
        parser.error("--screenshot, --export-pdf and --result-json need a PATH to open")
    if args.overlay and args.screenshot is None:
        parser.error("--overlay goes with --screenshot")
    if (args.lung_outline or args.ctr) and args.screenshot is None and args.export_pdf is None:
        parser.error("--lung-outline and --ctr go with --screenshot or --export-pdf")
    if args.deidentify and args.export_pdf is None and args.result_json is None:
        parser.error("--deidentify goes with --export-pdf or --result-json")
    if args.path is not None:
        from cxr_engine.outputs.output_paths import source_problem

        for option, out in (("--screenshot", args.screenshot), ("--export-pdf", args.export_pdf),
                            ("--result-json", args.result_json)):
            reason = source_problem(out, [args.path]) if out is not None else None
            if reason:
                parser.error(f"{option} {out}: {reason}")
    return args


def main(argv: list[str] | None = None) -> int:
    """Run the app; returns the process exit status."""
    started = time.perf_counter()
    args = parse_args(argv)
    from cxr_engine.cli_progress import PrintableFormatter

    log = logging.StreamHandler()  # file names in the log with their control characters escaped, as cxr-classify's
    log.setFormatter(PrintableFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO, handlers=[log])
    if not args.verbose:  # each file's problem is in the Problems panel in the app's words, as cxr-classify's
        from cxr_engine.reading.library_output import silence_pydicom

        silence_pydicom()
    import shiboken6
    from PySide6.QtCore import Qt, QTimer
    from PySide6.QtWidgets import QApplication

    from .automation import Automation, AutomationTask
    from .main_window import MainWindow
    from .settings import APPLICATION, ORGANISATION
    from .theme import apply_dark_theme

    app = QApplication.instance() or QApplication(sys.argv[:1])
    app.setOrganizationName(ORGANISATION)
    app.setApplicationName(APPLICATION)
    apply_dark_theme(app)
    window = MainWindow(model=args.model, device=args.device, backend=args.backend)
    window.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
    automation = None
    if args.screenshot is not None or args.export_pdf is not None or args.result_json is not None:
        task = AutomationTask(args.screenshot, args.overlay, args.export_pdf, args.deidentify, args.timeout,
                              result_json=args.result_json, lung_outline=args.lung_outline, ctr=args.ctr,
                              heatmap_style=args.heatmap_style, model_named=args.model is not None)
        automation = Automation(window, task)
    window.show()
    logger.info("window shown %.2f s after start (torch imported: %s)", time.perf_counter() - started,
                "torch" in sys.modules)
    if args.path is not None:
        # Not once the window is gone or closing (Quit pressed before the event loop turned).
        QTimer.singleShot(0, lambda: shiboken6.isValid(window) and window.open_paths([args.path]))
    code = app.exec()
    # Quit (Ctrl+Q) closes the window, which deletes itself on close (WA_DeleteOnClose): only a
    # window still alive (an automated run ends with the window open) is closed here.
    if shiboken6.isValid(window):
        window.close()
    if automation is not None and automation.exit_code is not None:
        return automation.exit_code
    return code


if __name__ == "__main__":
    raise SystemExit(main())
