"""The heat-map legend in the result panel (tester finding: the caption was cramped under the colour bar).
The caption stands ``CAPTION_SPACING`` px below the colour bar's labels and shows its whole text; the colour
bar is as tall as its bar and one line of its labels in any font, and its title never runs over 0 and 1."""
from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("PySide6")
pytest.importorskip("pytestqt")

from PySide6.QtCore import QRect  # noqa: E402
from PySide6.QtGui import QAction, QFont  # noqa: E402
from PySide6.QtWidgets import QApplication, QLabel, QWidget  # noqa: E402

from cxr_desktop.color_bar import LABEL_SPACING, ColorBar  # noqa: E402
from cxr_desktop.docks import _scrolling  # noqa: E402
from cxr_desktop.result_model import ResultModel  # noqa: E402
from cxr_desktop.result_panel import CAPTION_SPACING, ResultPanel  # noqa: E402
from cxr_desktop.viewer_model import HEATMAP_OUTLINE, ViewerModel  # noqa: E402
from cxr_engine.pixels.image import ImageMetadata  # noqa: E402
from cxr_engine.pixels.overlay import LEGEND_TITLE  # noqa: E402

from label_geometry import label_problems  # noqa: E402

FONT_PT = [9, 13, 20]  # the default, and the reader's larger text sizes (Settings: up to 24 pt)


@pytest.fixture()
def text_size():
    """Sets the application's font size in points, as the reader's text size setting does
    (``layout_state.apply_font_size``); the font is put back afterwards."""
    app = QApplication.instance()
    before = app.font()

    def apply(font_pt: float) -> None:
        font = QFont(before)
        font.setPointSizeF(font_pt)
        app.setFont(font)
        QApplication.processEvents()  # the font reaches the widgets as events

    yield apply
    app.setFont(before)


def _in(widget: QWidget, ancestor: QWidget) -> QRect:
    return QRect(widget.mapTo(ancestor, widget.rect().topLeft()), widget.size())


@pytest.mark.parametrize("font_pt", FONT_PT)
@pytest.mark.parametrize("width", [260, 300, 420])
@pytest.mark.parametrize("style", ["colour", HEATMAP_OUTLINE])
def test_the_caption_stands_clear_of_the_colour_bar(qtbot, text_size, width, font_pt, style):
    text_size(font_pt)
    viewer, result = ViewerModel(), ResultModel()
    panel = ResultPanel(result, viewer, QAction("Heat-map"))
    dock = _scrolling(panel)  # as the result dock holds it
    qtbot.addWidget(dock)
    result.set_image((), ImageMetadata(patient_age="010Y"))  # out of scope: the caption's longest text
    viewer.set_heatmap(np.zeros((8, 8), np.float32), "covid", 0.982)
    viewer.set_heatmap_style(style)
    dock.resize(max(width, dock.minimumSizeHint().width()), 3000)  # the dock is never narrower than its panel
    dock.show()
    qtbot.waitExposed(dock)
    QApplication.processEvents()
    legend, caption = panel.legend, panel.heatmap_caption
    assert "Where the COVID-19 score rose" in caption.text() and "⚠" in caption.text()
    assert caption.font().pointSizeF() == legend.font().pointSizeF() == font_pt
    box = legend.parentWidget()
    legend_rect, caption_rect = _in(legend, box), _in(caption, box)
    parts = legend.parts()
    assert legend.height() >= max(rect.bottom() for rect, _ in parts.labels) + 1, "the labels cut at the bottom"
    assert caption_rect.top() - legend_rect.bottom() - 1 >= CAPTION_SPACING
    assert label_problems(caption, dock, visible=False) == []
    assert caption.visibleRegion().boundingRect() == caption.rect()  # nothing lies over it
    for other in box.findChildren(QWidget):
        if other.isVisible() and other is not caption and not caption.isAncestorOf(other) and other.parentWidget() is box:
            assert not _in(other, box).intersects(caption_rect), other
    for label in panel.findChildren(QLabel):
        if label.isVisible() and label.wordWrap():
            assert label_problems(label, dock, visible=False) == []


@pytest.mark.parametrize("font_pt", FONT_PT)
@pytest.mark.parametrize("width", [120, 200, 260, 400])
def test_the_colour_bar_labels_lie_apart_under_the_bar(qtbot, text_size, width, font_pt):
    text_size(font_pt)
    bar = ColorBar()
    qtbot.addWidget(bar)
    bar.resize(width, bar.sizeHint().height())
    parts = bar.parts()
    metrics = bar.fontMetrics()
    (low, zero), (title_rect, title), (high, one) = parts.labels
    assert (zero, one) == ("0", "1")
    assert title == LEGEND_TITLE or title.endswith("…") or title == ""
    for rect, text in parts.labels:
        assert bar.rect().contains(rect) or not text, (text, rect)
        assert rect.top() > parts.bar.bottom()
        assert rect.width() >= metrics.horizontalAdvance(text) and rect.height() >= metrics.height()
    assert bar.sizeHint().height() >= low.bottom() + 1
    if title:
        assert title_rect.left() - low.right() - 1 >= LABEL_SPACING
        assert high.left() - title_rect.right() - 1 >= LABEL_SPACING
    if width >= metrics.horizontalAdvance(f"0{LEGEND_TITLE}1") + 2 * LABEL_SPACING:
        assert title == LEGEND_TITLE


def test_the_colour_bar_grows_with_the_text_size(qtbot, text_size):
    bar = ColorBar()
    qtbot.addWidget(bar)
    heights = []
    for font_pt in FONT_PT:
        text_size(font_pt)
        heights.append(bar.sizeHint().height())
        assert heights[-1] >= bar.fontMetrics().height() + bar.parts().bar.height()
    assert heights == sorted(heights) and heights[0] < heights[-1]
