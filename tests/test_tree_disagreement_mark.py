"""The study tree marks a film whose averaged networks disagree (a tester's finding: it showed a plain "COVID-19
73.8 %" where the panel gave the note): the grey-blue "?" of a close call, with the note in the result's tooltip
(``ensemble.disagreement_note``, with the figures of the card the ``card_source`` gives)."""
from __future__ import annotations

from types import SimpleNamespace

import pytest

pytest.importorskip("PySide6")
pytest.importorskip("pytestqt")

from cxr_engine.models.classifier import Prediction  # noqa: E402
from cxr_engine.models.ensemble import disagreement_note  # noqa: E402
from cxr_engine.reading.scanning import scan  # noqa: E402

from real_films import rsna_study  # noqa: E402

SPLIT_FILM = "00322d4d-1c29-4943-afc9-b6754be640eb.dcm"
CARD = SimpleNamespace(member_agreement={"split": "val", "films": 2090, "disagree": 118, "right_when_disagree": 0.5508,
                                         "right_when_agree": 0.9589,
                                         "test": {"films": 2071, "disagree": 130, "right_when_disagree": 0.7615}})
CLASSES = ("normal", "pneumonia", "covid")


@pytest.fixture()
def tree(qtbot, shared_data, tmp_path):
    from cxr_desktop.study_browser import StudyBrowser

    rsna_study(shared_data, SPLIT_FILM, tmp_path)
    browser = StudyBrowser(card_source=lambda: CARD)
    qtbot.addWidget(browser)
    browser.add_result(scan(tmp_path))
    return browser, tmp_path / SPLIT_FILM


def test_a_film_whose_networks_disagree_is_marked_with_the_note_in_its_tooltip(tree):
    from cxr_desktop.study_browser import MAYBE_SCOPE_COLOUR, RESULT

    browser, path = tree
    split = Prediction(CLASSES, (0.023, 0.238, 0.738), "average", "", (("efficientnet-lite0", "pneumonia"),
                                                                         ("efficientnet-b1", "covid")))
    browser.show_prediction(path, split)
    browser.show_scope(path, "")
    text, tip = browser.result_text(path)
    note = disagreement_note(CARD, split)
    assert "such calls were right less often" in note  # the card's figures
    assert text == "? COVID-19\n73.8 %"
    assert "T" + note[1:] in tip and "COVID-19: 73.8 %" in tip
    assert browser._images[path].foreground(RESULT).color() == MAYBE_SCOPE_COLOUR

    # a close call as well: one "?", the banner's sentence and the note
    browser.show_scope(path, "uncertain")
    text, tip = browser.result_text(path)
    assert text.startswith("? COVID-19") and not text.startswith("? ? ")
    assert tip.startswith("Note: the model is unsure") and "T" + note[1:] in tip

    # outside the model's scope: the red ⚠, and the note without the figures that do not speak for the film
    browser.show_scope(path, "inverted")
    text, tip = browser.result_text(path)
    assert text.startswith("⚠ ") and "The averaged networks disagree on this film (" in tip
    assert "such calls were right" not in tip

    # networks that agree: a plain result
    agreed = Prediction(CLASSES, (0.023, 0.238, 0.738), "average", "", (("efficientnet-lite0", "covid"),
                                                                          ("efficientnet-b1", "covid")))
    browser.show_prediction(path, agreed)
    browser.show_scope(path, "")
    text, tip = browser.result_text(path)
    assert text == "COVID-19\n73.8 %" and "disagree" not in tip
