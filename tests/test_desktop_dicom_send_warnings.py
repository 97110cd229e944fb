"""The app's DICOM outputs carry the film's whole warnings, as ``cxr-classify --dicom-out`` writes them (a reviewer's
finding: *Send AI result…* passed only the decoder's warnings, ``image.warnings``, so the SR and the SC from the app
lacked the close call's note and the averaged networks' disagreement that the CLI's, the PDF and the CSV hold).

Real film ``dicom_rsna/00313ee0…`` (a close call the bundled average's two networks split on), classified by the
default model on ONNX Runtime, offscreen; the SR's "Suitability warning" texts read back with highdicom."""
from __future__ import annotations


import pytest

pytest.importorskip("PySide6")
pytest.importorskip("pytestqt")
pytest.importorskip("onnxruntime")
highdicom = pytest.importorskip("highdicom")

from cxr_engine.models.ensemble import is_disagreement_note  # noqa: E402
from cxr_engine.models.model_card import default_card  # noqa: E402
from real_films import rsna_study  # noqa: E402
from test_desktop import WAIT_MS, make_window, open_and_wait, private_settings, wait_classified  # noqa: E402,F401

FILM = "00313ee0-9eaa-42f4-b0ab-c148ed3241cd.dcm"


@pytest.fixture(scope="module")
def card():
    """The default model (the averaged one): the disagreement note needs two networks."""
    chosen = default_card()
    if chosen is None:
        pytest.skip("no bundled model meets the project's bar")
    return chosen


def _sr_warnings(path) -> list[str]:
    group = highdicom.sr.srread(path).content.get_image_measurement_groups()[0]
    return [item.TextValue for item in group[0].ContentSequence
            if item.ValueType == "TEXT" and item.ConceptNameCodeSequence[0].CodeMeaning == "Suitability warning"]


def test_the_apps_dicom_outputs_carry_the_same_warnings_as_the_clis(qtbot, make_window, shared_data, tmp_path):
    from cxr_desktop import pacs_controller
    from cxr_engine.cli import main

    folder = rsna_study(shared_data, FILM, tmp_path / "in")

    cli_out = tmp_path / "cli"
    assert main([str(folder / FILM), "--backend", "onnx", "--device", "cpu", "--no-isolation", "-q",
                 "--dicom-out", str(cli_out), "--csv", str(tmp_path / "r.csv")]) == 0
    expected = _sr_warnings(next(cli_out.glob("*_sr.dcm")))
    if not any(is_disagreement_note(w) for w in expected):
        pytest.skip("the default model's networks do not split on this film")
    assert any(w.startswith("note: ") for w in expected)  # the close call's note

    window = make_window(show=True)
    open_and_wait(qtbot, window, folder)
    wait_classified(qtbot, window)
    qtbot.waitUntil(lambda: window.result.prediction is not None and window.result.image_check is not None,
                    timeout=WAIT_MS)
    dialog = pacs_controller.send_result(window)
    assert dialog is not None
    app_out = tmp_path / "app"
    dialog.kinds["pdf"].setChecked(False)
    with qtbot.waitSignal(dialog.saved, timeout=WAIT_MS) as saved:
        dialog.save_to(app_out)
    qtbot.waitUntil(lambda: dialog._worker is None, timeout=WAIT_MS)
    sr = next(o.path for o in saved.args[0] if o.kind == "sr")
    assert _sr_warnings(sr) == expected == list(window.result.film_warnings)
    dialog.close()
