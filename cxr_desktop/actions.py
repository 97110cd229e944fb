"""The main window's actions, menus and toolbars, with the reading-room shortcuts.

Actions only call the window's methods or the viewer model's setters; checkable actions
mirror the model's state.
"""
from __future__ import annotations

from types import SimpleNamespace

from PySide6.QtCore import Qt
from PySide6.QtGui import QAction, QActionGroup, QKeySequence
from PySide6.QtWidgets import QMenu, QToolBar, QToolButton

from . import pacs_controller
from .annotation_model import ANGLE, ARROW, ELLIPSE, RECTANGLE, RULER, TEXT
from .image_view import NAVIGATE, WINDOW_LEVEL

TOOLS = (
    (NAVIGATE, "Navigate", "N", "Left-drag pans or moves annotations; right-drag sets window/level"),
    (WINDOW_LEVEL, "W/L", "W", "Left-drag sets window (horizontal) and level (vertical)"),
    (ARROW, "Arrow", "A", "Draw an arrow: drag from the tail to the tip"),
    (TEXT, "Text", "T", "Click to place a text note"),
    (ELLIPSE, "Ellipse", "E", "Drag to draw an elliptical ROI: mean, SD, min/max of the modality values and area"),
    (RECTANGLE, "Rectangle", "B", "Drag to draw a rectangular ROI: mean, SD, min/max of the modality values and area"),
    (RULER, "Ruler", "M", "Drag to measure (mm when the file gives pixel spacing)"),
    (ANGLE, "Angle", "G", "Drag the first arm to the vertex, then click where the second arm ends"),
)


def make_action(window, text: str, slot=None, shortcut=None, tip: str = "", checkable: bool = False) -> QAction:
    """A window-wide QAction; ``shortcut`` is one key sequence or a tuple/list of them (the first is
    named in the tooltip)."""
    action = QAction(text, window)
    keys = list(shortcut) if isinstance(shortcut, (tuple, list)) else ([shortcut] if shortcut else [])
    if keys:
        action.setShortcuts([QKeySequence(k) for k in keys])
        action.setShortcutContext(Qt.ShortcutContext.WindowShortcut)
    if tip:
        first = QKeySequence(keys[0]).toString(QKeySequence.SequenceFormat.NativeText) if keys else ""
        action.setToolTip(f"{tip} ({first})" if first else tip)
        action.setStatusTip(tip)
    action.setCheckable(checkable)
    if slot is not None:
        (action.toggled if checkable else action.triggered).connect(slot)
    return action


def create(window) -> SimpleNamespace:
    """Every action of ``window``, connected; menus and toolbars are added by ``install``."""
    v = window.viewer
    a = SimpleNamespace()
    a.open_folder = make_action(window, "Open folder…", window.open_folder_dialog, QKeySequence.StandardKey.Open)
    a.open_files = make_action(window, "Open files…", window.open_files_dialog, "Ctrl+Shift+O")
    a.open_sample = make_action(window, "Open sample study", window.open_sample)
    a.export_image = make_action(window, "Export PDF (this image)…", lambda: window.export_pdf("image"), "Ctrl+E",
                             "Write an annotated PDF summary of the image on screen")
    a.export_study = make_action(window, "Export PDF (whole study)…", lambda: window.export_pdf("study"), "Ctrl+Shift+E",
                             "Write an annotated PDF summary of every image in this study")
    a.export_view = make_action(window, "Export view as image…", window.export_view, "Ctrl+Shift+S",
                            "Save the image as displayed as PNG or JPEG, with or without annotations and heat-map")
    a.settings = make_action(window, "Settings…", window.open_settings)
    a.dicom_nodes = make_action(window, "DICOM nodes…", lambda: pacs_controller.open_dicom_nodes(window),
                            tip="The PACS and other DICOM nodes to query, retrieve from and send to; Verify")
    a.query_retrieve = make_action(window, "Query/Retrieve…", lambda: pacs_controller.open_query_retrieve(window),
                               tip="Find studies on a DICOM node and retrieve one into the cache folder")
    a.send_result = make_action(window, "Send AI result to a DICOM node…", lambda: pacs_controller.send_result(window),
                            tip="Secondary Capture, structured report and PDF of the image on screen, sent on request")
    # Ctrl+Q everywhere (Cmd+Q on macOS): the platform's StandardKey.Quit is empty on Windows and
    # on platforms without a theme, where the menu promised a shortcut that did nothing.
    a.quit = make_action(window, "Quit", window.close, "Ctrl+Q")

    a.fit = make_action(window, "Fit", window.view.fit, "F", "Fit the image to the window")
    a.one_to_one = make_action(window, "1:1", window.view.actual_size, "1", "One image pixel per screen pixel")
    a.zoom_in = make_action(window, "Zoom in", lambda: window.view.zoom_by(1.25), QKeySequence.StandardKey.ZoomIn)
    a.zoom_out = make_action(window, "Zoom out", lambda: window.view.zoom_by(0.8), QKeySequence.StandardKey.ZoomOut)
    a.auto_window = make_action(window, "Auto W/L", window.apply_auto_window, "Shift+A",
                            "Automatic window from the image's own values")
    a.invert = make_action(window, "Invert", v.set_user_invert, "I", "Invert the grey scale", checkable=True)
    a.rotate = make_action(window, "Rotate", lambda: v.rotate(90), "R", "Rotate 90° clockwise")
    a.flip_h = make_action(window, "Flip H", lambda on: v.set_flip(horizontal=on), "Shift+H", "Mirror left–right",
                       checkable=True)
    a.flip_v = make_action(window, "Flip V", lambda on: v.set_flip(vertical=on), "Shift+V", "Mirror top–bottom",
                       checkable=True)
    a.reset = make_action(window, "Reset", window.reset_view, "Home", "Default window, upright, fitted")
    a.corner_overlay = make_action(window, "Info overlay", v.set_corner_overlay, "O",
                               "Show or hide the patient and technique text in the corners", checkable=True)
    a.corner_overlay.setChecked(v.corner_overlay)
    a.heatmap = make_action(window, "Heat-map", v.set_heatmap_visible, "H", "Show or hide the Grad-CAM heat-map",
                        checkable=True)
    lungs = window.lungs
    a.lung_outline = make_action(window, "Lung outline", lungs.set_outline_visible, "L",
                             "Outline the lung fields found by the lung model", checkable=True)
    a.ctr = make_action(window, "CTR", lungs.set_ctr_visible, "C",
                    "Cardiothoracic ratio: lines proposed from the lung fields, ends draggable (frontal films)",
                    checkable=True)
    lungs.outlineVisibleChanged.connect(lambda on: _set_checked(a.lung_outline, on))
    lungs.ctrVisibleChanged.connect(lambda on: _set_checked(a.ctr, on))
    a.next_image = make_action(window, "Next image", lambda: step_film(window, 1),
                           QKeySequence.StandardKey.MoveToNextPage)
    a.previous_image = make_action(window, "Previous image", lambda: step_film(window, -1),
                               QKeySequence.StandardKey.MoveToPreviousPage)
    a.delete = make_action(window, "Delete annotation", window.scene.delete_selected, QKeySequence.StandardKey.Delete)
    a.classify_study = make_action(window, "Classify study", window.classify_study, None,
                               "Classify every image of the current study")
    a.classify_all = make_action(window, "Classify all", window.classify_everything, None,
                             "Classify every image that was opened")
    a.about = make_action(window, "About", window.about)

    a.tools = QActionGroup(window)
    a.tool = {}
    for mode, text, key, tip in TOOLS:
        action = make_action(window, text, None, key, tip, checkable=True)
        action.triggered.connect(lambda _=False, m=mode: window.set_tool(m))
        a.tools.addAction(action)
        a.tool[mode] = action
    a.tool[NAVIGATE].setChecked(True)

    a.preset_menu = QMenu("Window presets", window)
    # The checkable actions mirror the model: a change made elsewhere (reset, a new image) shows here.
    v.windowChanged.connect(lambda: _set_checked(a.invert, v.user_invert))
    v.orientationChanged.connect(lambda: (_set_checked(a.flip_h, v.flip_h), _set_checked(a.flip_v, v.flip_v)))
    v.imageChanged.connect(lambda: (_set_checked(a.invert, v.user_invert), _set_checked(a.flip_h, v.flip_h),
                                    _set_checked(a.flip_v, v.flip_v)))
    v.heatmapVisibleChanged.connect(lambda on: _set_checked(a.heatmap, on))
    v.cornerOverlayChanged.connect(lambda on: _set_checked(a.corner_overlay, on))
    return a


#: How long the status bar says that a film or series key found no next one (ms).
END_OF_LIST_MS = 3000


def step_film(window, step: int, series: bool = False) -> bool:
    """Show the next (``step`` > 0) or previous image (``series``: the first image of the next or previous
    series) in the study browser's order; at either end of the list the status bar says so for a moment
    ("Last film of the list"), so a key that moves nothing is not mistaken for one that was not heard."""
    browser = window.browser
    moved = browser.select_next_series(step) if series else browser.select_next(step)
    if not moved and browser.image_paths():  # with no film at all there is no list to be at the end of
        what = "series" if series else "film"
        window.statusBar().showMessage(f"{'Last' if step > 0 else 'First'} {what} of the list", END_OF_LIST_MS)
    return moved


def _set_checked(action: QAction, checked: bool) -> None:
    if action.isChecked() != checked:
        action.setChecked(checked)


def install(window, a: SimpleNamespace) -> None:
    """Menus and toolbars for the actions."""
    bar = window.menuBar()
    file_menu = bar.addMenu("&File")
    for action in (a.open_folder, a.open_files, a.open_sample):
        file_menu.addAction(action)
    window.recent_menu = file_menu.addMenu("Recent folders")
    window.recent_menu.aboutToShow.connect(lambda: _fill_recent(window))
    file_menu.addSeparator()
    file_menu.addAction(a.export_image)
    file_menu.addAction(a.export_study)
    file_menu.addAction(a.export_view)
    file_menu.addSeparator()
    file_menu.addAction(a.query_retrieve)
    file_menu.addAction(a.send_result)
    file_menu.addAction(a.dicom_nodes)
    file_menu.addSeparator()
    file_menu.addAction(a.settings)
    file_menu.addAction(a.quit)

    view_menu = bar.addMenu("&View")
    for action in (a.fit, a.one_to_one, a.zoom_in, a.zoom_out, None, a.auto_window, a.invert, None, a.rotate,
                   a.flip_h, a.flip_v, a.reset, None, a.corner_overlay, a.heatmap, a.lung_outline, None, a.next_image, a.previous_image):
        view_menu.addSeparator() if action is None else view_menu.addAction(action)
    view_menu.addMenu(a.preset_menu)

    tools_menu = bar.addMenu("&Tools")
    for action in a.tool.values():
        tools_menu.addAction(action)
    tools_menu.addSeparator()
    tools_menu.addAction(a.ctr)
    tools_menu.addSeparator()
    tools_menu.addAction(a.delete)

    ai_menu = bar.addMenu("&AI")
    for action in (a.classify_study, a.classify_all, a.heatmap, a.lung_outline, a.ctr):
        ai_menu.addAction(action)
    bar.addMenu("&Help").addAction(a.about)

    main = QToolBar("Main", window)
    main.setObjectName("main_toolbar")
    main.setMovable(False)
    main.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextOnly)
    main.addAction(a.open_folder)
    main.addSeparator()
    for action in (a.fit, a.one_to_one):
        main.addAction(action)
    main.addSeparator()
    presets = QToolButton()
    presets.setText("Presets")
    presets.setToolTip("Window presets: the file's own, full range, auto, lung, mediastinum")
    presets.setMenu(a.preset_menu)
    presets.setPopupMode(QToolButton.ToolButtonPopupMode.InstantPopup)
    main.addWidget(presets)
    for action in (a.auto_window, a.invert, a.rotate, a.flip_h, a.flip_v, a.reset, a.corner_overlay):
        main.addAction(action)
    main.addSeparator()
    for action in a.tool.values():
        main.addAction(action)
    main.addSeparator()
    for action in (a.heatmap, a.lung_outline, a.ctr, a.classify_study, a.export_image):
        main.addAction(action)
    window.addToolBar(Qt.ToolBarArea.TopToolBarArea, main)


def _fill_recent(window) -> None:
    from pathlib import Path

    menu = window.recent_menu
    menu.clear()
    for folder in window.settings.recent_folders:
        menu.addAction(folder, lambda f=folder: window.open_paths([Path(f)]))
    if menu.isEmpty():
        menu.addAction("(none)").setEnabled(False)
