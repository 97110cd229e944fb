"""After a pick with the mouse from a result-panel combo box's popup (heat-map class and style), the keyboard
focus goes back to the viewer, so → is the next film, not the next class (a radiologist's follow-up to the
slider's fix); a combo box reached with Tab keeps the focus and its keys. Real films copied into tmp."""
from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("PySide6")
pytest.importorskip("pytestqt")

from PySide6.QtCore import Qt  # noqa: E402
from PySide6.QtTest import QTest  # noqa: E402
from PySide6.QtWidgets import QApplication  # noqa: E402

from cxr_desktop.viewer_model import HEATMAP_COLOUR, HEATMAP_OUTLINE  # noqa: E402

from test_desktop import (  # noqa: E402,F401  (fixtures)
    WAIT_MS, card, make_window, open_and_wait, private_settings, study, wait_classified,
)

LEFT, NONE = Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier


def pick_with_mouse(qtbot, combo, data) -> None:
    """Click ``combo`` open, then click the entry holding ``data`` in its popup."""
    QTest.mouseClick(combo, LEFT, NONE, combo.rect().center())
    popup = combo.view()
    qtbot.waitUntil(lambda: popup.isVisible())
    qtbot.wait(QApplication.doubleClickInterval() + 50)  # Qt ignores a release right after the popup opened
    index = popup.model().index(combo.findData(data), combo.modelColumn(), popup.rootIndex())
    QTest.mouseClick(popup.viewport(), LEFT, NONE, popup.visualRect(index).center())
    qtbot.waitUntil(lambda: not popup.isVisible())


def next_film_with_right(qtbot, window, paths) -> None:
    """→ with the focus where it is shows the next film."""
    before = window.viewer.path
    with qtbot.waitSignal(window.imageShown, timeout=WAIT_MS) as shown:
        qtbot.keyClick(QApplication.focusWidget(), Qt.Key.Key_Right)
    assert Path(shown.args[0]) == paths[paths.index(before) + 1]


def test_a_mouse_pick_in_a_heatmap_combo_hands_the_film_keys_back_to_the_viewer(qtbot, make_window, study):
    window = make_window(show=True)
    open_and_wait(qtbot, window, study)
    wait_classified(qtbot, window)
    paths = window.browser.image_paths()
    panel = window.result_panel
    style, classes = panel.heatmap_style, panel.heatmap_class
    assert style.isVisible() and classes.isEnabled()

    pick_with_mouse(qtbot, style, HEATMAP_OUTLINE)
    assert window.viewer.heatmap_style == HEATMAP_OUTLINE  # the pick took
    qtbot.waitUntil(lambda: QApplication.focusWidget() is window.view)
    next_film_with_right(qtbot, window, paths)
    assert window.viewer.heatmap_style == HEATMAP_OUTLINE  # → did not step the style

    wait_classified(qtbot, window)
    with qtbot.waitSignal(window.heatmapShown, timeout=WAIT_MS):  # the class's heat-map, computed
        pick_with_mouse(qtbot, classes, "normal")
    assert window.viewer.heatmap_class == "normal" and classes.currentData() == "normal"
    qtbot.waitUntil(lambda: QApplication.focusWidget() is window.view)
    next_film_with_right(qtbot, window, paths)


def test_a_combo_reached_with_tab_keeps_its_keys(qtbot, make_window, study):
    window = make_window(show=True)
    open_and_wait(qtbot, window, study)
    style = window.result_panel.heatmap_style
    assert window.viewer.heatmap_style == HEATMAP_COLOUR
    style.setFocus(Qt.FocusReason.TabFocusReason)
    qtbot.waitUntil(lambda: QApplication.focusWidget() is style)
    path = window.viewer.path
    qtbot.keyClick(style, Qt.Key.Key_Down)  # the next entry, picked with the keyboard (activated)
    qtbot.wait(50)
    assert window.viewer.heatmap_style == HEATMAP_OUTLINE and QApplication.focusWidget() is style
    qtbot.keyClick(style, Qt.Key.Key_Up)
    qtbot.wait(50)
    assert window.viewer.heatmap_style == HEATMAP_COLOUR and QApplication.focusWidget() is style
    # Opened and picked from with keys: still the combo's.
    qtbot.keyClick(style, Qt.Key.Key_F4)
    qtbot.waitUntil(lambda: style.view().isVisible())
    qtbot.keyClick(style.view(), Qt.Key.Key_Down)
    qtbot.keyClick(style.view(), Qt.Key.Key_Return)
    qtbot.waitUntil(lambda: not style.view().isVisible())
    qtbot.wait(50)
    # (offscreen, the closed popup stays the active window: the main window's own focus widget is asked)
    assert window.viewer.heatmap_style == HEATMAP_OUTLINE and window.focusWidget() is style
    assert window.viewer.path == path
