"""What the reader is told about a film's scope and its correction in the app (tester items 2 and 5),
offscreen with the bundled classifier on ONNX Runtime, on copies of the real DICOM films:

- after "classify all" the study tree marks each film whose ``out_of_scope`` (as ``classify_files`` gives
  it, the CLI's loop) is not empty with a red ⚠ and the banner's sentence in its tooltip, with display
  class names (``COVID-19``) in the tooltips;
- "View corrected and reclassify" on Fake_MONOHR1 (a film displayed as its negative) gives the probability
  ``cxr-classify --auto-orient`` gives, and the panel, the tree and the PDF say the film is shown corrected.
"""
from __future__ import annotations

import pytest

pytest.importorskip("PySide6")
pytest.importorskip("pytestqt")
pytest.importorskip("onnxruntime")

from cxr_engine import classify_files  # noqa: E402
from cxr_engine.models.image_checks import banner, banner_is_firm, correction_note, default_checker  # noqa: E402
from cxr_engine.models.suitability import AGE_OUTSIDE_TRAINING  # noqa: E402

from desktop_fixtures import INVERTED_FILM, card, study, study_with_child  # noqa: E402,F401  (fixtures)
from test_desktop import WAIT_MS, make_window, open_and_wait, private_settings, select  # noqa: E402,F401


def _cli_events(window, paths, auto_orient=False):
    """The engine's classify loop on the same files, as ``cxr-classify`` runs it (the same classifier)."""
    classifier = window.classification.service.classifier
    return {event.path: event for event in classify_files(paths, classifier, checker=default_checker(),
                                                           auto_orient=auto_orient) if event.done}


def test_the_tree_marks_out_of_scope_films_after_classify_all(qtbot, make_window, study_with_child):
    window = make_window(show=True)
    window.classification.start()
    open_and_wait(qtbot, window, study_with_child)
    qtbot.waitUntil(lambda: window.classification.service.ready, timeout=WAIT_MS)
    with qtbot.waitSignal(window.classifyAllFinished, timeout=WAIT_MS):
        window.classify_everything()
    paths = window.browser.image_paths()
    cli = _cli_events(window, paths)
    assert AGE_OUTSIDE_TRAINING in cli[study_with_child / "child.dcm"].out_of_scope
    assert "inverted" in cli[study_with_child / INVERTED_FILM].out_of_scope
    for path in paths:
        text, tip = window.browser.result_text(path)
        scope = cli[path].out_of_scope
        assert text.startswith("⚠ ") == (bool(scope) and banner_is_firm(scope)), (path.name, text)
        assert text.startswith("? ") == (bool(scope) and not banner_is_firm(scope)), (path.name, text)
        assert (banner(scope) in tip) if scope else ("Outside what" not in tip), (path.name, tip)
        assert "covid:" not in tip and "COVID-19: " in tip
    # a film that may well be in scope (only unsure) is marked as its slate banner is: "?", not a red "⚠"
    window.browser.show_scope(paths[0], "uncertain")
    text, tip = window.browser.result_text(paths[0])
    assert text.startswith("? ") and tip.startswith("Note: the model is unsure")


def test_view_corrected_gives_the_auto_orient_number_and_says_so(qtbot, make_window, study_with_child, tmp_path,
                                                                  dicom_dir):
    pypdf = pytest.importorskip("pypdf")
    from cxr_desktop.report_export import ExportRequest

    window = make_window(show=True)
    window.classification.start()
    open_and_wait(qtbot, window, study_with_child)
    film = study_with_child / INVERTED_FILM
    select(qtbot, window, film)
    qtbot.waitUntil(lambda: window.result.image_check is not None and window.result.prediction is not None,
                    timeout=WAIT_MS)
    assert window.result.image_check.reasons == "inverted"
    with qtbot.waitSignal(window.imageShown, timeout=WAIT_MS):
        window.result_panel.correct_button.click()
    qtbot.waitUntil(lambda: window.result.image_check is not None and window.result.prediction is not None
                    and window.viewer.heatmap is not None, timeout=WAIT_MS)
    note = correction_note("inverted")
    cli = _cli_events(window, [film], auto_orient=True)[film]
    assert cli.corrected == "inverted" and note in cli.warnings
    assert window.result.prediction.probabilities == cli.prediction.probabilities  # one number, not two
    assert window.result.out_of_scope == cli.out_of_scope
    assert note in window.result.image_warnings and note in window.result_panel.warnings_label.text()
    qtbot.waitUntil(lambda: "corrected" in window.browser.result_text(film)[0], timeout=WAIT_MS)
    assert note in window.browser.result_text(film)[1]

    pdf = tmp_path / "out" / "corrected.pdf"
    pdf.parent.mkdir()
    with qtbot.waitSignal(window.exportFinished, timeout=WAIT_MS):
        window.start_export(ExportRequest((film,), pdf, False))
    text = " ".join(" ".join(page.extract_text() for page in pypdf.PdfReader(str(pdf)).pages).split())
    assert " ".join(note.split()[:8]) in text
    assert film.read_bytes() == (dicom_dir / INVERTED_FILM).read_bytes()  # the file is not changed


def test_a_film_left_before_its_checks_came_back_keeps_its_mark(qtbot, make_window, study):
    """Tester: moving to another film before the first one's checks finished left its tree row without the ⚠
    (the mark followed only the shown film). Whichever of its prediction and its checks comes last now
    marks it; here both are made to arrive while another film is shown."""
    window = make_window(show=True)
    window.classification.start()
    open_and_wait(qtbot, window, study)
    qtbot.waitUntil(lambda: window.classification.service.ready, timeout=WAIT_MS)
    inverted, frontal = study / INVERTED_FILM, study / "CR-MONO1-10-chest.dcm"
    select(qtbot, window, frontal)
    classification = window.classification
    classification._checks.pop(inverted, None)
    film = window.workspace.load(inverted).image
    check = default_checker().check(film)
    prediction = classification.service.classifier.predict([film])[0]
    classification._headers[inverted] = film.metadata
    window.result.results.add_prediction(inverted, prediction)  # the prediction first, then the checks
    with qtbot.waitSignal(classification.scopeShown, timeout=WAIT_MS) as shown:
        classification._on_check(inverted, check)
    assert shown.args[0] == inverted and "inverted" in shown.args[1]
    text, tooltip = window.browser.result_text(inverted)
    assert text.startswith("⚠") and banner(check.scope_reasons).split("\n")[0] in tooltip
