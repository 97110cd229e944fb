"""The welcome page shows its word-wrapped text whole (tester finding: the last line of the "Research use
only" notice was cut off). A label added to a layout with an alignment got its size hint's width but the
height for the layout's whole width, so at every window size from 800×600 to 1920×1080 the notice and the
introduction lost their last lines. Now they fill a centred column; checked at device pixel ratios 1 and 2."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("PySide6")
pytest.importorskip("pytestqt")

from PySide6.QtWidgets import QApplication  # noqa: E402

from cxr_desktop.welcome import WelcomePanel  # noqa: E402
from cxr_engine.models.model_card import INTENDED_USE  # noqa: E402

from label_geometry import clipped_labels  # noqa: E402
from test_desktop import card, make_window, private_settings  # noqa: E402,F401  (fixtures)

WINDOW_SIZES = [(800, 600), (1024, 768), (1280, 800), (1440, 900), (1920, 1080)]
RECENT = [f"/media/cdrom/study {i}" for i in range(5)]


@pytest.mark.parametrize("recent", [[], RECENT], ids=["first-start", "recent-folders"])
@pytest.mark.parametrize("size", WINDOW_SIZES, ids=[f"{w}x{h}" for w, h in WINDOW_SIZES])
def test_the_notice_shows_whole_in_the_main_window(qtbot, make_window, size, recent):
    window = make_window(show=True, with_model=False)
    window.welcome.set_recent(recent)
    window.resize(*size)
    QApplication.processEvents()
    assert window.stack.currentWidget() is window.welcome
    assert window.welcome.notice.text() == INTENDED_USE and window.welcome.notice.isVisible()
    assert clipped_labels(window.welcome, window) == []


@pytest.mark.parametrize("width", [320, 480, 640, 900, 1600])
def test_the_notice_shows_whole_at_any_panel_width(qtbot, width):
    welcome = WelcomePanel()
    qtbot.addWidget(welcome)
    welcome.resize(width, 700)
    welcome.show()
    qtbot.waitExposed(welcome)
    assert clipped_labels(welcome, welcome) == []
    # The column is as wide as the panel allows, up to its 640 px, and centred.
    margins = welcome.layout().contentsMargins()
    column = welcome.notice.geometry().translated(welcome.column.pos())
    assert column.width() == min(welcome.width() - margins.left() - margins.right(), 640)
    assert abs(column.left() - (welcome.width() - 1 - column.right())) <= 1


CHILD = """
import json, sys
from PySide6.QtWidgets import QApplication, QMainWindow, QStackedWidget
sys.path.insert(0, {tests!r})
from label_geometry import clipped_labels
from test_desktop_welcome_notice import WINDOW_SIZES
from cxr_desktop.welcome import WelcomePanel
app = QApplication([])
window = QMainWindow()
stack = QStackedWidget()
welcome = WelcomePanel()
stack.addWidget(welcome)
window.setCentralWidget(stack)
window.show()
found = {{}}
for size in WINDOW_SIZES:
    window.resize(*size)
    app.processEvents()
    found[str(size)] = clipped_labels(welcome, window)
print(json.dumps({{"ratio": window.devicePixelRatio(), "problems": found}}))
"""


def test_the_notice_shows_whole_at_device_pixel_ratio_2():
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen", QT_SCALE_FACTOR="2")
    tests = str(Path(__file__).parent)
    run = subprocess.run([sys.executable, "-c", CHILD.format(tests=tests)], env=env, capture_output=True,
                         text=True, timeout=120, cwd=Path(__file__).parents[1])
    assert run.returncode == 0, run.stderr
    reply = json.loads(run.stdout.strip().splitlines()[-1])
    assert reply["ratio"] == 2
    assert reply["problems"] == {str(size): [] for size in WINDOW_SIZES}
