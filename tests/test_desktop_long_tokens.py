"""Long unbroken tokens in the side panels' wrapped labels (tester: the orange warning that two files claim the
same SOP Instance UID cut each UID and the first file's name off at the panel's edge, so the reader could not
tell which two files were meant): they wrap inside the token, at the real UID clash of the shared films, and the
text as given (``text()``, the clipboard) has no zero-width spaces. Offscreen."""
from __future__ import annotations

import re

import pytest

pytest.importorskip("PySide6")
pytest.importorskip("pytestqt")

from PySide6.QtCore import Qt  # noqa: E402
from PySide6.QtGui import QAction, QGuiApplication  # noqa: E402
from PySide6.QtWidgets import QApplication  # noqa: E402

from cxr_desktop.result_model import ResultModel  # noqa: E402
from cxr_desktop.result_panel import ResultPanel  # noqa: E402
from cxr_desktop.text_label import ZWSP, breakable, text_label  # noqa: E402
from cxr_desktop.viewer_model import ViewerModel  # noqa: E402
from cxr_engine import find_images  # noqa: E402
from cxr_engine.reading.uid_clashes import clash_note  # noqa: E402

from label_geometry import label_problems, shown_text  # noqa: E402

SIIM = "1.2.276.0.7230010.3.1.4.8323329.6904.1517875201.850819.dcm"
FAKE_MONO1 = "Fake_MONOHR1.dcm"
PANEL_WIDTH = 300  # the result dock's width in a 1440-px window


def test_the_uid_clash_warning_wraps_inside_the_panel_and_shows_every_character(qtbot, dicom_dir):
    (uid, paths), = find_images([dicom_dir / SIIM, dicom_dir / FAKE_MONO1]).uid_clashes.items()
    note = clash_note(uid, paths)
    result = ResultModel()
    panel = ResultPanel(result, ViewerModel(), QAction("Heat-map"))
    qtbot.addWidget(panel)
    panel.setFixedWidth(PANEL_WIDTH)
    result.set_image((), path=paths[0], notes=(note,))
    panel.show()
    qtbot.waitExposed(panel)
    QApplication.processEvents()
    label = panel.warnings_label
    assert label.isVisible() and label.text() == f"⚠ {note}"  # the text as given, no zero-width spaces
    assert shown_text(label).replace(ZWSP, "") == label.text()  # every character is laid out
    width = label.contentsRect().width()
    assert label.width() <= PANEL_WIDTH and label.minimumSizeHint().width() <= label.width()
    pieces = re.split(f"[\\s{ZWSP}]+", shown_text(label))  # what the wrap cannot break: each must fit a line
    assert max(label.fontMetrics().horizontalAdvance(p) for p in pieces) <= width, pieces
    assert label_problems(label, panel) == []


def test_breaks_go_in_long_tokens_only_and_never_in_rich_text_tags():
    path = "/work/shared/data/dicom/Fake_MONOHR1.dcm"
    assert breakable(f"a heat-map of {path}") == "a heat-map of " + ZWSP.join(
        ["/", "work/", "shared/", "data/", "dicom/", "Fake_", "MONOHR1.", "dcm"])
    digest = "0123456789abcdef" * 4  # no separator: a break every 24 characters
    assert breakable(digest).split(ZWSP) == [digest[:24], digest[24:48], digest[48:]]
    assert breakable(f"<b>{path}</b><br/>", rich=True).startswith("<b>/" + ZWSP)
    assert breakable(f"<b>{path}</b><br/>", rich=True).endswith("dcm</b><br/>")


def _selected_narrow_label(qtbot, text: str):
    """A selectable side-panel label 160 px wide showing ``text`` (its long tokens broken), all of it selected."""
    label = text_label(text, selectable=True)
    qtbot.addWidget(label)
    label.setFixedWidth(160)
    label.show()
    assert ZWSP in shown_text(label) and label.text() == text
    label.setSelection(0, len(shown_text(label)))
    return label


def _copy(qtbot, label) -> str:
    """What Ctrl+C on ``label``'s selection puts on the clipboard."""
    label.setFocus()
    qtbot.keyClick(label, Qt.Key.Key_C, Qt.KeyboardModifier.ControlModifier)
    return QGuiApplication.clipboard().text()


def test_copying_a_selected_long_token_gives_it_without_zero_width_spaces(qtbot):
    text = "Model: /work/shared/models/efficientnet-lite0.onnx"
    label = _selected_narrow_label(qtbot, text)
    assert label.selectedText() == text
    assert _copy(qtbot, label) == text


def test_copying_a_multi_line_selection_gives_it_without_zero_width_spaces(qtbot):
    """Qt's ``selectedText()`` ends lines with U+2029 where the clipboard has "\\n": a selection of two lines (the
    Model box's) went to the clipboard with its zero-width spaces (a code review)."""
    text = ("Model: /work/shared/models/efficientnet-lite0.onnx\n"
            "Members: /work/shared/models/efficientnet-b1.onnx")
    label = _selected_narrow_label(qtbot, text)
    assert "\u2029" in label.selectedText() and ZWSP not in label.selectedText()
    copied = _copy(qtbot, label)
    assert ZWSP not in copied and copied.replace("\r\n", "\n") == text
    # text copied from elsewhere is left alone
    QGuiApplication.clipboard().setText(f"another{ZWSP}program")
    label._clean_clipboard()
    assert QGuiApplication.clipboard().text() == f"another{ZWSP}program"


def test_breaks_in_rich_text_keep_html_entities_whole():
    """``breakable`` put a zero-width space inside "&amp;" ("&a\\u200bmp;"), which then showed as text."""
    import html

    for token in ("R&amp;D_department_of_radiology_and_imaging_at_the_hospital",
                  "0123456789abcdefghij&amp;&lt;&gt;&quot;&#39;&#x2F;0123456789abcdefghijklmnop",
                  "abcdefghijklmnopqrstuvw&amp;xyz0123456789abcdefghijklmnopqrstuvw&eacute;xyz"):
        rich = f"<b>{token}</b>"
        broken = breakable(rich, rich=True)
        assert ZWSP in broken and broken.replace(ZWSP, "") == rich
        entities = re.findall(r"&[^;\s<>]*;?", token)
        assert re.findall(r"&[^;\s<>]*;?", broken.replace(ZWSP, "|")) == entities  # each entity whole
        assert not re.search(f"&[^;]*{ZWSP}", broken)
        assert html.unescape(broken.replace(ZWSP, "")) == html.unescape(rich)
    # plain text is broken as before: "&amp;" there is five characters, not an entity
    assert breakable("a" * 22 + "&amp;bbbbbbbbbbbbbbb") == "a" * 22 + "&a" + ZWSP + "mp;bbbbbbbbbbbbbbb"
