"""A dark Fusion palette: reading rooms are dim, and a bright frame around a film hurts contrast."""
from __future__ import annotations

from PySide6.QtGui import QColor, QPalette
from PySide6.QtWidgets import QApplication

_COLOURS = {
    QPalette.ColorRole.Window: (37, 39, 42),
    QPalette.ColorRole.WindowText: (222, 222, 222),
    QPalette.ColorRole.Base: (27, 28, 30),
    QPalette.ColorRole.AlternateBase: (33, 35, 38),
    QPalette.ColorRole.ToolTipBase: (50, 52, 56),
    QPalette.ColorRole.ToolTipText: (230, 230, 230),
    QPalette.ColorRole.Text: (222, 222, 222),
    QPalette.ColorRole.Button: (45, 47, 51),
    QPalette.ColorRole.ButtonText: (222, 222, 222),
    QPalette.ColorRole.BrightText: (255, 90, 90),
    QPalette.ColorRole.Highlight: (38, 110, 160),
    QPalette.ColorRole.HighlightedText: (255, 255, 255),
    QPalette.ColorRole.Link: (90, 170, 230),
    QPalette.ColorRole.PlaceholderText: (130, 130, 130),
    QPalette.ColorRole.Mid: (120, 122, 126),
}


def apply_dark_theme(app: QApplication) -> None:
    """Fusion style with a dark palette (disabled text dimmed)."""
    app.setStyle("Fusion")
    palette = QPalette()
    for role, rgb in _COLOURS.items():
        palette.setColor(role, QColor(*rgb))
    for role in (QPalette.ColorRole.Text, QPalette.ColorRole.ButtonText, QPalette.ColorRole.WindowText):
        palette.setColor(QPalette.ColorGroup.Disabled, role, QColor(110, 110, 110))
    app.setPalette(palette)
