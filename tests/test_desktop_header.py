"""The DICOM header viewer in the app (issue 18 item 2): opened by key and menu, the current
file's tags with search, private elements marked, following the image; never in exports."""
from __future__ import annotations

import shutil

import pytest

pytest.importorskip("PySide6")
pytest.importorskip("pytestqt")

from PySide6.QtCore import Qt  # noqa: E402

from cxr_desktop.header_viewer import NAME, TAG, VALUE  # noqa: E402
from cxr_desktop.report_export import ExportRequest  # noqa: E402

from test_desktop import (  # noqa: E402,F401  (fixtures)
    PATIENT, WAIT_MS, card, export, identified_study, make_window, open_and_wait, pdf_text, private_settings,
    select, study,
)


def open_header(qtbot, window):
    """Press Ctrl+I on the viewer and wait until the current file's header is listed."""
    window.view.setFocus()
    qtbot.keyClick(window.view, Qt.Key.Key_I, Qt.KeyboardModifier.ControlModifier)
    viewer = window.header_viewer
    qtbot.waitUntil(lambda: bool(viewer.elements) and viewer.path == window.viewer.path, timeout=WAIT_MS)
    return viewer


def rows(viewer) -> dict[str, list[str]]:
    found = {}
    stack = [viewer.tree.topLevelItem(i) for i in range(viewer.tree.topLevelItemCount())]
    while stack:
        item = stack.pop()
        found[item.text(TAG)] = [item.text(c) for c in range(4)]
        stack.extend(item.child(i) for i in range(item.childCount()))
    return found


def test_the_key_opens_the_header_and_search_finds_a_tag(qtbot, make_window, study):
    window = make_window(show=True)
    open_and_wait(qtbot, window, study)
    select(qtbot, window, study / "j2k16.dcm")
    viewer = open_header(qtbot, window)
    assert viewer.isVisible() and viewer.path == study / "j2k16.dcm"
    assert "(0018,1164)" in viewer.visible_tags() and len(viewer.visible_tags()) > 40
    viewer.search.setText("ImagerPixelSpacing")
    assert viewer.visible_tags() == ["(0018,1164)"]
    assert rows(viewer)["(0018,1164)"][VALUE] == "0.4\\0.4"
    assert "1 of" in viewer.status.text()
    viewer.search.setText("0028,0010")  # by number: Rows
    assert viewer.visible_tags() == ["(0028,0010)"]
    viewer.search.clear()
    assert len(viewer.visible_tags()) > 40
    # It follows the image on screen.
    select(qtbot, window, study / "siim.dcm")
    qtbot.waitUntil(lambda: viewer.path == study / "siim.dcm" and bool(viewer.elements), timeout=WAIT_MS)
    # The menu has it too.
    view_menu = next(a.menu() for a in window.menuBar().actions() if a.text() == "&View")
    assert window.desk.header in view_menu.actions()


def test_private_elements_are_marked_and_sequences_expand(qtbot, make_window, dicom_dir, tmp_path):
    folder = tmp_path / "private"
    folder.mkdir()
    shutil.copy(dicom_dir / "966_fixed.dcm", folder / "966.dcm")
    window = make_window(show=True)
    open_and_wait(qtbot, window, folder)
    viewer = open_header(qtbot, window)
    listed = rows(viewer)
    private = {tag: row for tag, row in listed.items() if row[NAME].endswith("(private)")}
    assert private and all(int(tag[1:5], 16) % 2 == 1 for tag in private)
    sequence = listed["(0008,2112)"]
    assert sequence[2] == "SQ" and sequence[VALUE] == "1 item"
    assert "Item 1" in listed  # the item node, with the referenced image's elements under it
    assert "private" in viewer.status.text()


def test_the_header_never_reaches_a_deidentified_export(qtbot, make_window, identified_study, tmp_path):
    pytest.importorskip("pypdf")
    window = make_window(show=True)
    first = open_and_wait(qtbot, window, identified_study)
    viewer = open_header(qtbot, window)
    assert any(PATIENT["PatientID"] in row[VALUE] for row in rows(viewer).values())  # shown to the reader
    out = export(qtbot, window, ExportRequest((first,), tmp_path / "anon.pdf", True, ""))
    _, text = pdf_text(out)
    for secret in (PATIENT["PatientID"], "DOE", "Doe", "(0010,0010)", "PatientName"):
        assert secret not in text, secret
    assert viewer.isVisible()  # a window of its own, untouched by the export


def test_a_png_has_no_header_and_says_so(qtbot, make_window, cxr3_dir, tmp_path):
    folder = tmp_path / "png"
    folder.mkdir()
    source = next((cxr3_dir / "images").rglob("*.jpg"))
    shutil.copy(source, folder / "film.jpg")
    window = make_window(show=True)
    open_and_wait(qtbot, window, folder)
    window.desk.header.trigger()
    viewer = window.header_viewer
    with qtbot.waitSignal(viewer.failed, timeout=WAIT_MS):
        pass
    assert "no DICOM header" in viewer.status.text() and viewer.visible_tags() == []
