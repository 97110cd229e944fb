"""The lung box on a film the image checks flag (new-user test): Fake_MONOHR1.dcm is stored as a negative
and the bundled checks find it ``inverted``; the lung model and the heart borders gave it a confident
outline and a CTR that measured nothing (``python -m training.ctr_checks``, column ``ctr_as_stored``). The
desktop now refuses both on the film as stored, with the reason in the lung box and nothing in the PDF, and draws them on the film once the
reader views it corrected ("View corrected and reclassify"), in the corrected film's pixels. Real films,
the bundled classifier (ONNX Runtime), image checks and lung model."""
from __future__ import annotations

import threading

import numpy as np
import pytest

pytest.importorskip("PySide6")
pytest.importorskip("pytestqt")
pytest.importorskip("onnxruntime")

from cxr_desktop.report_export import ExportRequest  # noqa: E402
from cxr_engine.models.cardiothoracic import propose_ctr  # noqa: E402
from cxr_engine.models.lung_fields import segment_lungs  # noqa: E402

from desktop_fixtures import INVERTED_FILM, card, study  # noqa: E402,F401  (fixtures)
from test_desktop import (  # noqa: E402,F401  (fixtures)
    WAIT_MS, export, make_window, open_and_wait, pdf_text, private_settings, select,
)

REFUSAL = ("the film looks shown as a negative (inverted): view it corrected to draw the lung fields and the "
           "cardiothoracic ratio")


class RecordingSegmenter:
    """The bundled lung model, recording each film it was given (the viewer's ``CxrImage``)."""

    def __init__(self):
        self.films = []
        self._lock = threading.Lock()

    def __call__(self, image):
        with self._lock:
            self.films.append(image)
        return segment_lungs(image)


def test_lung_box_refuses_an_inverted_film_and_measures_it_once_viewed_corrected(qtbot, make_window, study,
                                                                                 tmp_path):
    pytest.importorskip("pypdf")
    window = make_window(show=True)
    window.classification.start()
    segmenter = RecordingSegmenter()
    window.lungs.segment = segmenter
    open_and_wait(qtbot, window, study)
    film = study / INVERTED_FILM
    select(qtbot, window, film)
    qtbot.waitUntil(lambda: window.result.image_check is not None and window.result.prediction is not None,
                    timeout=WAIT_MS)
    assert window.result.image_check.scope_reasons == "inverted"  # the banner's reason

    with qtbot.waitSignal(window.lungs.resultReady, timeout=WAIT_MS):
        window.acts.lung_outline.trigger()
        window.acts.ctr.trigger()
    lungs, panel = window.lungs, window.lung_panel
    assert segmenter.films == []  # nothing segmented on the negative
    assert lungs.outline_item is None and lungs.ctr_item is None and lungs.current_ctr is None
    assert lungs.status == lungs.ctr_reason == lungs.refusal == REFUSAL
    assert panel.status_label.text() == REFUSAL and panel.status_label.isVisibleTo(panel)
    assert not panel.ratio_label.isVisibleTo(panel) and not panel.note_label.isVisibleTo(panel)
    assert lungs.report_lines(film) == ()
    flat = " ".join(pdf_text(export(qtbot, window, ExportRequest((film,), tmp_path / "stored.pdf", False)))[1].split())
    assert "Cardiothoracic ratio" not in flat

    with qtbot.waitSignal(window.lungs.resultReady, timeout=WAIT_MS):
        window.result_panel.correct_button.click()
    shown = window.viewer.image
    assert segmenter.films and segmenter.films[-1] is shown  # the corrected film, the one on screen
    assert lungs.refusal == "" and lungs.outline_item is not None and lungs.current_ctr is not None
    ratio = lungs.current_ctr.current.ratio
    expected = propose_ctr(segment_lungs(shown).mask, shown.display(), shown.spacing_mm)
    assert ratio == pytest.approx(expected.ratio)
    assert 0.35 <= ratio <= 0.5  # a heart, not the negative's 0.73
    assert panel.ratio_label.text().startswith(f"CTR {ratio:.2f}") and panel.status_label.styleSheet() == ""
    line = lungs.report_lines(film)[0]
    assert line.startswith(f"Cardiothoracic ratio {ratio:.2f}")
    flat = " ".join(pdf_text(export(qtbot, window, ExportRequest((film,), tmp_path / "corrected.pdf", False)))[1]
                    .split())
    assert " ".join(line.split()) in flat
    # The outline lies on the corrected film's lungs: dark (air) inside on the image as displayed.
    display = np.asarray(shown.display(), dtype=float)
    mask = segment_lungs(shown).mask
    assert display[mask].mean() < display[~mask].mean()
