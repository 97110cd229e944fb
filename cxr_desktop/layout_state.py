"""The window's layout across sessions: a first size that fits the screen, the docks and
toolbars as the reader left them, the display toggles, the comparison layout and the text size.

Stored in the app's ``QSettings`` (``AppSettings.store``) under ``layout/``.
"""
from __future__ import annotations

from PySide6.QtCore import QByteArray, QRect, QSize
from PySide6.QtGui import QFont, QGuiApplication
from PySide6.QtWidgets import QApplication, QMainWindow

from . import docks
from .comparison import LAYOUTS

#: The size a first window asks for, in device-independent pixels, when the screen has room.
PREFERRED_SIZE = QSize(1440, 900)
#: A first window covers at most this fraction of the available screen (taskbars excluded).
SCREEN_FRACTION = 0.92
MIN_FONT_PT, MAX_FONT_PT = 7.0, 24.0
TOGGLES = ("corner_overlay", "heatmap", "lung_outline")


def first_geometry(available: QRect, preferred: QSize = PREFERRED_SIZE) -> QRect:
    """``preferred`` shrunk to ``SCREEN_FRACTION`` of ``available`` where needed, centred in it."""
    width = min(preferred.width(), int(available.width() * SCREEN_FRACTION))
    height = min(preferred.height(), int(available.height() * SCREEN_FRACTION))
    rect = QRect(0, 0, width, height)
    rect.moveCenter(available.center())
    return rect


def fit_inside(rect: QRect, available: QRect) -> QRect:
    """``rect`` moved (and shrunk if it must be) to lie within ``available`` (a restored window on a
    screen that has since become smaller, or a different scaling)."""
    width, height = min(rect.width(), available.width()), min(rect.height(), available.height())
    left = min(max(rect.left(), available.left()), available.right() - width + 1)
    top = min(max(rect.top(), available.top()), available.bottom() - height + 1)
    return QRect(left, top, width, height)


def available_geometry(window: QMainWindow) -> QRect:
    screen = window.screen() or QGuiApplication.primaryScreen()
    return screen.availableGeometry()


class LayoutSettings:
    """Typed access to the layout keys of an ``AppSettings`` store."""

    def __init__(self, store):
        self.store = store

    def toggle(self, name: str, default: bool) -> bool:
        value = self.store.value(f"layout/{name}", default)
        return value if isinstance(value, bool) else str(value).lower() in ("true", "1")

    def set_toggle(self, name: str, on: bool) -> None:
        self.store.setValue(f"layout/{name}", bool(on))

    @property
    def font_pt(self) -> float:
        """The reader's text size in points; 0 = the platform's default."""
        try:
            value = float(self.store.value("layout/font_pt", 0.0))
        except (TypeError, ValueError):
            return 0.0
        return min(max(value, MIN_FONT_PT), MAX_FONT_PT) if value > 0 else 0.0

    @font_pt.setter
    def font_pt(self, value: float) -> None:
        self.store.setValue("layout/font_pt", float(value))

    def bytes(self, name: str) -> QByteArray | None:
        value = self.store.value(f"layout/{name}")
        return value if isinstance(value, QByteArray) and not value.isEmpty() else None

    def set_bytes(self, name: str, value: QByteArray) -> None:
        self.store.setValue(f"layout/{name}", value)

    @property
    def comparison(self) -> str:
        return str(self.store.value("layout/comparison", "1x1") or "1x1")

    @comparison.setter
    def comparison(self, name: str) -> None:
        self.store.setValue("layout/comparison", name)


_platform_font: QFont | None = None  # the application's font before the reader changed its size


def apply_font_size(point_size: float) -> None:
    """Set the application's text size in points (0: the platform's default)."""
    global _platform_font
    app = QApplication.instance()
    if app is None:
        return
    if _platform_font is None:
        _platform_font = QFont(app.font())
    font = QFont(_platform_font)
    if point_size > 0:
        font.setPointSizeF(point_size)
    app.setFont(font)


def restore(window) -> None:
    """Size and place ``window`` (the saved geometry, else a first size that fits the screen), then
    restore its docks, toolbars, toggles, comparison layout and text size."""
    layout = LayoutSettings(window.settings.store)
    apply_font_size(layout.font_pt)
    available = available_geometry(window)
    geometry = layout.bytes("geometry")
    if geometry is None or not window.restoreGeometry(geometry):
        window.setGeometry(first_geometry(available))
        docks.fit_to_window(window)
    else:
        window.setGeometry(fit_inside(window.geometry(), available))
    window.setProperty(DEFAULT_STATE, window.saveState())  # the docks as built, for unattended runs
    state = layout.bytes("state")
    if state is not None:
        window.restoreState(state)
    window.viewer.set_corner_overlay(layout.toggle("corner_overlay", True))
    window.viewer.set_heatmap_visible(layout.toggle("heatmap", False))
    window.lungs.set_outline_visible(layout.toggle("lung_outline", False))
    window.comparison.set_layout(layout.comparison if layout.comparison in LAYOUTS else "1x1")


#: A window property: set, ``save`` keeps the reader's stored layout (an unattended run).
FROZEN = "cxr_layout_frozen"
#: A window property: the docks and toolbars as the window built them, before ``restore``.
DEFAULT_STATE = "cxr_default_state"


def for_unattended_run(window) -> None:
    """The first-start layout (size, docks, toggles, one viewport), and nothing stored at exit: an
    unattended run (screenshot, PDF, JSON) shows what its options ask for, whatever the reader
    left on, and leaves the reader's layout as it was."""
    window.setGeometry(first_geometry(available_geometry(window)))
    default_state = window.property(DEFAULT_STATE)
    if default_state is not None:
        window.restoreState(default_state)
    docks.fit_to_window(window)
    window.viewer.set_corner_overlay(True)
    window.viewer.set_heatmap_visible(False)
    window.lungs.set_outline_visible(False)
    window.comparison.set_layout("1x1")
    window.setProperty(FROZEN, True)


def save(window) -> None:
    """Store what ``restore`` reads (not for a window of an unattended run)."""
    if window.property(FROZEN):
        return
    layout = LayoutSettings(window.settings.store)
    layout.set_bytes("geometry", window.saveGeometry())
    layout.set_bytes("state", window.saveState())
    layout.set_toggle("corner_overlay", window.viewer.corner_overlay)
    layout.set_toggle("heatmap", window.viewer.heatmap_visible)
    layout.set_toggle("lung_outline", window.acts.lung_outline.isChecked())
    layout.comparison = window.comparison.layout_name


def change_font_size(window, step: float) -> float:
    """Make the text ``step`` points larger (negative: smaller; 0: the platform default again); returns the new size."""
    layout = LayoutSettings(window.settings.store)
    size = 0.0 if step == 0 else min(max(QApplication.font().pointSizeF() + step, MIN_FONT_PT), MAX_FONT_PT)
    layout.font_pt = size
    apply_font_size(size)
    return QApplication.font().pointSizeF()
