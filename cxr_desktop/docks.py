"""The main window's docks: the study tree on the left, the result and lung panels on the right, the
Problems list below (hidden until needed)."""
from __future__ import annotations

from PySide6.QtCore import QSize, Qt
from PySide6.QtWidgets import QDockWidget, QFrame, QScrollArea, QVBoxLayout, QWidget


def _stacked(*widgets) -> QWidget:
    """One widget holding ``widgets`` one under the other."""
    box = QWidget()
    layout = QVBoxLayout(box)
    layout.setContentsMargins(0, 0, 0, 0)
    for widget in widgets:
        layout.addWidget(widget)
    layout.addStretch(1)
    return box


class _FittingScrollArea(QScrollArea):
    """A vertical scroll area never narrower than its widget's minimum width (plus the scroll bar), so a
    dock on a small screen scrolls its panel up and down but never cuts it off at the side: the window
    takes the width from the viewer and the study tree instead."""

    def minimumSizeHint(self) -> QSize:
        hint = super().minimumSizeHint()
        widget = self.widget()
        if widget is None:
            return hint
        width = widget.minimumSizeHint().width() + self.verticalScrollBar().sizeHint().width() + 2 * self.frameWidth()
        return QSize(max(hint.width(), width), hint.height())


def _scrolling(widget: QWidget) -> QScrollArea:
    """``widget`` in a scroll area, so a dock never makes the window taller than a small screen."""
    area = _FittingScrollArea()
    area.setWidget(widget)
    area.setWidgetResizable(True)
    area.setFrameShape(QFrame.Shape.NoFrame)
    area.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
    return area


def build(window, browser, result_panel, lung_panel, problems) -> QDockWidget:
    """Add the docks to ``window``; returns the Problems dock."""
    left = QDockWidget("Studies", window)
    left.setObjectName("studies")
    left.setWidget(browser)
    left.setFeatures(QDockWidget.DockWidgetFeature.DockWidgetMovable | QDockWidget.DockWidgetFeature.DockWidgetFloatable)
    window.addDockWidget(Qt.DockWidgetArea.LeftDockWidgetArea, left)
    right = QDockWidget("Result", window)
    right.setObjectName("result")
    right.setWidget(_scrolling(_stacked(result_panel, lung_panel)))
    right.setFeatures(left.features())
    window.addDockWidget(Qt.DockWidgetArea.RightDockWidgetArea, right)
    problems_dock = QDockWidget("Problems: files left out, and why", window)
    problems_dock.setObjectName("problems")
    problems_dock.setWidget(problems)
    window.addDockWidget(Qt.DockWidgetArea.BottomDockWidgetArea, problems_dock)
    problems_dock.hide()
    window.resizeDocks([left, right], [STUDIES_WIDTH, RESULT_WIDTH], Qt.Orientation.Horizontal)
    return problems_dock


#: The side docks' widths (px) on a window wide enough; a narrower window gives them a share instead.
STUDIES_WIDTH, RESULT_WIDTH = 330, 300
#: The study tree's share of a narrow window's width (the result dock keeps at least its panel's width).
STUDIES_SHARE, RESULT_SHARE = 0.25, 0.2


def fit_to_window(window) -> None:
    """Size the study tree and result docks for ``window``'s width (a first window, or an unattended run):
    their full widths where there is room, else a share each, the result dock never narrower than its
    panel, so the viewer keeps most of a small screen."""
    left, right = window.findChild(QDockWidget, "studies"), window.findChild(QDockWidget, "result")
    if left is None or right is None:
        return
    width = window.width()
    studies = min(STUDIES_WIDTH, max(150, int(width * STUDIES_SHARE)))
    result = min(RESULT_WIDTH, max(right.minimumSizeHint().width(), int(width * RESULT_SHARE)))
    window.resizeDocks([left, right], [studies, result], Qt.Orientation.Horizontal)
