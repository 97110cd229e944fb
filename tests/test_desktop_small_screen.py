"""The window fits a small screen (new-user test, finding 2): on the offscreen platform's 800×800 screen
the result panel was cut off at its side (the dock narrower than the panel, its probabilities out of
sight). Now the result dock is never narrower than the panel and scrolls only up and down: each class's
probability is shown whole, inside the window, at the first window's size and at 800×800; the viewer keeps
about a third of the width and the study tree its thumbnails."""
from __future__ import annotations

import pytest

pytest.importorskip("PySide6")
pytest.importorskip("pytestqt")

from PySide6.QtCore import QRect  # noqa: E402
from PySide6.QtWidgets import QApplication, QScrollArea  # noqa: E402

from cxr_desktop import layout_state  # noqa: E402
from cxr_desktop.study_browser import ICON_PX  # noqa: E402

from test_desktop import (  # noqa: E402,F401  (fixtures)
    card, make_window, open_and_wait, private_settings, study, wait_classified,
)


def _shown_whole(widget, window) -> bool:
    """Whether ``widget`` is not clipped by any parent (a scroll area's viewport, a dock) and lies inside
    ``window``."""
    visible = widget.visibleRegion().boundingRect()
    top_left = widget.mapTo(window, widget.rect().topLeft())
    return visible == widget.rect() and window.rect().contains(QRect(top_left, widget.size()))


@pytest.mark.parametrize("size", [None, (800, 800)])
def test_the_probabilities_are_visible_on_an_800_pixel_screen(qtbot, make_window, study, size):
    window = make_window(show=True)
    screen = window.screen().availableGeometry()
    if screen.width() > 800 or screen.height() > 800:
        pytest.skip(f"the screen is {screen.width()}×{screen.height()}; this test needs the offscreen 800×800 one")
    layout_state.for_unattended_run(window)  # the first window's size: 92 % of the screen
    if size is not None:
        window.resize(*size)
    open_and_wait(qtbot, window, study)
    wait_classified(qtbot, window)
    QApplication.processEvents()
    panel = window.result_panel
    assert window.width() <= 800 and panel.bars
    area = next(parent for parent in _parents(panel) if isinstance(parent, QScrollArea))
    assert area.widget().width() <= area.viewport().width()  # never cut at the side
    for cls, row in panel.bars.items():
        for widget in (row.name, row.bar, row.value):
            assert _shown_whole(widget, window), (cls, widget, widget.visibleRegion().boundingRect())
        assert row.value.text().endswith("%")
    assert _shown_whole(panel.top_label, window)
    # The viewer keeps a usable share, and the study tree its thumbnails (it scrolls sideways instead).
    assert window.centralWidget().width() >= 0.3 * window.width()
    browser = window.browser
    assert browser.columnWidth(0) >= 3 * browser.indentation() + ICON_PX
    window.grab().save(str(study.parent / "small_screen.png"))  # look at it: pytest's tmp_path


def _parents(widget):
    while widget is not None:
        widget = widget.parentWidget()
        yield widget
