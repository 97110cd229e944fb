"""Each viewport says which class its heat-map shows and the model's probability of it (tester finding 9:
in 1×2 and 2×2 a Normal 91 % film looked like the COVID-19 films beside it)."""
from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("PySide6")
pytest.importorskip("pytestqt")

from cxr_desktop.annotation_model import AnnotationStore  # noqa: E402
from cxr_desktop.formatting import heatmap_caption  # noqa: E402
from cxr_desktop.image_scene import ImageScene  # noqa: E402
from cxr_desktop.image_view import ImageView  # noqa: E402
from cxr_desktop.viewer_model import ViewerModel  # noqa: E402
from cxr_engine.reading.read import read_image  # noqa: E402
from cxr_engine.pixels.rendering import Renderer  # noqa: E402


def test_the_caption_names_the_class_and_its_probability():
    assert heatmap_caption("covid", 0.988) == "Heat-map: COVID-19 98.8 %"
    assert heatmap_caption("", 0.5) == ""


@pytest.mark.parametrize("corner_overlay", [True, False])
def test_the_viewport_paints_the_caption_while_the_heatmap_shows(qtbot, dicom_dir, corner_overlay):
    image = read_image(dicom_dir / "CR-MONO1-10-chest.dcm")
    model = ViewerModel()
    view = ImageView(ImageScene(model, AnnotationStore()))
    qtbot.addWidget(view)
    view.resize(600, 600)
    view.show()
    qtbot.waitExposed(view)
    model.set_image(image, Renderer(image))
    model.set_corner_overlay(corner_overlay)
    model.set_heatmap_visible(True)
    before = view.grab().toImage()
    model.set_heatmap(np.zeros(image.shape, np.float32), "normal", 0.91)
    assert view.heatmap_caption() == "Heat-map: Normal 91.0 %"
    after = view.grab().toImage()
    # The caption lies in the bottom-right corner: pixels there change, the top-left ones do not.
    def region(img, x0, y0):
        return [img.pixel(x, y) for x in range(x0, x0 + 150) for y in range(y0, y0 + 70, 2)]
    w, h = before.width(), before.height()
    assert region(before, w - 160, h - 76) != region(after, w - 160, h - 76)
    assert region(before, 10, 10) == region(after, 10, 10)
    model.set_heatmap_visible(False)
    assert view.heatmap_caption() == ""
