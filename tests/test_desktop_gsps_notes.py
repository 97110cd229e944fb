"""The reader's text notes reach the presentation state whole (tester finding: *Send AI result…* cut every note to
64 characters without a word). A GSPS text object's Unformatted Text Value (0070,0006) is ST, at most 1024 characters
(PS3.5 Table 6.2-1): the note editor takes no more and says so, and a note of that length is sent whole.

A real film of ``dicom_rsna``, the app's random test model (``test_desktop.card``), offscreen.
"""
from __future__ import annotations

import pydicom
import pytest

pytest.importorskip("PySide6")
pytest.importorskip("pytestqt")
pytest.importorskip("highdicom")

from PySide6.QtWidgets import QLineEdit  # noqa: E402

from cxr_desktop.annotation_model import TEXT, Annotation  # noqa: E402
from real_films import rsna_study  # noqa: E402
from test_desktop import WAIT_MS, card, make_window, open_and_wait, private_settings, wait_classified  # noqa: E402,F401

FILM = "0004cfab-14fd-4e49-80ba-63a80b6bddd6.dcm"
#: The most characters an ST value holds (PS3.5 Table 6.2-1).
ST_MAX = 1024
NOTE = ("Patchy opacity in the right lower zone; compare with the previous film and the clinical notes. " * 12)[:ST_MAX]


def saved_note_texts(qtbot, dialog, folder) -> list[str]:
    """*Save to folder* of ``dialog`` (the presentation state only), then the text objects' values the saved GSPS holds."""
    with qtbot.waitSignal(dialog.saved, timeout=WAIT_MS) as saved:
        dialog.save_to(folder)
    qtbot.waitUntil(lambda: dialog._worker is None, timeout=WAIT_MS)
    (gsps,) = saved.args[0]
    return [t.UnformattedTextValue for t in pydicom.dcmread(gsps.path).GraphicAnnotationSequence[0].TextObjectSequence]


def test_the_note_editor_takes_what_a_presentation_state_holds(qtbot):
    from cxr_desktop.text_prompts import text_dialog
    from cxr_engine.outputs.dicom_outputs.presentation_state import TEXT_VALUE_MAX

    assert TEXT_VALUE_MAX == ST_MAX
    dialog = text_dialog(None, "Text annotation")
    qtbot.addWidget(dialog)
    dialog.findChild(QLineEdit).setText(NOTE + " and more words that a presentation state cannot hold")
    assert dialog.textValue() == NOTE
    assert f"at most {ST_MAX} characters" in dialog.labelText()
    older = NOTE + " (typed before the limit)"
    editing = text_dialog(None, "Edit text annotation", older)  # shown whole, never cut, with what to do
    qtbot.addWidget(editing)
    assert editing.textValue() == older and f"{len(older)} characters" in editing.labelText()
    assert "shorten it" in editing.labelText()


def test_a_note_of_1024_characters_is_sent_whole(qtbot, make_window, shared_data, tmp_path):
    from cxr_desktop import pacs_controller

    window = make_window(show=True)
    shown = open_and_wait(qtbot, window, rsna_study(shared_data, FILM, tmp_path / "in"))
    wait_classified(qtbot, window)
    window.scene.commit(Annotation(TEXT, ((150.0, 500.0),), NOTE))
    assert window.annotations.for_path(shown)[0].text == NOTE
    dialog = pacs_controller.send_result(window)
    assert dialog is not None and dialog.kinds["gsps"].isChecked()
    for kind in ("sc", "sr", "pdf"):
        dialog.kinds[kind].setChecked(False)
    texts = saved_note_texts(qtbot, dialog, tmp_path / "out")
    assert texts == [NOTE]
    dialog.close()


def test_a_note_too_long_once_deidentified_is_named_before_anything_is_written(qtbot, make_window, shared_data,
                                                                              tmp_path):
    """A reviewer's finding: a note of at most 1024 characters can grow past them when de-identification puts
    ``[removed]`` (nine characters) in place of a typed date (six), and the de-identified Send then failed with a
    length the reader never typed. The dialog now names the note and its length after de-identification before
    writing anything; identified, the same note is sent whole."""
    from cxr_desktop import pacs_controller
    from cxr_engine.network.dicom_network import DicomNode

    typed = ("seen 1/2/24, " * 100)[:1020]  # 78 dates: 1254 characters once de-identified
    window = make_window(show=True)
    open_and_wait(qtbot, window, rsna_study(shared_data, FILM, tmp_path / "in"))
    wait_classified(qtbot, window)
    window.scene.commit(Annotation(TEXT, ((150.0, 500.0),), typed))
    dialog = pacs_controller.send_result(window)
    for kind in ("sc", "sr", "pdf"):
        dialog.kinds[kind].setChecked(False)
    dialog.deidentify.setChecked(True)
    assert dialog.save_to(tmp_path / "deid") is None
    status = dialog.job.status.text()
    assert status.startswith('Not saved: after de-identification the note "seen [removed], seen [removed], seen '
                             '[re…" is 1254 characters (typed 1020;'), status
    assert "shorten it by 230 characters or more" in status
    assert not (tmp_path / "deid").exists()
    dialog.node_box.addItem("PACS", DicomNode("PACS", "127.0.0.1", 104))  # never reached: nothing is sent
    assert dialog.send() is None
    assert dialog.job.status.text() == status.replace("Not saved:", "Not sent:", 1)
    dialog.deidentify.setChecked(False)
    texts = saved_note_texts(qtbot, dialog, tmp_path / "out")
    assert texts == [typed]
    dialog.close()
