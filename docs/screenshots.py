"""Screenshots of the comparison view and the DICOM header viewer for the README.

    QT_QPA_PLATFORM=offscreen:configfile=docs/offscreen_1600x1000.json .venv/bin/python docs/screenshots.py

Opens the sample study with the default bundled model, shows two of its films side by side (1×2, linked,
each with its own heat-map), writes ``docs/screenshot_comparison.png``, then opens the header
viewer on the second film, searches "UID" (sequences with a match open) and writes
``docs/screenshot_header.png``. The two films
are of different people (the sample study holds no prior of the same patient), so the second pane is framed
and captioned in red as another patient's film, as the app shows a film dragged in from another patient.
"""
from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
TIMEOUT_S = 300.0


def _wait(app, condition, what: str) -> None:
    from PySide6.QtTest import QTest

    deadline = time.monotonic() + TIMEOUT_S
    while not condition():
        if time.monotonic() > deadline:
            raise SystemExit(f"timed out waiting for {what}")
        QTest.qWait(50)
        app.processEvents()


def main() -> int:
    sys.path.insert(0, str(REPO))
    os.environ.setdefault("CXR_DESKTOP_SETTINGS", str(Path(tempfile.mkdtemp()) / "settings.ini"))
    from PySide6.QtWidgets import QApplication

    from cxr_desktop.desk import show_header
    from cxr_desktop.main_window import MainWindow
    from cxr_desktop.theme import apply_dark_theme
    from cxr_engine.resources import samples_dir

    app = QApplication(sys.argv[:1])
    apply_dark_theme(app)
    window = MainWindow(model=None, device="cpu")  # the default model
    window.show()
    window.start_model()
    study = samples_dir() / "study"
    window.open_paths([study])
    _wait(app, lambda: window.viewer.heatmap is not None, "the first film's heat-map")
    first = window.viewer.path
    other = next(p for p in window.browser.image_paths() if p != first)
    window.desk.layouts["1x2"].trigger()
    viewport = window.comparison.viewports[0]
    viewport.show_path(other)
    window.desk.link.trigger()
    window.acts.heatmap.trigger()
    _wait(app, lambda: viewport.model.heatmap is not None, "the second film's heat-map")
    app.processEvents()
    out = REPO / "docs"
    window.grab().save(str(out / "screenshot_comparison.png"))

    show_header(window)
    viewer = window.header_viewer
    viewer.show_file(other)  # the film with sequences
    _wait(app, lambda: bool(viewer.elements) and viewer.path == other, "the header")
    viewer.search.setText("UID")
    viewer.resize(980, 560)
    app.processEvents()
    viewer.grab().save(str(out / "screenshot_header.png"))
    print(f"wrote {out / 'screenshot_comparison.png'} and {out / 'screenshot_header.png'} ({first.name}, {other.name})")
    window.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
