"""The heat-map colour wash (cxr_desktop.heatmap_layer): built from every n-th heat-map pixel of a large
film and scaled onto it, each layer pixel centred on the image pixel it was sampled at."""
from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("PySide6")
pytest.importorskip("pytestqt")

from PySide6.QtCore import QPointF  # noqa: E402
from PySide6.QtWidgets import QGraphicsRectItem  # noqa: E402

from cxr_desktop.heatmap import heatmap_rgba  # noqa: E402
from cxr_desktop.heatmap_layer import LAYER_MAX_PX, HeatmapLayer, layer_step  # noqa: E402
from cxr_desktop.viewer_model import ViewerModel  # noqa: E402


def test_layer_step_keeps_the_long_side_within_the_limit():
    assert layer_step((440, 440)) == 1 and layer_step((LAYER_MAX_PX, 10)) == 1
    assert layer_step((2128, 2000)) == 2 and layer_step((4000, 3000)) == 4
    assert all(-(-n // layer_step((n, 1))) <= LAYER_MAX_PX for n in range(1, 9000, 97))


def test_a_large_heat_map_is_drawn_from_every_second_pixel_centred_on_its_own(qtbot):
    model = ViewerModel()
    parent = QGraphicsRectItem(0, 0, 2000, 2128)
    layer = HeatmapLayer(model, parent)
    rows, cols = np.mgrid[0:2128, 0:2000]
    heat = ((rows + cols) / (2128 + 2000)).astype(np.float32)
    model.set_heatmap(heat, "covid", 0.9)
    pixmap = layer.pixmap_item.pixmap()
    assert (pixmap.width(), pixmap.height()) == (1000, 1064) and layer.pixmap_item.scale() == 2
    want = heatmap_rgba(heat[::2, ::2], 0.9)
    got = pixmap.toImage()
    for i, j in ((0, 0), (531, 777), (1000, 900), (1063, 999)):
        colour = got.pixelColor(j, i)
        assert colour.alpha() == want[i, j, 3]
        if colour.alpha() == 255:  # (a transparent pixel's colour is not kept)
            assert (colour.red(), colour.green(), colour.blue()) == tuple(want[i, j, :3])
        # The centre of layer pixel (i, j) lies on the centre of image pixel (2i, 2j).
        centre = layer.pixmap_item.mapToParent(QPointF(j + 0.5, i + 0.5))
        assert (centre.x(), centre.y()) == (2 * j + 0.5, 2 * i + 0.5)
