"""A proposed cardiothoracic ratio outside the range the README calls plausible (0.35-0.60) is flagged in the
CTR box and the PDF's line until the reader adjusts it (a radiologist's test: 0.31 on a 78-year-old's PA film
went by without a word). The real RSNA film copied into tmp, the bundled lung model."""
from __future__ import annotations

import pytest

pytest.importorskip("PySide6")
pytest.importorskip("pytestqt")

from cxr_engine.models.cardiothoracic import PLAUSIBLE_RANGE  # noqa: E402

from real_films import rsna_study  # noqa: E402
from test_desktop import card, make_window, open_and_wait, private_settings  # noqa: E402,F401  (fixtures)

RSNA_LOW_CTR = "006cec2e-6ce2-4549-bffa-eadfcd1e9970.dcm"  # 78-year-old, PA: the proposal is 0.31


def low_ctr_film_shown(qtbot, make_window, tmp_path, shared_data):
    """The app (no classifier) showing a copy of :data:`RSNA_LOW_CTR` with its proposed ratio, not adjusted:
    (window, film path, the ratio). Skips without ONNX Runtime (the lung model runs on it)."""
    pytest.importorskip("onnxruntime")
    folder = rsna_study(shared_data, RSNA_LOW_CTR, tmp_path / "low", "a PA film whose proposal is 0.31")
    window = make_window(show=True, with_model=False)
    film = open_and_wait(qtbot, window, folder)
    with qtbot.waitSignal(window.lungs.resultReady, timeout=60_000):
        window.acts.ctr.trigger()
    state = window.lungs.current_ctr
    assert state is not None and not state.adjusted
    ratio = state.current.ratio
    assert ratio < PLAUSIBLE_RANGE[0]  # 0.31 when measured
    return window, film, ratio


def test_the_ctr_box_and_pdf_line_flag_the_low_proposal_on_a_real_film(qtbot, make_window, tmp_path, shared_data):
    window, film, ratio = low_ctr_film_shown(qtbot, make_window, tmp_path, shared_data)
    note = window.lung_panel.note_label.text()
    assert note.startswith(f"⚠ Check the proposal ({ratio:.2f}, below the 0.35-0.60 it gave on normal films): "
                           "the lines may sit on another edge")
    assert window.lung_panel.note_label.styleSheet()  # in the warning colour
    assert "normal on a PA film" in note
    [line] = window.lungs.report_lines(film)
    assert f"Check the proposal ({ratio:.2f}, below" in line
    # Once the reader drags a line, the ratio is theirs: the flag goes.
    item = window.lungs.ctr_item
    start = item.cardiac.handles[1].pos()
    item.cardiac.set_end(1, start.x() + 60.0, start.y())
    assert window.lungs.current_ctr.adjusted
    assert "Check the proposal" not in window.lung_panel.note_label.text()
    assert "Check the proposal" not in window.lungs.report_lines(film)[0]
