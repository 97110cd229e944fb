"""The shortcuts sheet (F1 or ?): every key of the window, read from its actions, and the mouse.

The list is built from the actions themselves, so it cannot drift from what the keys do.
"""
from __future__ import annotations

import html

from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import QDialog, QDialogButtonBox, QMenu, QTextBrowser, QVBoxLayout

MOUSE = (
    ("Wheel", "Zoom about the cursor"),
    ("Right-drag", "Window/level in every tool: horizontal = width, vertical = level"),
    ("Middle-drag", "Pan"),
    ("Left-drag", "What the tool says: pan or move an annotation (Navigate), window/level (W/L), draw"),
    ("Double-click a text note", "Edit its text"),
    ("Drag from the study browser", "Show a study, series or image in the viewport it is dropped on"),
)


def _plain(text: str) -> str:
    return text.replace("&&", "\0").replace("&", "").replace("\0", "&").split("\t")[0]


def shortcut_rows(window) -> list[tuple[str, str, str]]:
    """``(menu, action, keys)`` for every action of ``window`` that has a shortcut, menus first
    (in menu order), then actions that live on the window only; keys in the platform's notation."""
    rows, seen = [], set()

    def add(section: str, action: QAction) -> None:
        keys = [k.toString(QKeySequence.SequenceFormat.NativeText) for k in action.shortcuts() if not k.isEmpty()]
        if keys and id(action) not in seen:
            seen.add(id(action))
            rows.append((section, _plain(action.text()), " or ".join(keys)))

    def walk(menu: QMenu, section: str) -> None:
        for action in menu.actions():
            if action.menu() is not None:
                walk(action.menu(), f"{section} › {_plain(action.menu().title())}")
            elif not action.isSeparator():
                add(section, action)

    for top in window.menuBar().actions():
        if top.menu() is not None:
            walk(top.menu(), _plain(top.menu().title()))
    for action in window.findChildren(QAction):  # keys not in a menu (presets 2-9, arrows in the viewer)
        add("Viewer", action)
    return rows


def sheet_html(window) -> str:
    """The sheet as an HTML table (keys, then mouse gestures)."""
    lines = ["<h3>Keyboard</h3><table cellspacing='0' cellpadding='3'>"]
    section = None
    for menu, text, keys in shortcut_rows(window):
        if menu != section:
            lines.append(f"<tr><td colspan='2'><b>{html.escape(menu)}</b></td></tr>")
            section = menu
        lines.append(f"<tr><td><code>{html.escape(keys)}</code></td><td>{html.escape(text)}</td></tr>")
    lines.append("</table><h3>Mouse</h3><table cellspacing='0' cellpadding='3'>")
    lines += [f"<tr><td>{html.escape(g)}</td><td>{html.escape(d)}</td></tr>" for g, d in MOUSE]
    lines.append("</table>")
    return "\n".join(lines)


class ShortcutSheet(QDialog):
    """A non-modal window listing the shortcuts."""

    def __init__(self, window):
        super().__init__(window)
        self.setWindowTitle("Keyboard shortcuts")
        self.resize(560, 680)
        layout = QVBoxLayout(self)
        self.text = QTextBrowser()
        self.text.setHtml(sheet_html(window))
        layout.addWidget(self.text)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.rejected.connect(self.reject)
        layout.addWidget(buttons)
