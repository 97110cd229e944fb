"""Keyboard-first reading (issue 18 item 5), key by key on real files: images and series, preset
keys, 1:1 about the centre, the shortcuts sheet, undo/redo of annotations, print and export keys."""
from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("PySide6")
pytest.importorskip("pytestqt")

from PySide6.QtCore import QEvent, QObject, QPoint, QPointF, Qt  # noqa: E402
from PySide6.QtGui import QAction, QKeySequence  # noqa: E402
from PySide6.QtTest import QTest  # noqa: E402
from PySide6.QtWidgets import QApplication  # noqa: E402

from cxr_desktop.annotation_model import RULER, TEXT, Annotation  # noqa: E402
from cxr_desktop.desk import PRESET_KEYS  # noqa: E402
from cxr_desktop.image_view import NAVIGATE  # noqa: E402
from cxr_desktop.presets import presets_for  # noqa: E402
from cxr_desktop.shortcuts import shortcut_rows  # noqa: E402

from test_desktop import (  # noqa: E402,F401  (fixtures)
    PATIENT, SIIM, WAIT_MS, card, drag, identified_study, make_window, open_and_wait, pdf_text, private_settings,
    select, study,
)

CTRL, SHIFT = Qt.KeyboardModifier.ControlModifier, Qt.KeyboardModifier.ShiftModifier
NONE = Qt.KeyboardModifier.NoModifier


def press(qtbot, window, key, modifiers=Qt.KeyboardModifier.NoModifier) -> None:
    window.view.setFocus()
    qtbot.keyClick(window.view, key, modifiers)


def press_and_wait(qtbot, window, key, modifiers=Qt.KeyboardModifier.NoModifier) -> Path:
    with qtbot.waitSignal(window.imageShown, timeout=WAIT_MS) as shown:
        press(qtbot, window, key, modifiers)
    return Path(shown.args[0])


@pytest.fixture()
def two_series(tmp_path, dicom_dir) -> Path:
    """One study with two series: a1, a2 in the first, b1 in the second (copies of a real film)."""
    import pydicom
    from pydicom.uid import generate_uid

    folder = tmp_path / "series"
    folder.mkdir()
    study_uid, series = generate_uid(), {"a": generate_uid(), "b": generate_uid()}
    for number, name in enumerate(("a1", "a2", "b1"), start=1):
        ds = pydicom.dcmread(dicom_dir / SIIM)
        ds.StudyInstanceUID, ds.SeriesInstanceUID = study_uid, series[name[0]]
        ds.SeriesNumber, ds.InstanceNumber = ord(name[0]) - ord("a") + 1, number
        ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
        ds.save_as(folder / f"{name}.dcm")
    return folder


def test_no_two_actions_share_a_key(make_window):
    window = make_window()
    owners: dict[str, str] = {}
    for action in window.findChildren(QAction):
        for key in action.shortcuts():
            text = key.toString()
            assert text not in owners, f"{text} is both {owners[text]!r} and {action.text()!r}"
            owners[text] = action.text()
    for key in ("Ctrl+P", "Ctrl+E", "Ctrl+Shift+E", "F1", "?", "1", "Right", "Left", "Up", "Down", "Ctrl+Z",
                "Ctrl+I", "Ctrl+L", "Ctrl+1", "Ctrl+2", "Ctrl+4", *PRESET_KEYS):
        assert key in owners, key
    assert owners["Ctrl+P"] == "Print…" and owners["Ctrl+E"].startswith("Export PDF")


class _ShortcutSpy(QObject):
    """Swallows the shortcut events an action receives, noting which action got them (so no
    dialog opens and nothing closes while every key is tried)."""

    def __init__(self):
        super().__init__()
        self.hits: list[QAction] = []

    def eventFilter(self, obj, event):
        if event.type() == QEvent.Type.Shortcut:
            self.hits.append(obj)
            return True
        return False


def test_every_shortcut_reaches_its_own_action(qtbot, make_window, study):
    window = make_window(show=True)
    open_and_wait(qtbot, window, study)
    spy = _ShortcutSpy()
    # Window shortcuts only: a widget's own action (the Problems list's Ctrl+C "Copy file paths") acts
    # only while its widget has the focus, so a key pressed in the viewer must not reach it.
    local = (Qt.ShortcutContext.WidgetShortcut, Qt.ShortcutContext.WidgetWithChildrenShortcut)
    actions = [a for a in window.findChildren(QAction)
               if a.shortcuts() and a.isEnabled() and a.shortcutContext() not in local]
    for action in actions:
        action.installEventFilter(spy)
    tried = 0
    for action in actions:
        for key in action.shortcuts():
            spy.hits.clear()
            window.activateWindow()
            window.view.setFocus()
            QTest.keySequence(window.view, key)
            assert spy.hits == [action], (key.toString(), action.text(), [a.text() for a in spy.hits])
            tried += 1
    assert tried >= 40


def test_arrows_and_page_keys_move_between_images_and_series(qtbot, make_window, two_series):
    window = make_window(show=True)
    assert open_and_wait(qtbot, window, two_series) == two_series / "a1.dcm"
    assert press_and_wait(qtbot, window, Qt.Key.Key_Right) == two_series / "a2.dcm"
    assert press_and_wait(qtbot, window, Qt.Key.Key_Left) == two_series / "a1.dcm"
    assert press_and_wait(qtbot, window, Qt.Key.Key_PageDown) == two_series / "a2.dcm"
    assert press_and_wait(qtbot, window, Qt.Key.Key_PageUp) == two_series / "a1.dcm"
    assert press_and_wait(qtbot, window, Qt.Key.Key_Down) == two_series / "b1.dcm"  # next series
    assert press_and_wait(qtbot, window, Qt.Key.Key_Up) == two_series / "a1.dcm"  # its first image
    press(qtbot, window, Qt.Key.Key_Up)  # nothing before the first series
    qtbot.wait(50)
    assert window.viewer.path == two_series / "a1.dcm"
    # In the study browser the arrows keep their tree meaning: Down is the next row, not the next series.
    window.browser.setFocus()
    with qtbot.waitSignal(window.imageShown, timeout=WAIT_MS) as shown:
        qtbot.keyClick(window.browser, Qt.Key.Key_Down)
    assert Path(shown.args[0]) == two_series / "a2.dcm"


def test_number_keys_apply_the_presets_in_menu_order(qtbot, make_window, study):
    window = make_window(show=True)
    open_and_wait(qtbot, window, study)
    presets = presets_for(window.viewer.image, window.settings.window_presets)
    assert len(presets) >= 5
    for key, preset in list(zip(PRESET_KEYS, presets))[::-1]:
        press(qtbot, window, getattr(Qt.Key, f"Key_{key}"))
        assert window.viewer.voi_name == preset.name, key
        assert window.viewer.voi == preset.voi_for(window.viewer.image)
    window.acts.preset_menu.aboutToShow.emit()  # the menu shows each preset's key
    labels = [a.text() for a in window.acts.preset_menu.actions() if not a.isSeparator()]
    assert labels[0] == f"{presets[0].name}\t2" and labels[1] == f"{presets[1].name}\t3"


def test_one_shows_one_to_one_about_the_view_centre(qtbot, make_window, study):
    window = make_window(show=True)
    open_and_wait(qtbot, window, study)
    view = window.view
    view.fit()
    fit_zoom = view.zoom
    middle = view.viewport().rect().center()
    before = view.image_point(QPointF(middle))
    QTest.mouseMove(view.viewport(), QPoint(5, 5))  # the mouse in a corner must not be the anchor
    press(qtbot, window, Qt.Key.Key_1)
    assert view.zoom == pytest.approx(1.0)
    after = view.image_point(QPointF(middle))
    # Scroll bars are whole screen pixels: at 1:1 that is a pixel or two of the image, and the middle
    # screen pixel at fit covers 1/fit_zoom image pixels (about the corner instead, the middle would
    # move by hundreds).
    tolerance = 2 + 1 / fit_zoom
    assert after.x() == pytest.approx(before.x(), abs=tolerance)
    assert after.y() == pytest.approx(before.y(), abs=tolerance)


def test_the_shortcuts_sheet_opens_with_f1_or_question_mark_and_lists_every_key(qtbot, make_window):
    window = make_window(show=True)
    for key, modifiers in ((Qt.Key.Key_F1, NONE), (Qt.Key.Key_Question, NONE), (Qt.Key.Key_Question, SHIFT)):
        window.shortcut_sheet = None
        window.activateWindow()
        qtbot.waitUntil(lambda: QApplication.activeWindow() is window)
        press(qtbot, window, key, modifiers)
        sheet = window.shortcut_sheet
        assert sheet is not None and sheet.isVisible(), (key, modifiers)
        sheet.close()
    listed = {text: keys for _, text, keys in shortcut_rows(window)}
    text = sheet.text.toPlainText()
    for action in window.findChildren(QAction):
        for key in action.shortcuts():
            shown = key.toString(QKeySequence.SequenceFormat.NativeText)
            assert shown in text, (action.text(), shown)
    assert "Print…" in listed and "Right-drag" in text


def flat(points) -> list[float]:
    return [value for point in points for value in point]


def test_undo_and_redo_every_annotation_edit(qtbot, make_window, study):
    window = make_window(show=True)
    open_and_wait(qtbot, window, study)
    select(qtbot, window, study / "siim.dcm")
    path, view, scene = window.viewer.path, window.view, window.scene

    def stored():
        return window.annotations.for_path(path)

    window.acts.tool[RULER].trigger()
    drag(view, QPointF(200, 200), QPointF(400, 260))
    (ruler,) = stored()
    press(qtbot, window, Qt.Key.Key_Z, CTRL)
    assert stored() == [] and scene.annotation_items() == []
    press(qtbot, window, Qt.Key.Key_Y, CTRL) if QKeySequence("Ctrl+Y") in window.desk.redo.shortcuts() else \
        press(qtbot, window, Qt.Key.Key_Z, CTRL | SHIFT)
    assert stored() == [ruler] and len(scene.annotation_items()) == 1

    # A move by mouse is one step, however many mouse moves it took.
    window.acts.tool[NAVIGATE].trigger()
    item = scene.annotation_items()[0]
    on_line = view.mapFromScene(item.mapToScene(QPointF(*ruler.points[0]).__add__(QPointF(60, 18))))
    drag(view, QPointF(on_line), QPointF(on_line) + QPointF(40, 30), steps=6)
    (moved,) = stored()
    assert moved.points != ruler.points
    press(qtbot, window, Qt.Key.Key_Z, CTRL)
    assert flat(stored()[0].points) == pytest.approx(flat(ruler.points))
    window.desk.redo.trigger()
    assert flat(stored()[0].points) == pytest.approx(flat(moved.points))

    # Dragging an end point (item 7) is one step too.
    item = scene.annotation_items()[0]
    before_end = stored()[0].points
    end = QPointF(view.mapFromScene(item.mapToScene(QPointF(*before_end[1]))))
    drag(view, end, end + QPointF(25, 35), steps=5)
    (stretched,) = stored()
    assert flat(stretched.points[:1]) == pytest.approx(flat(before_end[:1]))
    assert flat(stretched.points[1:]) != pytest.approx(flat(before_end[1:]))
    press(qtbot, window, Qt.Key.Key_Z, CTRL)
    assert flat(stored()[0].points) == pytest.approx(flat(before_end))

    # Deleting, and editing a note's text.
    scene.annotation_items()[0].setSelected(True)
    press(qtbot, window, Qt.Key.Key_Delete)
    assert stored() == []
    window.desk.undo.trigger()
    assert [a.id for a in stored()] == [ruler.id] and len(scene.annotation_items()) == 1
    note = scene.commit(Annotation(TEXT, ((50.0, 60.0),), "old"))
    note.set_text("new")
    window.desk.undo.trigger()
    assert next(a for a in stored() if a.kind == TEXT).text == "old"
    assert next(i for i in scene.annotation_items() if i.annotation.kind == TEXT).annotation.text == "old"
    window.desk.undo.trigger()
    assert [a.kind for a in stored()] == [RULER]
    assert window.desk.undo.text().startswith("Undo") and window.history.stack.canRedo()


def test_ctrl_p_prints_and_the_pdf_export_keeps_its_own_keys(qtbot, make_window, study, monkeypatch):
    import cxr_desktop.printing as printing

    window = make_window(show=True)
    open_and_wait(qtbot, window, study)
    printed, exported = [], []
    monkeypatch.setattr(printing, "print_current", lambda w: printed.append(w))
    monkeypatch.setattr(window, "export_pdf", lambda scope: exported.append(scope))
    press(qtbot, window, Qt.Key.Key_P, CTRL)
    assert printed == [window] and exported == []
    press(qtbot, window, Qt.Key.Key_E, CTRL)
    press(qtbot, window, Qt.Key.Key_E, CTRL | SHIFT)
    assert exported == ["image", "study"]


def test_print_view_puts_the_image_and_caption_on_one_page_without_identifiers(qtbot, make_window,
                                                                               identified_study, tmp_path):
    pytest.importorskip("pypdf")
    from PySide6.QtPrintSupport import QPrinter

    from cxr_desktop.printing import print_view

    window = make_window(show=True)
    first = open_and_wait(qtbot, window, identified_study)
    printer = QPrinter(QPrinter.PrinterMode.HighResolution)
    printer.setOutputFormat(QPrinter.OutputFormat.PdfFormat)
    printer.setOutputFileName(str(tmp_path / "printed.pdf"))
    print_view(window.scene, window.viewer, printer)
    pages, text = pdf_text(tmp_path / "printed.pdf")
    text = " ".join(text.split())
    assert pages == 1 and first.name in text and "Research use only" in text
    for secret in (PATIENT["PatientID"], "DOE", "JANE"):
        assert secret not in text


def test_layout_and_link_keys(qtbot, make_window, study):
    window = make_window(show=True)
    open_and_wait(qtbot, window, study)
    comparison = window.comparison
    for key, name in ((Qt.Key.Key_2, "1x2"), (Qt.Key.Key_4, "2x2"), (Qt.Key.Key_1, "1x1")):
        press(qtbot, window, key, CTRL)
        assert comparison.layout_name == name
        assert window.desk.layouts[name].isChecked()
    press(qtbot, window, Qt.Key.Key_L, CTRL)
    assert comparison.linker.enabled and window.desk.link.isChecked()
    press(qtbot, window, Qt.Key.Key_L, CTRL)
    assert not comparison.linker.enabled
