"""A de-identified PDF report burns no identifier into its picture (new-user test, privacy finding 1): the
reader's text notes are drawn into the "Image as displayed" panel, so they must be redacted there as the view
export redacts them; the page's text layer was already clean, so text checks missed it.

A real film renamed to a test patient, the app's own export path; the PDF's images read back with pypdf.
"""
from __future__ import annotations

import io

import numpy as np
import pytest

pytest.importorskip("PySide6")
pytest.importorskip("pytestqt")
pytest.importorskip("pypdf")

from PIL import Image  # noqa: E402

from cxr_desktop.annotation_model import TEXT, Annotation  # noqa: E402
from cxr_desktop.report_export import ExportRequest  # noqa: E402

from test_desktop import (WAIT_MS, card, make_window, open_and_wait, private_settings,  # noqa: E402,F401
                          wait_classified)

FILM = "1.2.276.0.7230010.3.1.4.8323329.6904.1517875201.850819.dcm"  # SIIM CR, 1024 x 1024
NAME, PATIENT_ID = "Testperson^Annabel", "PID-4711-X"


@pytest.fixture()
def named_study(tmp_path, dicom_dir):
    import pydicom

    ds = pydicom.dcmread(dicom_dir / FILM)
    ds.PatientName, ds.PatientID, ds.PatientBirthDate = NAME, PATIENT_ID, "19610203"
    folder = tmp_path / "study"
    folder.mkdir()
    ds.save_as(folder / "named.dcm")
    return folder


def first_picture(pdf) -> np.ndarray:
    """The page's "Image as displayed" panel."""
    from pypdf import PdfReader

    page = PdfReader(io.BytesIO(pdf.read_bytes())).pages[0]
    pictures = [np.asarray(Image.open(io.BytesIO(image.data)).convert("RGB")).astype(int) for image in page.images]
    assert len(pictures) == 2  # the film as displayed, and the heat-map panel (in colour all over)
    return min(pictures, key=lambda rgb: np.abs(rgb[..., 0] - rgb[..., 2]).mean())


def test_the_notes_in_a_deidentified_report_are_redacted_in_the_picture(qtbot, make_window, named_study, tmp_path):
    window = make_window(show=True)
    shown = open_and_wait(qtbot, window, named_study)
    window.classification.start()
    wait_classified(qtbot, window)  # every page then has both panels
    note = Annotation(TEXT, ((150.0, 500.0),), "Annabel Testperson PID-4711-X: left base")
    window.scene.commit(note)

    def export(name: str, deidentify: bool):
        with qtbot.waitSignal(window.exportFinished, timeout=WAIT_MS):
            window.start_export(ExportRequest((shown,), tmp_path / name, deidentify))
        return first_picture(tmp_path / name)

    identified, deidentified = export("named.pdf", False), export("deidentified.pdf", True)
    assert window.annotations.for_path(shown)[0].text == note.text  # the note itself is as typed
    # The same picture as a report whose note was typed redacted: nothing of the name or ID is drawn.
    window.annotations.update(shown, Annotation(TEXT, note.points, "[removed] [removed] [removed]: left base",
                                                id=note.id))
    window.scene.reload_annotations()
    typed_redacted = export("typed_redacted.pdf", True)
    assert np.abs(deidentified - typed_redacted).mean() < 0.5  # the same picture (JPEG-level noise at most)
    assert np.abs(identified - deidentified).mean() > 0.5  # the note was changed in the picture
