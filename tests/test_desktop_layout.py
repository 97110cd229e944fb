"""A layout that fits (issue 18 item 6): the first window within the screen at 150 % and 200 %
scaling, docks, toggles, viewports and text size kept across sessions, corner text cut instead of
overlapping, messages wrapped, measurement labels inside the view, export wording, Help."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("PySide6")
pytest.importorskip("pytestqt")

from PySide6.QtCore import QPointF, QRectF, QSettings, Qt  # noqa: E402
from PySide6.QtWidgets import QApplication, QDockWidget  # noqa: E402

from cxr_desktop import layout_state  # noqa: E402
from cxr_desktop.annotation_model import RULER  # noqa: E402
from cxr_desktop.export_dialog import scope_text  # noqa: E402
from cxr_desktop.help import about_text, user_guide_path, version  # noqa: E402
from cxr_desktop.main_window import MainWindow  # noqa: E402
from cxr_desktop.qimage import to_rgb_array  # noqa: E402
from cxr_desktop.settings import SETTINGS_ENV, AppSettings  # noqa: E402

from test_desktop import (  # noqa: E402,F401  (fixtures)
    SIIM, card, drag, make_window, open_and_wait, private_settings, select, study,
)

REPO = Path(__file__).resolve().parents[1]

_PROBE = """
import json, sys
from PySide6.QtWidgets import QApplication
from cxr_desktop.main_window import MainWindow
app = QApplication(sys.argv[:1])
window = MainWindow(model="", device="cpu")
window.show()
app.processEvents()
screen = window.screen().availableGeometry()
frame = window.frameGeometry()
size = window.size()
print(json.dumps({"screen": [screen.x(), screen.y(), screen.width(), screen.height()],
                  "frame": [frame.x(), frame.y(), frame.width(), frame.height()],
                  "size": [size.width(), size.height()],
                  "minimum": [window.minimumSizeHint().width(), window.minimumSizeHint().height()],
                  "scale": window.devicePixelRatioF()}))
window.close()
"""


@pytest.mark.parametrize("width, height, scale", [(1366, 768, 1.5), (1920, 1080, 2.0), (1920, 1080, 1.0)])
def test_the_first_window_fits_the_screen_at_150_and_200_percent(tmp_path, width, height, scale):
    config = tmp_path / "screen.json"
    config.write_text(json.dumps({"screens": [{"name": "s", "x": 0, "y": 0, "width": width, "height": height,
                                               "logicalDpi": 96, "logicalBaseDpi": 96, "dpr": 1}]}))
    env = dict(os.environ, QT_QPA_PLATFORM=f"offscreen:configfile={config}", QT_SCALE_FACTOR=str(scale),
               **{SETTINGS_ENV: str(tmp_path / "s.ini")})
    env.pop("CXR_MODEL_CARD", None)
    proc = subprocess.run([sys.executable, "-c", _PROBE], capture_output=True, text=True, cwd=REPO, env=env,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    probe = json.loads(proc.stdout.strip().splitlines()[-1])
    sx, sy, sw, sh = probe["screen"]
    fx, fy, fw, fh = probe["frame"]
    assert probe["scale"] == pytest.approx(scale)
    assert (sw, sh) == (round(width / scale), round(height / scale))
    assert sx <= fx and sy <= fy and fx + fw <= sx + sw and fy + fh <= sy + sh, probe
    assert probe["minimum"][0] <= sw and probe["minimum"][1] <= sh, probe
    if scale == 1.0:  # room for the preferred size: it is used
        assert probe["size"] == [layout_state.PREFERRED_SIZE.width(), layout_state.PREFERRED_SIZE.height()]


def _window(qtbot, card, settings_file: Path) -> MainWindow:
    window = MainWindow(AppSettings(QSettings(str(settings_file), QSettings.Format.IniFormat)),
                        model=str(card.path), device="cpu", models_dir=settings_file.parent / "no_models")
    window.show()
    qtbot.waitExposed(window)
    return window


def test_docks_toggles_viewports_and_text_size_are_kept_for_the_next_session(qtbot, card, private_settings):
    app = QApplication.instance()
    default_pt = app.font().pointSizeF()
    window = _window(qtbot, card, private_settings)
    result = window.findChild(QDockWidget, "result")
    window.addDockWidget(Qt.DockWidgetArea.LeftDockWidgetArea, result)
    window.acts.corner_overlay.trigger()
    window.acts.heatmap.trigger()
    window.desk.layouts["2x2"].trigger()
    window.desk.larger_text.trigger()
    window.desk.larger_text.trigger()
    assert app.font().pointSizeF() == pytest.approx(default_pt + 2)
    # Above the window's minimum width with the result dock (never narrower than its panel) beside the tree.
    window.resize(760, 560)
    window.close()
    window.deleteLater()

    again = _window(qtbot, card, private_settings)
    try:
        assert again.dockWidgetArea(again.findChild(QDockWidget, "result")) == Qt.DockWidgetArea.LeftDockWidgetArea
        assert again.viewer.corner_overlay is False and again.acts.corner_overlay.isChecked() is False
        assert again.viewer.heatmap_visible and again.acts.heatmap.isChecked()
        assert again.comparison.layout_name == "2x2" and again.desk.layouts["2x2"].isChecked()
        assert (again.width(), again.height()) == (760, 560)
        assert app.font().pointSizeF() == pytest.approx(default_pt + 2)
        again.desk.default_text.trigger()
        assert app.font().pointSizeF() == pytest.approx(default_pt)
    finally:
        again.close()
        again.deleteLater()
        layout_state.apply_font_size(0)


def _bright_columns(pixels: np.ndarray) -> np.ndarray:
    """Columns holding text-bright pixels."""
    return np.flatnonzero((pixels.max(axis=2) > 150).any(axis=0))


@pytest.fixture()
def long_name(tmp_path, dicom_dir) -> Path:
    """A real film whose patient name is far longer than half a narrow view, with no top-right text."""
    import pydicom

    folder = tmp_path / "long"
    folder.mkdir()
    ds = pydicom.dcmread(dicom_dir / SIIM)
    ds.PatientName = "VERYLONGFAMILYNAMEWITHOUTANYSPACES^FIRSTNAMETHATGOESONANDON^MIDDLE"
    for keyword in ("InstitutionName", "StudyDescription", "StudyDate", "StudyTime", "AccessionNumber"):
        if keyword in ds:
            delattr(ds, keyword)
    ds.save_as(folder / "long.dcm")
    return folder


def test_corner_text_is_cut_at_half_the_view_instead_of_overlapping(qtbot, make_window, long_name):
    window = make_window(show=True)
    open_and_wait(qtbot, window, long_name)
    window.resize(760, 560)
    qtbot.wait(50)
    view = window.view
    width = view.viewport().width()
    assert view.fontMetrics().horizontalAdvance(window.viewer.image.metadata.patient_name) > width / 2
    name_band = to_rgb_array(view.viewport().grab().toImage())[6:6 + view.fontMetrics().height()]
    columns = _bright_columns(name_band)
    assert columns.size and columns.max() < width / 2 + 2


def test_a_long_error_message_wraps_inside_the_viewer(qtbot, make_window):
    window = make_window(show=True)
    window.stack.setCurrentIndex(1)
    window.resize(760, 560)
    view = window.view
    view.set_message("This file cannot be displayed:\n" + "a damaged or truncated JPEG 2000 code stream " * 6)
    qtbot.wait(50)
    shot = to_rgb_array(view.viewport().grab().toImage())
    columns = _bright_columns(shot)
    rows = np.flatnonzero((shot.max(axis=2) > 150).any(axis=1))
    assert columns.size and columns.min() >= 10 and columns.max() <= view.viewport().width() - 10
    assert rows.max() - rows.min() > 4 * view.fontMetrics().height()  # several lines


def test_a_ruler_label_near_the_edge_stays_inside_the_view(qtbot, make_window, study):
    window = make_window(show=True)
    open_and_wait(qtbot, window, study)
    select(qtbot, window, study / "siim.dcm")
    view = window.view
    port = view.viewport().rect()
    window.acts.tool[RULER].trigger()
    drag(view, QPointF(port.width() / 2, port.height() / 2), QPointF(port.width() - 3, port.height() - 3))
    view.viewport().repaint()
    (item,) = window.scene.annotation_items()
    label = item._label
    shown = label.deviceTransform(view.viewportTransform()).mapRect(label.boundingRect())
    assert QRectF(port).contains(shown), (shown, port)
    # Without the shift it would stick out: the end point is 3 px from the corner.
    assert label.transform().dx() < 0 and label.transform().dy() < 0
    assert label.text().endswith(" px")  # its Pixel Spacing 0.168 mm gives a 172-mm field of view: set aside (a resized film), lengths in px


def test_export_dialog_wording():
    assert scope_text(1, "image") == "1 image"
    assert scope_text(1, "study") == "1 image of this study"
    assert scope_text(3, "study") == "3 images of this study"


def test_help_shows_the_version_and_the_user_guide(qtbot, make_window):
    from importlib import metadata

    from cxr_desktop.help import UserGuide

    assert version() == metadata.version("cxr-reader")
    assert version() in about_text()
    guide = user_guide_path()
    assert guide == REPO / "docs" / "user_guide.md" and guide.is_file()
    window = make_window()
    dialog = UserGuide(window)
    first_heading = next(line for line in guide.read_text(encoding="utf-8").splitlines() if line.startswith("# "))
    assert first_heading[2:] in dialog.browser.toPlainText()
    dialog.deleteLater()
    help_menu = next(a.menu() for a in window.menuBar().actions() if a.text() == "&Help")
    assert [a.text() for a in help_menu.actions() if not a.isSeparator()] == ["Keyboard shortcuts", "User guide",
                                                                               "About"]


def test_an_unattended_run_ignores_and_keeps_the_readers_layout(qtbot, card, private_settings, tmp_path):
    from cxr_desktop.automation import Automation, AutomationTask

    store = QSettings(str(private_settings), QSettings.Format.IniFormat)
    layout = layout_state.LayoutSettings(store)
    layout.set_toggle("heatmap", True)
    layout.set_toggle("corner_overlay", False)
    layout.comparison = "2x2"
    store.sync()
    window = _window(qtbot, card, private_settings)
    assert window.viewer.heatmap_visible and window.comparison.layout_name == "2x2"  # a session restores them
    window.addDockWidget(Qt.DockWidgetArea.LeftDockWidgetArea, window.findChild(QDockWidget, "result"))
    window.close()
    window.deleteLater()

    window = _window(qtbot, card, private_settings)
    Automation(window, AutomationTask(screenshot=tmp_path / "shot.png", timeout_s=60))
    assert not window.viewer.heatmap_visible and window.viewer.corner_overlay
    assert window.comparison.layout_name == "1x1"
    result = window.findChild(QDockWidget, "result")
    assert window.dockWidgetArea(result) == Qt.DockWidgetArea.RightDockWidgetArea  # where the window puts it
    window.close()
    window.deleteLater()
    store.sync()
    assert layout.toggle("heatmap", False) and layout.comparison == "2x2"  # left as the reader had it


def test_an_exception_in_an_unattended_run_ends_it_at_once(qtbot, card, private_settings, tmp_path, monkeypatch):
    """Qt prints an exception raised in a slot and goes on: an unattended run used to wait out its time limit
    (300 s) after one (a file name that is not UTF-8 broke the result JSON)."""
    import sys

    from cxr_desktop.automation import Automation, AutomationTask

    printed, exits = [], []
    monkeypatch.setattr(sys, "excepthook", lambda kind, value, tb: printed.append(str(value)))  # Qt's printing
    # the run's end, recorded: a real QApplication.exit would end the event loops of the tests that follow
    monkeypatch.setattr(QApplication, "exit", staticmethod(lambda code=0: exits.append(code)))
    window = _window(qtbot, card, private_settings)
    automation = Automation(window, AutomationTask(screenshot=tmp_path / "shot.png", timeout_s=300))
    try:
        raise RuntimeError("broken in a slot")
    except RuntimeError:
        sys.excepthook(*sys.exc_info())  # what PySide6 calls for an exception in a slot
    assert printed == ["broken in a slot"] and automation.exit_code == 1 and exits == [1]
    assert sys.excepthook is not automation._hook  # put back when the run ended
    window.close()
    window.deleteLater()
