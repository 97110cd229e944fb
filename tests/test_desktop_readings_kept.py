"""The reader's other readings outlive the window, as the marks do (``test_desktop_marks_kept``). A radiologist
tester's findings: the cardiothoracic ratio's lines the reader dragged were back at the model's proposal ("not
adjusted") after the app was closed and opened again, without a word, and a PDF then gave the model's ratio as the
reading; the PDF dialog's comment and reader's name were gone after the save dialog was cancelled. Both are now kept
beside the film's marks (by the film's bytes, in the autosave folder beside the test's own settings file, never
the user's), and the reader's name in the settings once the dialog is confirmed. Real films, the app's windows.
"""
from __future__ import annotations

import json
import shutil
from contextlib import contextmanager

import pytest

pytest.importorskip("PySide6")
pytest.importorskip("pytestqt")

from PySide6.QtCore import QEvent, QPointF, QSettings  # noqa: E402
from PySide6.QtWidgets import QApplication, QFileDialog  # noqa: E402

from cxr_desktop.annotation_autosave import annotations_folder, film_digest  # noqa: E402
from cxr_desktop.annotation_model import TEXT, Annotation  # noqa: E402
from cxr_desktop.export_dialog import ExportDialog  # noqa: E402
from cxr_desktop.main_window import MainWindow  # noqa: E402
from cxr_desktop.settings import AppSettings  # noqa: E402

from test_desktop import WAIT_MS, card, open_and_wait, private_settings, select, study  # noqa: E402,F401
from test_desktop_lungs import FakeSegmenter, film_with_view, show_lungs  # noqa: E402


@contextmanager
def app_session(qtbot, card, settings_file, with_model: bool = True):
    """One run of the app on ``settings_file`` (the test's own, in ``tmp_path``): closed as the reader closes it."""
    window = MainWindow(AppSettings(QSettings(str(settings_file), QSettings.Format.IniFormat)),
                        model=str(card.path) if with_model else "", device="cpu",
                        models_dir=settings_file.parent / "no_models")
    window.show()
    qtbot.waitExposed(window)
    try:
        yield window
    finally:
        window.close()
        window.deleteLater()
        QApplication.sendPostedEvents(None, QEvent.Type.DeferredDelete)


def kept_record(settings_file, film) -> dict:
    path = annotations_folder(str(settings_file)) / f"{film_digest(film)}.json"
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}


# ---------------------------------------------------------------------------------------- the reader's CTR lines

def test_the_readers_ctr_lines_come_back_adjusted_after_a_restart(qtbot, card, private_settings, tmp_path,
                                                                 dicom_dir):
    film = film_with_view(dicom_dir, tmp_path / "pa", "PA")  # the real SIIM film, View Position PA
    with app_session(qtbot, card, private_settings, with_model=False) as first:
        first.lungs.segment = FakeSegmenter()
        assert open_and_wait(qtbot, first, film.parent) == film
        show_lungs(qtbot, first, ctr=True)
        state = first.lungs.current_ctr
        proposed = state.proposed
        assert not state.adjusted
        item = first.lungs.ctr_item
        (left_x, left_y) = item.ctr.cardiac.end
        item.cardiac.handles[1].setPos(QPointF(left_x + 40, left_y))  # the reader drags the left heart border out
        adjusted = first.lungs.current_ctr.current
        assert first.lungs.current_ctr.adjusted and adjusted.ratio > proposed.ratio
        # Kept within a moment, on the film as stored, beside its marks.
        qtbot.waitUntil(lambda: "ctr" in kept_record(private_settings, film), timeout=WAIT_MS)
        assert kept_record(private_settings, film)["ctr"]["cardiac"][1] == [left_x + 40, left_y]

        # Another folder, then this one again: the lung fields are found again, the reader's lines stay.
        other = tmp_path / "other"
        other.mkdir()
        shutil.copy(dicom_dir / "RG1_J2KI.dcm", other / "rg1.dcm")
        with qtbot.waitSignal(first.lungs.resultReady, timeout=WAIT_MS):
            open_and_wait(qtbot, first, other)
        with qtbot.waitSignal(first.lungs.resultReady, timeout=WAIT_MS):
            assert open_and_wait(qtbot, first, film.parent) == film
        assert first.lungs.current_ctr.adjusted and first.lungs.current_ctr.current == adjusted

    with app_session(qtbot, card, private_settings, with_model=False) as second:  # the app opened again
        second.lungs.segment = FakeSegmenter()
        assert open_and_wait(qtbot, second, film.parent) == film
        show_lungs(qtbot, second, ctr=True)
        state = second.lungs.current_ctr
        assert state.adjusted and state.proposed == proposed and state.current == adjusted
        assert second.lungs.ctr_item.ctr == adjusted  # drawn where the reader left them
        assert second.lung_panel.ratio_label.text().startswith(f"CTR {adjusted.ratio:.2f}")
        assert "adjusted by the reader" in second.lung_panel.detail_label.text()
        line = second.lungs.report_lines(film)[0]  # the PDF's line: the reader's ratio, said to be the reader's
        assert f"Cardiothoracic ratio {adjusted.ratio:.2f}" in line and "adjusted by the reader" in line
        assert second.annotations.for_path(film) == []  # no marks made up

        # Reset puts the proposal back, and that is kept too.
        second.lung_panel.reset_button.click()
        assert not second.lungs.current_ctr.adjusted
        second.autosave.save_now()
        assert "ctr" not in kept_record(private_settings, film)

    with app_session(qtbot, card, private_settings, with_model=False) as third:
        third.lungs.segment = FakeSegmenter()
        open_and_wait(qtbot, third, film.parent)
        show_lungs(qtbot, third, ctr=True)
        assert not third.lungs.current_ctr.adjusted and third.lungs.current_ctr.current == proposed


def test_kept_ctr_lines_leave_the_films_marks_as_they_are(qtbot, card, private_settings, tmp_path, dicom_dir):
    """A film's marks and its ratio lines share one file: keeping one never drops the other."""
    film = film_with_view(dicom_dir, tmp_path / "pa", "PA")
    note = Annotation(TEXT, ((50.0, 60.0),), "left base?")
    with app_session(qtbot, card, private_settings, with_model=False) as first:
        first.lungs.segment = FakeSegmenter()
        open_and_wait(qtbot, first, film.parent)
        first.scene.commit(note)
        show_lungs(qtbot, first, ctr=True)
        thoracic = first.lungs.ctr_item.thoracic
        thoracic.set_end(0, thoracic.line.start[0] - 30, thoracic.line.start[1])
        assert first.lungs.current_ctr.adjusted
    record = kept_record(private_settings, film)
    assert [m["text"] for m in record["marks"]] == ["left base?"] and "ctr" in record
    with app_session(qtbot, card, private_settings, with_model=False) as second:
        second.lungs.segment = FakeSegmenter()
        open_and_wait(qtbot, second, film.parent)
        assert [m.text for m in second.annotations.for_path(film)] == ["left base?"]
        show_lungs(qtbot, second, ctr=True)
        assert second.lungs.current_ctr.adjusted


# ---------------------------------------------------------------------------------------- the PDF dialog

@pytest.fixture()
def export_dialogs(monkeypatch):
    """Answers each export dialog with ``answers`` in turn (comment, reader, confirmed: None reads only) and
    records what each offered (comment, reader); every save dialog is cancelled."""
    class Dialogs:
        answers: list = []
        offered: list = []
        save_dialogs = 0

    def exec_(dialog):
        Dialogs.offered.append((dialog.comment.toPlainText(), dialog.reader.text()))
        comment, reader, confirmed = Dialogs.answers.pop(0)
        if comment is not None:
            dialog.comment.setPlainText(comment)
        if reader is not None:
            dialog.reader.setText(reader)
        return int(confirmed)

    def cancelled(*_args, **_kwargs):
        Dialogs.save_dialogs += 1
        return "", ""

    monkeypatch.setattr(ExportDialog, "exec", exec_)
    monkeypatch.setattr(QFileDialog, "getSaveFileName", cancelled)
    return Dialogs


COMMENT = "Long dictated comment: RLL consolidation, new since 2023."


def test_the_pdf_comment_and_reader_outlive_a_cancelled_save_and_a_restart(qtbot, card, private_settings, study,
                                                                         export_dialogs):
    with app_session(qtbot, card, private_settings) as first:
        film = open_and_wait(qtbot, first, study)
        export_dialogs.answers = [(COMMENT, "Dr Rad", True), (None, None, False)]
        first.export_pdf("image")  # Save, then Cancel in the file dialog
        assert export_dialogs.save_dialogs == 1
        first.export_pdf("image")
        assert export_dialogs.offered[-1] == (COMMENT, "Dr Rad")  # offered again, in this session
        assert first.settings.reader_name == "Dr Rad"
        qtbot.waitUntil(lambda: kept_record(private_settings, film).get("comment") == COMMENT, timeout=WAIT_MS)

        other = next(p for p in sorted(study.rglob("*.dcm")) if p != film)
        select(qtbot, first, other)
        export_dialogs.answers = [(None, None, False)]
        first.export_pdf("image")
        assert export_dialogs.offered[-1] == ("", "Dr Rad")  # the comment is the film's, the name the reader's

    with app_session(qtbot, card, private_settings) as second:  # the app opened again
        assert open_and_wait(qtbot, second, study) == film
        export_dialogs.answers = [(None, None, False)]
        second.export_pdf("study")
        assert export_dialogs.offered[-1] == (COMMENT, "Dr Rad")
        # Emptied and confirmed: forgotten (the film had nothing else kept: its file goes).
        export_dialogs.answers = [("", None, True)]
        second.export_pdf("image")
        second.autosave.save_now()
        assert kept_record(private_settings, film) == {}


def test_the_reader_name_is_kept_only_when_the_dialog_is_confirmed(qtbot, card, private_settings, study,
                                                                  export_dialogs):
    with app_session(qtbot, card, private_settings) as window:
        film = open_and_wait(qtbot, window, study)
        export_dialogs.answers = [("draft", "Dr Other", False), (None, None, False)]
        window.export_pdf("image")  # Cancel in the export dialog itself
        assert window.settings.reader_name == ""
        assert export_dialogs.save_dialogs == 0
        window.export_pdf("image")
        assert export_dialogs.offered[-1] == ("draft", "")  # what was typed is not lost; the name not taken
        window.scene.commit(Annotation(TEXT, ((50.0, 60.0),), "note"))
        window.autosave.save_now()
        record = kept_record(private_settings, film)
        assert record["comment"] == "draft" and [m["text"] for m in record["marks"]] == ["note"]
