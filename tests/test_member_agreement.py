"""An averaged model says when its networks disagree (a tester's finding: B1 COVID-19 0.931, Lite0 pneumonia
0.852, average COVID-19 73.8 %, no word): each member's own top class is kept with the prediction
(``Prediction.member_calls``), and the note gives how often the average was right on such validation films
(the card's ``member_agreement``, measured by ``training.member_agreement``)."""
from __future__ import annotations

import numpy as np
import pytest

from cxr_engine.models.classifier import Prediction
from cxr_engine.models.ensemble import disagreement_note
from cxr_engine.models.ensemble_card import EnsembleCard
from cxr_engine.models.model_card import default_card
from training.member_agreement import agreement_figures

from real_films import rsna_film, rsna_study

#: An RSNA film (other findings, no opacity) on which the bundled members disagree.
SPLIT_FILM = "00322d4d-1c29-4943-afc9-b6754be640eb.dcm"


def test_agreement_figures_count_the_films_the_members_split_on():
    # three films: both say class 0 (true 0), both say 1 (true 2), they split 0/2 (true 2)
    a = np.log(np.array([[0.8, 0.1, 0.1], [0.1, 0.8, 0.1], [0.7, 0.1, 0.2]]))
    b = np.log(np.array([[0.7, 0.2, 0.1], [0.2, 0.7, 0.1], [0.1, 0.1, 0.8]]))
    labels = np.array([0, 2, 2])
    figures = agreement_figures([a, b], labels, [1.0, 1.0], [0.0, 0.0, 0.0], 1.0, threshold=0.4)
    assert figures["films"] == 3 and figures["disagree"] == 1
    # the split film's average: geometric mean of (0.7, 0.1, 0.2) and (0.1, 0.1, 0.8), (0.35, 0.13, 0.52) -> class 2
    assert figures["right_when_disagree"] == 1.0 and figures["right_when_agree"] == 0.5
    # 1 - its top probability, 0.48, is over the threshold: already flagged as a close call
    assert figures["flagged_when_disagree"] == 1.0
    # an offset that tips the split film to class 0 makes it wrong
    tipped = agreement_figures([a, b], labels, [1.0, 1.0], [2.0, 0.0, 0.0], 1.0, threshold=None)
    assert tipped["right_when_disagree"] == 0.0 and "flagged_when_disagree" not in tipped


def _prediction(*calls):
    return Prediction(("normal", "pneumonia", "covid"), (0.1, 0.2, 0.7), "average", "", tuple(calls))


def test_the_note_names_each_networks_call_and_the_cards_figures():
    card = EnsembleCard(name="average", architecture="ensemble", classes=["normal", "pneumonia", "covid"],
                        members=[], logit_offsets=[0.0] * 3,
                        member_agreement={"split": "val", "films": 2090, "disagree": 118,
                                          "right_when_disagree": 0.5508, "right_when_agree": 0.9589,
                                          "test": {"films": 2071, "disagree": 130, "right_when_disagree": 0.7615}})
    note = disagreement_note(card, _prediction(("lite0", "pneumonia"), ("b1", "covid")))
    assert note == ("the averaged networks disagree on this film (lite0: Pneumonia, b1: COVID-19): such calls were "
                    "right less often than the calibration line's figures, which count all films (55 % of 118 "
                    "validation and 76 % of 130 test films, against 96 % where the networks agreed)")
    # outside the model's scope no validation figure speaks for the film: the fact alone
    inverted = disagreement_note(card, _prediction(("lite0", "pneumonia"), ("b1", "covid")), "inverted")
    assert inverted == "the averaged networks disagree on this film (lite0: Pneumonia, b1: COVID-19)"
    # a close call keeps the figures
    assert disagreement_note(card, _prediction(("lite0", "pneumonia"), ("b1", "covid")), "uncertain") == note
    assert disagreement_note(card, _prediction(("lite0", "covid"), ("b1", "covid"))) == ""
    assert disagreement_note(card, _prediction()) == ""  # a single network
    card.member_agreement = {}
    assert disagreement_note(card, _prediction(("lite0", "normal"), ("b1", "covid"))).endswith("b1: COVID-19)")


@pytest.fixture()
def split_film(shared_data):
    """The real RSNA film the bundled networks split on; skipped without it or without an averaged default model."""
    if not isinstance(default_card(), EnsembleCard):
        pytest.skip("the default model is not an averaged one")
    return rsna_film(shared_data, SPLIT_FILM)


@pytest.fixture()
def split_folder(split_film, shared_data, tmp_path):
    """A folder holding a copy of :func:`split_film` (the CLI's input)."""
    return rsna_study(shared_data, SPLIT_FILM, tmp_path / "in")


def test_the_bundled_average_keeps_its_members_calls_on_a_real_film(split_film):
    pytest.importorskip("onnxruntime")
    from cxr_engine.models.backends import create_classifier
    from cxr_engine.reading.read import read_image

    card = default_card()
    classifier = create_classifier(card, backend="onnx", device="cpu")
    image = read_image(split_film)
    prediction = classifier.predict([image])[0]
    names = [member.name for member in card.member_cards]
    assert [name for name, _ in prediction.member_calls] == names
    assert len({cls for _, cls in prediction.member_calls}) == 2  # this film splits them
    assert classifier.predict_with_heatmap(image).prediction.member_calls == prediction.member_calls
    note = disagreement_note(card, prediction)
    assert note.startswith("the averaged networks disagree on this film (")
    figures = card.member_agreement
    assert f"of {figures['disagree']:,} validation and" in note  # the card's own figures
    assert f"of {figures['test']['disagree']:,} test films" in note


def test_the_csv_and_the_apps_panel_carry_the_note(split_folder, split_film, tmp_path, qtbot):
    pytest.importorskip("onnxruntime")
    import csv

    from cxr_engine.cli import main

    folder = split_folder
    out = tmp_path / "rows.csv"
    main([str(folder), "--backend", "onnx", "--device", "cpu", "--csv", str(out), "--no-isolation", "--quiet"])
    with open(out, newline="", encoding="utf-8") as handle:
        row = next(csv.DictReader(handle))
    assert "the averaged networks disagree on this film (" in row["warnings"], row["warnings"]

    pytest.importorskip("pytestqt")
    from cxr_desktop.result_model import DONE, ResultModel
    from cxr_engine.models.backends import create_classifier
    from cxr_engine.reading.read import read_image

    card = default_card()
    image = read_image(split_film)
    result = ResultModel()
    result.set_model(card.name, card.summary(), tuple(card.classes), not card.meets_bar, card)
    result.set_ready("CPU")
    result.set_image((), image.metadata, image.path)
    result.set_prediction(create_classifier(card, backend="onnx", device="cpu").predict([image])[0])
    assert result.state == DONE
    assert result.model_note.startswith("the averaged networks disagree on this film (")
    # the panel shows it under the probabilities, not among the header's notes; the film's warnings keep it
    assert result.model_note not in result.image_warnings
    assert result.model_note in result.film_warnings


def test_the_cli_summary_and_the_cam_png_say_the_networks_disagree(split_folder, tmp_path, capsys, monkeypatch):
    """``cxr-classify`` on a film the bundled networks split on: its ``*_cam.png`` caption says so in a line (it had
    a close call's line, none for this), and the summary counts it ("networks disagree 1", beside "close calls")."""
    pytest.importorskip("onnxruntime")
    import re

    from cxr_engine.cli import main
    from cxr_engine.outputs import png_caption

    folder = split_folder
    drawn = []
    draw = png_caption.with_caption
    monkeypatch.setattr(png_caption, "with_caption", lambda rgb, paragraphs: drawn.append(list(paragraphs))
                        or draw(rgb, paragraphs))
    assert main([str(folder), "--backend", "onnx", "--device", "cpu", "--csv", str(tmp_path / "rows.csv"),
                 "--heatmap-dir", str(tmp_path / "maps"), "--no-isolation"]) == 0
    (caption,) = drawn
    assert re.fullmatch(r"The two networks disagree \((Normal|Pneumonia|COVID-19) vs (Normal|Pneumonia|COVID-19)\)\.",
                        caption[-1]), caption
    err = capsys.readouterr().err
    assert re.search(r", close calls \d+, networks disagree 1, 1 file in ", err), err
