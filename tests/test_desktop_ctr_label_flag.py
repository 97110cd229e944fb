"""The ratio's label on the film flags an unadjusted proposal outside the range the proposal gave on normal
films, as the CTR box and the PDF line do (tests/test_desktop_ctr_plausible.py): "CTR 0.31 (PA)" is followed by
"⚠ check" in the app's warning colour until the reader moves a line (and again after Reset). The real RSNA film
copied into tmp, the bundled lung model; and the item alone, for lines the reader left (restored) and no proposal."""
from __future__ import annotations

import pytest

pytest.importorskip("PySide6")
pytest.importorskip("pytestqt")

from PySide6.QtCore import QRectF  # noqa: E402
from PySide6.QtGui import QColor  # noqa: E402
from PySide6.QtWidgets import QGraphicsScene  # noqa: E402

from cxr_desktop.lung_items import CHECK_FLAG, WARNING_COLOUR, CtrOverlayItem  # noqa: E402
from cxr_desktop.lung_panel import WARNING_STYLE  # noqa: E402
from cxr_engine.models.cardiothoracic import PLAUSIBLE_RANGE, CardiothoracicRatio, Line  # noqa: E402

from test_desktop import card, make_window, private_settings  # noqa: E402,F401  (fixtures)
from test_desktop_ctr_plausible import low_ctr_film_shown  # noqa: E402


def on_screen(view, child) -> QRectF:
    return child.deviceTransform(view.viewportTransform()).mapRect(child.boundingRect())


def test_the_warning_colour_is_the_panels():
    assert WARNING_STYLE == f"color:{WARNING_COLOUR.name()};"
    assert CHECK_FLAG == "⚠ check"


def test_the_label_on_the_film_flags_the_low_proposal_until_a_line_moves(qtbot, make_window, tmp_path, shared_data):
    window, _, ratio = low_ctr_film_shown(qtbot, make_window, tmp_path, shared_data)
    item = window.lungs.ctr_item
    assert item.label_text() == f"CTR {ratio:.2f} (PA)"
    assert item.flag_text() == "⚠ check" and item.flag.isVisible()
    assert item.flag.brush().color() == QColor("#ffb347")  # the warning colour, the label's own stays white
    assert item.label.brush().color() == QColor(255, 255, 255)
    # On screen: on the label's line, just after its text, at any zoom.
    view = window.view
    for zoom in (None, 3.0):
        if zoom is not None:
            view.scale(zoom, zoom)
        label, flag = on_screen(view, item.label), on_screen(view, item.flag)
        assert not label.intersects(flag) and 0 < flag.left() - label.right() < 20
        assert abs(flag.top() - label.top()) < 1

    # The reader drags a line: the ratio is theirs, the flag goes (as the box's note does).
    start = item.cardiac.handles[1].pos()
    item.cardiac.set_end(1, start.x() + 60.0, start.y())
    assert window.lungs.current_ctr.adjusted
    assert item.flag_text() == "" and not item.flag.isVisible()
    assert item.label_text().startswith(f"CTR {window.lungs.current_ctr.current.ratio:.2f}")
    # Reset puts the proposal back, and with it the flag.
    window.lung_panel.reset_button.click()
    assert not window.lungs.current_ctr.adjusted
    assert window.lungs.ctr_item.flag_text() == "⚠ check"


def test_the_flag_needs_the_proposal_and_its_own_lines(qtbot):
    low = CardiothoracicRatio(Line((100.0, 500.0), (900.0, 500.0)), Line((400.0, 600.0), (640.0, 600.0)))  # 0.30
    usual = low.with_lines(cardiac=Line((300.0, 600.0), (700.0, 600.0)))  # 0.50
    high = low.with_lines(cardiac=Line((200.0, 600.0), (760.0, 600.0)))  # 0.70
    scene = QGraphicsScene()
    items = {}
    for name, ctr, proposed in (("low", low, low), ("high", high, high), ("usual", usual, usual),
                                ("kept", low, usual),  # the reader's lines restored over a usual proposal
                                ("unknown", low, None)):  # no proposal given: nothing to flag against
        items[name] = CtrOverlayItem(ctr, "PA", proposed=proposed)
        scene.addItem(items[name])
    assert {name: item.flag_text() for name, item in items.items()} == {
        "low": "⚠ check", "high": "⚠ check", "usual": "", "kept": "", "unknown": ""}
    # Dragged into the range and back out: the lines are no longer the proposal's, so no flag.
    item = items["low"]
    item.cardiac.set_end(1, 700.0, 600.0)
    assert item.flag_text() == ""
    item.cardiac.set_end(1, 650.0, 600.0)
    assert item.ctr.ratio < PLAUSIBLE_RANGE[0] and item.flag_text() == ""
