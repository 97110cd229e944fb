"""A PDF that cannot be written is never lost silently (new-user test, finding 3): the export the reader
started shows a dialog naming the file and the reason and offers another file, where the pages already
made are written; an automated export (no one to ask) fails with the message and no dialog.

Real DICOM films, the app's own export path (the export dialog, the file dialog and the warning are
answered by monkeypatched ``exec``/``getSaveFileName``, as a reader would click).
"""
from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("PySide6")
pytest.importorskip("pytestqt")

from PySide6.QtWidgets import QFileDialog, QMessageBox  # noqa: E402

from cxr_desktop.export_dialog import ExportDialog  # noqa: E402
from cxr_desktop.report_export import ExportRequest  # noqa: E402

from test_desktop import WAIT_MS, card, make_window, open_and_wait, private_settings, study  # noqa: E402,F401


def unwritable_destinations(tmp_path: Path) -> list[Path]:
    """Places no PDF can be written, even by root: under a regular file, and in sysfs where it exists."""
    blocker = tmp_path / "not_a_folder"
    blocker.write_text("a file, not a folder")
    places = [blocker / "report.pdf"]
    if Path("/sys/kernel").is_dir():
        places.append(Path("/sys/cxr_report.pdf"))
    return places


@pytest.fixture()
def reader(monkeypatch):
    """Answers the export dialog with Save, the save dialogs with ``files`` in turn and every warning with
    ``answer`` (Save = "Choose another file…"), recording the warnings' texts."""
    class Reader:
        files: list[Path] = []
        answer = QMessageBox.StandardButton.Save
        warnings: list[str] = []

    def save_file(*_args, **_kwargs):
        return (str(Reader.files.pop(0)), "PDF (*.pdf)") if Reader.files else ("", "")

    def warning(box):
        Reader.warnings.append(box.text())
        assert box.button(QMessageBox.StandardButton.Save).text() == "Choose another file…"
        return Reader.answer

    monkeypatch.setattr(ExportDialog, "exec", lambda self: 1)
    monkeypatch.setattr(QFileDialog, "getSaveFileName", save_file)
    monkeypatch.setattr(QMessageBox, "exec", warning)
    return Reader


@pytest.mark.parametrize("place", [0, 1])
def test_an_unwritable_pdf_is_named_in_a_dialog_and_written_to_another_file(qtbot, make_window, study, tmp_path,
                                                                             reader, place):
    places = unwritable_destinations(tmp_path)
    if place >= len(places):
        pytest.skip("no sysfs on this machine")
    bad, good = places[place], tmp_path / "out" / "elsewhere.pdf"
    good.parent.mkdir()
    window = make_window(show=True)
    open_and_wait(qtbot, window, study)
    reader.files = [bad, good]
    with qtbot.waitSignal(window.exportFinished, timeout=WAIT_MS) as finished:
        window.export_pdf("image")
    assert Path(finished.args[0]) == good and good.read_bytes().startswith(b"%PDF")
    assert len(reader.warnings) == 1
    text = reader.warnings[0]
    assert str(bad) in text and "cannot write the report" in text, text
    assert not bad.exists()


def test_cancelling_the_dialog_reports_the_failure(qtbot, make_window, study, tmp_path, reader):
    bad = unwritable_destinations(tmp_path)[0]
    window = make_window(show=True)
    open_and_wait(qtbot, window, study)
    reader.files, reader.answer = [bad], QMessageBox.StandardButton.Cancel
    with qtbot.waitSignal(window.exportFailed, timeout=WAIT_MS) as failed:
        window.export_pdf("image")
    assert str(bad) in failed.args[0] and "not written" in failed.args[0]
    assert len(reader.warnings) == 1 and str(bad) in reader.warnings[0]
    assert str(bad) in window.statusBar().currentMessage()


def test_a_source_folder_refusal_offers_another_file(qtbot, make_window, study, tmp_path, reader):
    inside, good = study / "report.pdf", tmp_path / "report.pdf"
    window = make_window(show=True)
    open_and_wait(qtbot, window, study)
    reader.files = [inside, good]
    with qtbot.waitSignal(window.exportFinished, timeout=WAIT_MS) as finished:
        window.export_pdf("image")
    assert Path(finished.args[0]) == good and good.exists() and not inside.exists()
    assert len(reader.warnings) == 1 and str(inside) in reader.warnings[0]


def test_an_automated_export_fails_without_a_dialog(qtbot, make_window, study, tmp_path, monkeypatch):
    bad = unwritable_destinations(tmp_path)[0]
    monkeypatch.setattr(QMessageBox, "exec", lambda box: pytest.fail(f"a dialog in an automated export: {box.text()}"))
    window = make_window(show=True)
    shown = open_and_wait(qtbot, window, study)
    with qtbot.waitSignal(window.exportFailed, timeout=WAIT_MS) as failed:
        window.start_export(ExportRequest((shown,), bad, False))
    assert str(bad) in failed.args[0] and "cannot write the report" in failed.args[0]
