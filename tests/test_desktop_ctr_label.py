"""The cardiothoracic ratio's label sits below the thoracic line's left end handle at every zoom, never
over it (tester finding 17: at a low zoom the label overlapped the line's end)."""
from __future__ import annotations

import pytest

pytest.importorskip("PySide6")
pytest.importorskip("pytestqt")

from PySide6.QtCore import QRectF  # noqa: E402
from PySide6.QtWidgets import QGraphicsScene, QGraphicsView  # noqa: E402

from cxr_desktop.lung_items import CtrOverlayItem  # noqa: E402
from cxr_engine.models.cardiothoracic import CardiothoracicRatio, Line  # noqa: E402


@pytest.mark.parametrize("zoom", [0.2, 0.38, 1.0, 3.0])
def test_the_ratio_label_is_clear_of_the_end_handle(qtbot, zoom):
    scene = QGraphicsScene(QRectF(0, 0, 1100, 1100))
    item = CtrOverlayItem(CardiothoracicRatio(Line((102.0, 512.5), (973.0, 512.5)), Line((380.0, 640.0), (700.0, 640.0))),
                          "PA")
    scene.addItem(item)
    view = QGraphicsView(scene)
    qtbot.addWidget(view)
    view.resize(900, 900)
    view.scale(zoom, zoom)
    view.show()
    qtbot.waitExposed(view)

    def on_screen(child):
        return child.deviceTransform(view.viewportTransform()).mapRect(child.boundingRect())

    label = on_screen(item.label)
    handle = on_screen(item.thoracic.handles[0])
    assert not label.intersects(handle), (label, handle)
    assert label.top() >= handle.bottom() and abs(label.left() - handle.center().x()) < 2
    item.set_export_scale(2.0, 2.0)  # an export's larger handles: still clear
    assert not on_screen(item.label).intersects(on_screen(item.thoracic.handles[0]))
    item.set_export_scale(1.0, 1.0)
