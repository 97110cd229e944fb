"""The study tree fits a narrow dock (tester finding: on an 800 px wide screen the "AI result" column
scrolled sideways, the result out of sight). The names stretch and elide, the result column is as wide as its
text, which stands in lines beside the thumbnail, and the tree is never narrower than the thumbnails plus
that column: no horizontal scroll bar at 800×800 with the 16 real RSNA films classified, the widest result
("⚠ … corrected") included."""
from __future__ import annotations

import shutil

import pytest

pytest.importorskip("PySide6")
pytest.importorskip("pytestqt")

from PySide6.QtCore import Qt  # noqa: E402
from PySide6.QtWidgets import QApplication, QDockWidget, QLabel, QMainWindow, QStyle  # noqa: E402

from cxr_desktop import layout_state  # noqa: E402
from cxr_desktop.study_browser import (  # noqa: E402
    ICON_PX, NAME, NAME_MIN_PX, OUT_OF_SCOPE_RESULT, RESULT, StudyBrowser,
)
from cxr_engine.reading.scanning import scan  # noqa: E402

from test_desktop import WAIT_MS, card, make_window, private_settings  # noqa: E402,F401  (fixtures)


@pytest.fixture()
def rsna_folder(tmp_path, shared_data):
    source = shared_data / "dicom_rsna"
    if not any(source.rglob("*.dcm")):
        pytest.skip(f"no DICOM files in {source}")
    return shutil.copytree(source, tmp_path / "rsna")


def fit_problems(browser) -> list[str]:
    """Why the tree does not show both columns whole (``[]``: it does)."""
    problems = []
    header, viewport = browser.header(), browser.viewport()
    scroll = browser.horizontalScrollBar()
    if scroll.isVisible() or scroll.maximum() > 0:
        problems.append(f"scrolls sideways by {scroll.maximum()} px")
    if header.sectionSize(NAME) + header.sectionSize(RESULT) > viewport.width():
        problems.append(f"columns {header.sectionSize(NAME)} + {header.sectionSize(RESULT)} px in {viewport.width()}")
    if header.sectionSize(NAME) < NAME_MIN_PX:
        problems.append(f"name column {header.sectionSize(NAME)} px < {NAME_MIN_PX}")
    metrics = browser.fontMetrics()
    margin = 2 * (browser.style().pixelMetric(QStyle.PixelMetric.PM_FocusFrameHMargin, None, browser) + 1)
    for path in browser.image_paths():
        item = browser._images[path]
        text = item.text(RESULT)
        needed = max(metrics.horizontalAdvance(line) for line in text.split("\n")) + margin
        if needed > header.sectionSize(RESULT):
            problems.append(f"{path.name}: {text!r} needs {needed} px, has {header.sectionSize(RESULT)}")
        cell = browser.visualRect(browser.indexFromItem(item, NAME))  # right of the row's indentation
        if cell.left() + margin // 2 + ICON_PX > header.sectionSize(NAME) - header.offset():
            problems.append(f"{path.name}: thumbnail from {cell.left()} px cut at {header.sectionSize(NAME)} px")
    return problems


def test_the_tree_shows_the_result_column_whole_on_an_800_pixel_screen(qtbot, make_window, rsna_folder):
    window = make_window(show=True)
    layout_state.for_unattended_run(window)
    window.resize(800, 800)
    window.classification.start()
    with qtbot.waitSignal(window.scanFinished, timeout=WAIT_MS):
        window.open_paths([rsna_folder])
    qtbot.waitUntil(lambda: window.classification.service.ready, timeout=WAIT_MS)
    with qtbot.waitSignal(window.classifyAllFinished, timeout=WAIT_MS):
        window.classify_everything()
    QApplication.processEvents()
    browser = window.browser
    paths = browser.image_paths()
    assert window.width() <= 800 and len(paths) == len(list(rsna_folder.rglob("*.dcm")))
    # a result on every row: the class and score, or that the film is out of the model's scope (no score)
    assert all("%" in text or text.startswith(OUT_OF_SCOPE_RESULT)
               for text in (browser.result_text(path)[0] for path in paths))
    assert fit_problems(browser) == []

    # The widest result, out of scope and shown corrected: the column widens and the dock with it.
    widest = paths[-1]
    browser.show_scope(widest, "lateral", "inverted")
    QApplication.processEvents()
    text = browser.result_text(widest)[0]
    assert text.startswith("⚠ ") and text.endswith("\ncorrected")
    assert fit_problems(browser) == []

    # The reader cannot drag the dock narrower than the thumbnails and the results.
    dock = window.findChild(QDockWidget, "studies")
    window.resizeDocks([dock], [80], Qt.Orientation.Horizontal)
    QApplication.processEvents()
    assert fit_problems(browser) == []
    # The viewer keeps a usable share of the small screen.
    assert window.centralWidget().width() >= 0.3 * window.width()
    window.grab().save(str(rsna_folder.parent / "tree_800x800.png"))  # look at it: pytest's tmp_path


def test_a_wider_result_widens_the_tree_and_its_dock(qtbot, rsna_folder):
    window = QMainWindow()
    qtbot.addWidget(window)
    window.setCentralWidget(QLabel("viewer"))
    browser = StudyBrowser()
    dock = QDockWidget("Studies")
    dock.setWidget(browser)
    window.addDockWidget(Qt.DockWidgetArea.LeftDockWidgetArea, dock)
    window.resize(800, 600)
    window.show()
    qtbot.waitExposed(window)
    browser.add_result(scan(rsna_folder))
    window.resizeDocks([dock], [0], Qt.Orientation.Horizontal)  # as narrow as it may be
    QApplication.processEvents()
    assert fit_problems(browser) == []
    before = dock.width()
    browser.set_result(browser.image_paths()[0], "⚠ not classified: the model failed")
    QApplication.processEvents()
    assert fit_problems(browser) == []
    assert dock.width() > before
