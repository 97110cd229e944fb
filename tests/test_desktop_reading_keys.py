"""Keyboard-only reading, the gaps a radiologist's test found, on real films copied into tmp: pan keys
after zooming in, Esc out of a drawing tool, a word in the status bar at either end of the film list,
and the focus handed back to the viewer after the mouse let go of the heat-map opacity slider."""
from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("PySide6")
pytest.importorskip("pytestqt")

from PySide6.QtCore import QEvent, QPoint, QPointF, Qt  # noqa: E402
from PySide6.QtTest import QTest  # noqa: E402
from PySide6.QtWidgets import QApplication  # noqa: E402

from cxr_desktop.annotation_model import ANGLE, RULER  # noqa: E402
from cxr_desktop.image_view import NAVIGATE  # noqa: E402
from cxr_desktop.shortcuts import sheet_html, shortcut_rows  # noqa: E402

from test_desktop import (  # noqa: E402,F401  (fixtures)
    WAIT_MS, card, make_window, mouse, open_and_wait, private_settings, select, study,
)

SHIFT, NONE = Qt.KeyboardModifier.ShiftModifier, Qt.KeyboardModifier.NoModifier
LEFT = Qt.MouseButton.LeftButton


def press(qtbot, window, key, modifiers=NONE) -> None:
    window.activateWindow()
    window.view.setFocus()
    qtbot.keyClick(window.view, key, modifiers)


def test_shift_arrows_pan_the_zoomed_film_and_the_sheet_lists_them(qtbot, make_window, study):
    window = make_window(show=True)
    open_and_wait(qtbot, window, study)
    view = window.view
    press(qtbot, window, Qt.Key.Key_Right, SHIFT)  # fitted: all of the film is in view, nothing to pan
    assert "whole film is in view" in window.statusBar().currentMessage()
    for _ in range(6):
        window.acts.zoom_in.trigger()  # Ctrl++
    shown = window.viewer.path
    h, v = view.horizontalScrollBar(), view.verticalScrollBar()
    width, height = view.viewport().width(), view.viewport().height()
    for key, bar, step in ((Qt.Key.Key_Right, h, round(width / 8)), (Qt.Key.Key_Down, v, round(height / 8)),
                           (Qt.Key.Key_Left, h, -round(width / 8)), (Qt.Key.Key_Up, v, -round(height / 8))):
        before = bar.value()
        press(qtbot, window, key, SHIFT)
        assert bar.value() - before == step, key
    assert window.viewer.path == shown  # Shift+arrows pan; the arrows alone still change the film
    rows = {text: keys for _, text, keys in shortcut_rows(window)}
    for direction in ("left", "right", "up", "down"):
        assert rows[f"Pan {direction}"] == f"Shift+{direction.capitalize()}"
    assert "Pan right" in sheet_html(window) and rows["Cancel drawing, back to the Navigate tool"] == "Esc"


@pytest.mark.parametrize("kind, key", [(RULER, Qt.Key.Key_M), (ANGLE, Qt.Key.Key_G)])
def test_esc_drops_the_shape_being_drawn_and_brings_back_the_navigate_tool(qtbot, make_window, study, kind, key):
    window = make_window(show=True)
    open_and_wait(qtbot, window, study)
    view, scene = window.view, window.scene
    press(qtbot, window, key)
    assert view.mode == kind and window.acts.tool[kind].isChecked()
    items_before = len(scene.items())
    start, end = QPointF(200, 200), QPointF(380, 260)
    mouse(view, QEvent.Type.MouseButtonPress, start, LEFT, LEFT)
    for i in range(1, 4):
        mouse(view, QEvent.Type.MouseMove, start + (end - start) * (i / 3), Qt.MouseButton.NoButton, LEFT)
    if kind == ANGLE:  # the first arm is down; the angle waits for the click that ends the second arm
        mouse(view, QEvent.Type.MouseButtonRelease, end, LEFT, Qt.MouseButton.NoButton)
    assert len(scene.items()) > items_before  # the shape being drawn is on screen
    press(qtbot, window, Qt.Key.Key_Escape)
    assert view.mode == NAVIGATE and window.acts.tool[NAVIGATE].isChecked()
    assert all(v.mode == NAVIGATE for v in window.comparison.views)
    assert len(scene.items()) == items_before
    assert window.statusBar().currentMessage() == "Drawing cancelled; Navigate tool"
    if kind == RULER:  # the mouse let go after Esc stores nothing
        mouse(view, QEvent.Type.MouseButtonRelease, end, LEFT, Qt.MouseButton.NoButton)
    else:
        mouse(view, QEvent.Type.MouseButtonPress, QPointF(300, 400), LEFT, LEFT)
        mouse(view, QEvent.Type.MouseButtonRelease, QPointF(300, 400), LEFT, Qt.MouseButton.NoButton)
    assert window.annotations.for_path(window.viewer.path) == []
    # A tool chosen without drawing: Esc goes back to Navigate too.
    press(qtbot, window, Qt.Key.Key_E)
    press(qtbot, window, Qt.Key.Key_Escape)
    assert view.mode == NAVIGATE and window.statusBar().currentMessage() == "Navigate tool"


def test_page_keys_and_arrows_at_either_end_of_the_list_say_so(qtbot, make_window, study):
    window = make_window(show=True)
    open_and_wait(qtbot, window, study)
    paths = window.browser.image_paths()
    assert len(paths) == 3
    select(qtbot, window, paths[-1])
    for key in (Qt.Key.Key_PageDown, Qt.Key.Key_Right):
        window.statusBar().clearMessage()
        press(qtbot, window, key)
        qtbot.wait(50)
        assert window.viewer.path == paths[-1]
        assert window.statusBar().currentMessage() == "Last film of the list", key
    select(qtbot, window, paths[0])
    for key in (Qt.Key.Key_PageUp, Qt.Key.Key_Left):
        window.statusBar().clearMessage()
        press(qtbot, window, key)
        qtbot.wait(50)
        assert window.viewer.path == paths[0]
        assert window.statusBar().currentMessage() == "First film of the list", key
    window.statusBar().clearMessage()
    press(qtbot, window, Qt.Key.Key_Up)  # the first series already
    assert window.statusBar().currentMessage() == "First series of the list"
    # A key that moves says nothing.
    window.statusBar().clearMessage()
    with qtbot.waitSignal(window.imageShown, timeout=WAIT_MS):
        press(qtbot, window, Qt.Key.Key_PageDown)
    assert window.statusBar().currentMessage() == ""


def test_the_film_keys_work_again_after_the_mouse_let_go_of_the_opacity_slider(qtbot, make_window, study):
    window = make_window(show=True)
    first = open_and_wait(qtbot, window, study)
    paths = window.browser.image_paths()
    slider = window.result_panel.opacity
    assert slider.isVisible()
    value = slider.value()
    QTest.mouseClick(slider, LEFT, NONE, QPoint(slider.width() - 3, slider.height() // 2))  # by the mouse
    qtbot.waitUntil(lambda: QApplication.focusWidget() is window.view)
    assert slider.value() != value  # the click did move the slider
    with qtbot.waitSignal(window.imageShown, timeout=WAIT_MS) as shown:
        qtbot.keyClick(QApplication.focusWidget(), Qt.Key.Key_Right)  # → is the next film, not the opacity
    assert Path(shown.args[0]) == paths[paths.index(first) + 1]

    # Reached with Tab on purpose, the slider keeps the focus and its keys.
    slider.setFocus(Qt.FocusReason.TabFocusReason)
    qtbot.waitUntil(lambda: QApplication.focusWidget() is slider)
    value, path = slider.value(), window.viewer.path
    qtbot.keyClick(slider, Qt.Key.Key_Left)
    qtbot.wait(50)
    assert slider.value() == value - slider.singleStep() and QApplication.focusWidget() is slider
    assert window.viewer.path == path


def test_the_zoom_keys_zoom_about_the_views_centre_and_the_wheel_about_the_mouse(qtbot, make_window, study,
                                                                                   monkeypatch):
    """A radiologist's test (a real X display): Ctrl++ zoomed about the mouse's position (the film's top-left corner
    in a fresh window), pushing the film off screen. Qt zooms about the mouse only while the pointer is over the view,
    which an offscreen test cannot arrange, so this checks the anchor each zoom scales about: the view's centre for
    the keys and menu, the mouse for the wheel. The film's centre stays in the middle after four Ctrl++."""
    from PySide6.QtGui import QWheelEvent
    from PySide6.QtWidgets import QGraphicsView

    window = make_window(show=True)
    open_and_wait(qtbot, window, study)
    view = window.view
    anchors = []
    scale = view.scale
    monkeypatch.setattr(view, "scale", lambda sx, sy: (anchors.append(view.transformationAnchor()), scale(sx, sy)))
    centre = view.viewport().rect().center()
    before, zoom = view.mapToScene(centre), view.zoom
    for _ in range(4):
        window.acts.zoom_in.trigger()  # Ctrl++
    assert anchors == [QGraphicsView.ViewportAnchor.AnchorViewCenter] * 4
    assert view.zoom == pytest.approx(zoom * 1.25**4, rel=1e-3)
    after = view.mapToScene(centre)
    side = view.image_scene.image_item.sceneBoundingRect().width()
    assert abs(after.x() - before.x()) < 0.01 * side and abs(after.y() - before.y()) < 0.01 * side
    wheel = QWheelEvent(QPointF(centre), view.viewport().mapToGlobal(centre).toPointF(), QPoint(0, 0), QPoint(0, 120),
                        Qt.MouseButton.NoButton, Qt.KeyboardModifier.NoModifier, Qt.ScrollPhase.NoScrollPhase, False)
    QApplication.sendEvent(view.viewport(), wheel)
    assert anchors[-1] == QGraphicsView.ViewportAnchor.AnchorUnderMouse
