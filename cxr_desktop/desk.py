"""The reader's desk: comparison layouts, the DICOM header, keyboard navigation (films, series, Shift+arrow
pan, Esc out of a drawing tool, the focus handed back to the viewer after a side-panel click), undo/redo,
printing, help and text size, as actions added to the main window's menus and toolbar.

``install(window)`` runs once, after the window's own actions (``actions.py``) are in place.
"""
from __future__ import annotations

from types import SimpleNamespace

from PySide6.QtCore import QEvent, QObject, Qt, QTimer
from PySide6.QtGui import QAction, QActionGroup, QKeySequence
from PySide6.QtWidgets import (
    QAbstractButton, QAbstractSlider, QApplication, QComboBox, QMenu, QToolBar, QToolButton,
)

from . import layout_state
from .actions import make_action, step_film
from .image_view import NAVIGATE, ImageView
from .presets import presets_for

#: Keys 2–9 apply the first eight window presets of the current image (``1`` is 1:1).
PRESET_KEYS = "23456789"
LAYOUT_ACTIONS = (("1x1", "One viewport (1×1)", "Ctrl+1"), ("1x2", "Two viewports (1×2)", "Ctrl+2"),
                  ("2x2", "Four viewports (2×2)", "Ctrl+4"))
#: Shift+arrow pans the focused viewport by this share of its width or height (the arrows alone move
#: between films and series).
PAN_SHARE = 0.125
#: (text, key, columns, rows): the direction a pan key moves the view over the film, in viewport widths
#: and heights (Shift+Right shows more of what lies to the right on screen).
PAN_ACTIONS = (("Pan left", "Shift+Left", -1, 0), ("Pan right", "Shift+Right", 1, 0),
               ("Pan up", "Shift+Up", 0, -1), ("Pan down", "Shift+Down", 0, 1))
#: How long the status bar keeps a pan key's or Esc's note (ms).
NOTE_MS = 3000




def _viewer_action(window, text: str, slot, key: str) -> QAction:
    """An action whose key works while the focus is in the viewer page (any viewport)."""
    action = make_action(window, text, slot, (key,))
    action.setShortcutContext(Qt.ShortcutContext.WidgetWithChildrenShortcut)
    window.comparison.addAction(action)
    return action


def _menu(window, title: str) -> QMenu | None:
    for action in window.menuBar().actions():
        menu = action.menu()
        if menu is not None and menu.title().replace("&", "") == title:
            return menu
    return None


def install(window) -> SimpleNamespace:
    """Create the desk's actions on ``window``, put them in its menus and toolbar, restore the layout."""
    a = SimpleNamespace()
    comparison = window.comparison

    a.layout_group = QActionGroup(window)
    a.layouts = {}
    for name, text, key in LAYOUT_ACTIONS:
        action = make_action(window, text, None, (key,), f"Show {text.split(' (')[0].lower()}", checkable=True)
        action.triggered.connect(lambda _=False, n=name: comparison.set_layout(n))
        a.layout_group.addAction(action)
        a.layouts[name] = action
    comparison.layoutChanged.connect(lambda n: a.layouts[n].setChecked(True))
    a.layouts[comparison.layout_name].setChecked(True)
    a.link = make_action(window, "Link viewports", comparison.linker.set_enabled, ("Ctrl+L",),
                     "Window/level, zoom and pan of one viewport move the others by the same amount", checkable=True)
    a.header = make_action(window, "DICOM header…", lambda: show_header(window), ("Ctrl+I",),
                       "Every tag of the image's file, with search")
    a.print = make_action(window, "Print…", lambda: _print(window), (QKeySequence.StandardKey.Print,),
                      "Print the image as shown (no patient identifiers)")
    a.undo = window.history.stack.createUndoAction(window, "Undo")
    a.undo.setShortcuts(QKeySequence.keyBindings(QKeySequence.StandardKey.Undo))
    a.redo = window.history.stack.createRedoAction(window, "Redo")
    a.redo.setShortcuts(QKeySequence.keyBindings(QKeySequence.StandardKey.Redo) or [QKeySequence("Ctrl+Y")])
    # The arrow keys act while the viewer has the focus: in the study browser they keep moving
    # through its rows and opening or closing its branches.
    a.next_series = _viewer_action(window, "Next series", lambda: step_film(window, 1, series=True), "Down")
    a.previous_series = _viewer_action(window, "Previous series", lambda: step_film(window, -1, series=True), "Up")
    a.next_image_arrow = _viewer_action(window, "Next image", lambda: step_film(window, 1), "Right")
    a.previous_image_arrow = _viewer_action(window, "Previous image", lambda: step_film(window, -1), "Left")
    # Shift+arrows pan the viewport with the focus (after Ctrl++, the film can be read without the mouse).
    a.pan = [_viewer_action(window, text, lambda _=False, c=columns, r=rows: pan_focused(window, c, r), key)
             for text, key, columns, rows in PAN_ACTIONS]
    # Esc leaves a drawing tool: the shape being drawn is dropped and the Navigate tool comes back.
    a.navigate = _viewer_action(window, "Cancel drawing, back to the Navigate tool",
                                lambda: cancel_tool(window), "Esc")
    # "?" is typed with Shift on most layouts; platforms differ in whether the shortcut sees it.
    a.shortcuts = make_action(window, "Keyboard shortcuts", lambda: show_shortcuts(window), ("F1", "?", "Shift+?"))
    a.guide = make_action(window, "User guide", lambda: show_guide(window))
    a.larger_text = make_action(window, "Larger text", lambda: layout_state.change_font_size(window, 1.0))
    a.smaller_text = make_action(window, "Smaller text", lambda: layout_state.change_font_size(window, -1.0))
    a.default_text = make_action(window, "Default text size", lambda: layout_state.change_font_size(window, 0.0))
    a.presets = []
    for index, key in enumerate(PRESET_KEYS):
        action = make_action(window, f"Window preset {index + 1}", lambda _=False, i=index: apply_nth_preset(window, i),
                         (key,))
        window.addAction(action)
        a.presets.append(action)

    acts = window.acts
    for mode, action in acts.tool.items():
        action.triggered.connect(lambda _=False, m=mode: comparison.set_mode(m))
    acts.preset_menu.aboutToShow.connect(lambda: _label_preset_keys(acts.preset_menu))
    window.viewer.imageChanged.connect(lambda: name_preset_keys(window, a.presets))
    for viewport in comparison.viewports:
        window.history.watch(viewport.scene)
        viewport.view.textEditRequested.connect(window._edit_text)
    window.history.watch(window.scene)
    window.imageShown.connect(lambda path: _follow_header(window, path))
    a.focus_back = ViewerFocusReturn(window)
    for panel in (getattr(window, "result_panel", None), getattr(window, "lung_panel", None)):
        for control in (panel.findChildren(QAbstractSlider) + panel.findChildren(QAbstractButton)
                        if panel is not None else []):
            a.focus_back.watch(control)
        for combo in panel.findChildren(QComboBox) if panel is not None else []:
            a.focus_back.watch_combo(combo)  # the heat-map class and style
    _place(window, a)
    layout_state.restore(window)
    return a


def _place(window, a: SimpleNamespace) -> None:
    bar = window.menuBar()
    file_menu, view_menu, help_menu = _menu(window, "File"), _menu(window, "View"), _menu(window, "Help")
    settings = next((x for x in file_menu.actions() if x.text().startswith("Settings")), None)
    file_menu.insertAction(settings, a.print)
    file_menu.insertSeparator(settings)
    edit_menu = QMenu("&Edit", window)
    edit_menu.addAction(a.undo)
    edit_menu.addAction(a.redo)
    bar.insertMenu(view_menu.menuAction(), edit_menu)
    view_menu.addSeparator()
    for action in (a.next_series, a.previous_series):
        view_menu.addAction(action)
    view_menu.addSeparator()
    layouts = view_menu.addMenu("Viewports")
    for action in a.layouts.values():
        layouts.addAction(action)
    layouts.addSeparator()
    layouts.addAction(a.link)
    view_menu.addAction(a.header)
    text = view_menu.addMenu("Text size")
    for action in (a.larger_text, a.smaller_text, a.default_text):
        text.addAction(action)
    about = help_menu.actions()[0] if help_menu.actions() else None
    help_menu.insertAction(about, a.shortcuts)
    help_menu.insertAction(about, a.guide)
    help_menu.insertSeparator(about)

    toolbar = window.findChild(QToolBar, "main_toolbar")
    if toolbar is not None:
        toolbar.addSeparator()
        button = QToolButton()
        button.setText("Viewports")
        button.setToolTip("1×1, 1×2 or 2×2 viewports; drag images into them from the study browser")
        button.setMenu(layouts)
        button.setPopupMode(QToolButton.ToolButtonPopupMode.InstantPopup)
        toolbar.addWidget(button)
        toolbar.addAction(a.link)


def focused_view(window) -> ImageView:
    """The viewport with the keyboard focus (any of the comparison's), else the main viewer."""
    focus = QApplication.focusWidget()
    for view in window.comparison.views:
        if focus is view or (focus is not None and view.isAncestorOf(focus)):
            return view
    return window.view


def pan_focused(window, columns: int, rows: int) -> bool:
    """Move the focused viewport over its film by ``PAN_SHARE`` of its size, ``columns`` widths to the
    right and ``rows`` heights down (negative: left, up), as a middle-drag would; False, with a note in the
    status bar, when the film cannot move that way (all of it in view, or at its edge)."""
    view = focused_view(window)
    if view.model.image is None:
        return False
    port = view.viewport().rect()
    film = view.mapFromScene(view.image_scene.image_item.sceneBoundingRect()).boundingRect()
    across = film.left() >= -1 and film.right() <= port.right() + 1  # all of the film's width in view
    down = film.top() >= -1 and film.bottom() <= port.bottom() + 1
    moved = fits = False
    for bar, share, size, inside in ((view.horizontalScrollBar(), columns, port.width(), across),
                                     (view.verticalScrollBar(), rows, port.height(), down)):
        if share and inside:  # a pan that way would only show the margin
            fits = True
        elif share:
            before = bar.value()
            bar.setValue(before + round(share * PAN_SHARE * size))
            moved = moved or bar.value() != before
    if moved:
        view.fit_mode = False  # a resize keeps the panned view, as after a pan with the mouse
        view.viewport().update()
        return True
    window.statusBar().showMessage("The whole film is in view: zoom in (Ctrl++) to pan" if fits
                                   else "At the film's edge", NOTE_MS)
    return False


def cancel_tool(window) -> None:
    """Esc: drop any shape being drawn in any viewport and go back to the Navigate tool."""
    cancelled = any([view.cancel_drawing() for view in window.comparison.views])
    navigate = window.acts.tool[NAVIGATE]
    was_navigating = navigate.isChecked() and window.view.mode == NAVIGATE
    if not was_navigating:
        navigate.trigger()  # checks it and sets the mode in every viewport (window.set_tool, comparison.set_mode)
    if cancelled or not was_navigating:
        window.statusBar().showMessage(("Drawing cancelled; " if cancelled else "") + "Navigate tool", NOTE_MS)


class ViewerFocusReturn(QObject):
    """Hands the keyboard focus back to the viewer after the mouse let go of a side-panel control (the
    heat-map opacity slider, a button), or picked an entry from a combo box's popup (the heat-map class and
    style), so the film keys (→, ←, PageDown, 2–9) act on the film again, not on the control. A control reached
    with Tab keeps the focus: only a mouse release hands it back, and a combo box picked from with the keyboard
    (arrows, or its popup opened and closed with keys) keeps it."""

    def __init__(self, window):
        super().__init__(window)
        self.window = window
        self._popups: dict[QObject, QComboBox] = {}  # a watched combo box's popup list viewport -> the combo box
        self._mouse_pick: QComboBox | None = None  # set while a mouse release in its popup is being handled

    def watch(self, control) -> None:
        control.installEventFilter(self)

    def watch_combo(self, combo: QComboBox) -> None:
        """Hand the focus back after an entry of ``combo``'s popup was picked with the mouse: the release
        in the popup's list comes first, then ``activated`` (while that release is handled)."""
        viewport = combo.view().viewport()
        self._popups[viewport] = combo
        viewport.installEventFilter(self)  # installed after the popup's own filter: called before it
        combo.activated.connect(lambda _index, combo=combo: self._picked(combo))

    def eventFilter(self, obj, event):
        if event.type() == QEvent.Type.MouseButtonRelease:
            combo = self._popups.get(obj)
            if combo is not None:
                self._mouse_pick = combo  # if this release picks an entry, activated follows at once
                QTimer.singleShot(0, self, self._forget_pick)  # a release that picked nothing
            else:
                # After the control has handled its own release (a slider's value is set by then).
                QTimer.singleShot(0, self, lambda control=obj: self._give_back(control))
        return False

    def _forget_pick(self) -> None:
        self._mouse_pick = None

    def _picked(self, combo: QComboBox) -> None:
        if self._mouse_pick is combo:
            self._mouse_pick = None
            QTimer.singleShot(0, self, lambda: self._give_back(combo))  # once the popup has closed

    def _give_back(self, control) -> None:
        window = self.window
        if QApplication.focusWidget() is not control or window.stack.currentWidget() is not window.comparison:
            return  # the click moved the focus elsewhere (a dialog), or no film is shown
        window.view.setFocus(Qt.FocusReason.OtherFocusReason)


def _label_preset_keys(menu: QMenu) -> None:
    """Show each preset's key (2–9) beside it in the presets menu."""
    presets = [x for x in menu.actions() if not x.isSeparator() and x.menu() is None][: len(PRESET_KEYS)]
    for action, key in zip(presets, PRESET_KEYS):
        if action.text().startswith("Save current window"):
            break
        action.setText(f"{action.text().split(chr(9))[0]}\t{key}")


def name_preset_keys(window, actions) -> None:
    """Name each preset key's action after the preset it applies to the current image ("Window preset:
    Lung"), so the shortcuts sheet lists names, not numbers; "Window preset N" with no image or preset."""
    image = window.viewer.image
    presets = presets_for(image, window.settings.window_presets) if image is not None else []
    for index, action in enumerate(actions):
        action.setText(f"Window preset: {presets[index].name}" if index < len(presets)
                       else f"Window preset {index + 1}")


def apply_nth_preset(window, index: int) -> None:
    """Apply the ``index``-th preset offered for the current image (the presets menu's order)."""
    image = window.viewer.image
    if image is None:
        return
    presets = presets_for(image, window.settings.window_presets)
    if index < len(presets):
        window.apply_preset(presets[index])


def show_header(window) -> None:
    from .header_viewer import HeaderViewer

    if getattr(window, "header_viewer", None) is None:
        window.header_viewer = HeaderViewer(window)
    window.header_viewer.show()
    window.header_viewer.raise_()
    window.header_viewer.show_file(window.viewer.path)


def _follow_header(window, path) -> None:
    viewer = getattr(window, "header_viewer", None)
    if viewer is not None and viewer.isVisible():
        viewer.show_file(path)


def show_shortcuts(window) -> None:
    from .shortcuts import ShortcutSheet

    sheet = ShortcutSheet(window)
    sheet.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
    window.shortcut_sheet = sheet
    sheet.show()


def show_guide(window) -> None:
    from .help import UserGuide

    guide = UserGuide(window)
    guide.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
    guide.show()


def _print(window) -> None:
    from .printing import print_current

    print_current(window)
