"""How the AI panel presents a result (a radiologist tester's four findings), on real films with the bundled
classifier on ONNX Runtime, offscreen:

1. A film without a patient age: the Model box gives the adults' and the children's test sensitivities apart (the
   PDF's lines, ``model_limits.metric_lines``), not the pooled ones, which are mostly children's.
2. A close call: the banner states the rule with its figures and does not contradict the calibration line (which
   may say most films at that probability were right).
3. A child's chest without an age: the children's calibration figure says it comes nearly all from one source.
4. A film outside the model's scope: its top class stays visible under the banner, but not in the large type of a
   call; the PDF's probability table is not changed.
"""
from __future__ import annotations

import json
import re

import pytest

pytest.importorskip("PySide6")
pytest.importorskip("pytestqt")
pytest.importorskip("onnxruntime")

from PySide6.QtGui import QAction  # noqa: E402

from cxr_desktop.result_model import ResultModel  # noqa: E402
from cxr_desktop.result_panel import OUT_OF_SCOPE_TOP, OUT_OF_SCOPE_TOP_STYLE, TOP_STYLE, ResultPanel  # noqa: E402
from cxr_desktop.viewer_model import ViewerModel  # noqa: E402
from cxr_engine.display_text import format_percent  # noqa: E402
from cxr_engine.models.classifier import Prediction  # noqa: E402
from cxr_engine.models.image_checks import banner_is_firm, check_image, default_checker  # noqa: E402
from cxr_engine.models.model_card import ModelCard  # noqa: E402
from cxr_engine.reading.read import read_image  # noqa: E402

from conftest import kermany_children  # noqa: E402
from model_factory import BUNDLED_CARD  # noqa: E402

INVERTED = "Fake_MONOHR1.dcm"  # the image checks find it stored as its negative
ADULT = "00569f44-917d-4c86-a842-81832af98c30.dcm"  # RSNA, Patient's Age 54


@pytest.fixture(scope="module")
def card() -> ModelCard:
    return ModelCard.load(BUNDLED_CARD)


@pytest.fixture(scope="module")
def classifier(card):
    from cxr_engine.models.backends import create_classifier

    model = create_classifier(card, backend="onnx", device="cpu")
    model.load()
    return model


def _panel(qtbot, card, image, check=None, prediction=None):
    """The panel showing ``image`` (a ``CxrImage``) classified as ``prediction``, with the image checks' ``check``."""
    result = ResultModel()
    panel = ResultPanel(result, ViewerModel(), QAction("Heat-map"))
    qtbot.addWidget(panel)
    result.set_model(card.name, card.summary(), tuple(card.classes), not card.meets_bar, card)
    result.set_ready("CPU")
    result.set_image((), header=image.metadata, path=image.path)
    result.set_image_check(check)
    result.set_prediction(prediction)
    return result, panel


def _classified(qtbot, card, classifier, path):
    image = read_image(path)
    return _panel(qtbot, card, image, check_image(image, default_checker()), classifier.predict([image])[0])


def _words(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip()


def test_a_film_without_an_age_gets_the_adults_and_the_childrens_sensitivities_apart(qtbot, card, classifier,
                                                                                        cxr3_dir, shared_data):
    from cxr_engine.models.model_limits import metric_lines

    jpeg = sorted((cxr3_dir / "images" / "normal").glob("*.jpg"))[0]  # a JPEG: no header, no age
    _, panel = _classified(qtbot, card, classifier, jpeg)
    text = panel.model_label.text()
    groups = card.test_metrics["by_age_group"]
    adults, children = groups["adult"]["recall"], groups["pediatric"]["recall"]
    assert f"Sensitivity (adults with a recorded age): Normal {format_percent(adults['normal'])}" in text
    assert f"Sensitivity (children): Normal {format_percent(children['normal'])}" in text
    assert "Sensitivity: " not in text  # not the pooled figures
    # the PDF's lines, from the same function
    assert text.splitlines()[1:] == metric_lines(card.test_metrics, "", called=panel.result.prediction.label, card=card)

    film = shared_data / "dicom_rsna" / ADULT  # an adult's DICOM (age 54): the adults' figures only
    if film.exists():
        _, panel = _classified(qtbot, card, classifier, film)
        text = panel.model_label.text()
        assert "Sensitivity (adults with a recorded age)" in text and "Sensitivity (children)" not in text


def test_a_close_call_banner_gives_its_rule_and_does_not_contradict_the_calibration(qtbot, card, shared_data):
    film = shared_data / "dicom_rsna" / ADULT
    if not film.exists():
        pytest.skip(f"not found: {film}")
    image = read_image(film)  # the real header: an adult of 54
    split = Prediction(tuple(card.classes), (0.40, 0.55, 0.05), card.name)  # the model unsure between two classes
    result, panel = _panel(qtbot, card, image, prediction=split)
    assert result.out_of_scope == "uncertain" and result.scope_limit is not None
    text = panel.scope_banner.text()
    assert panel.scope_banner.isVisibleTo(panel)
    # the rule (1 - top probability above the card's threshold) in figures ...
    assert (f"the top class has {format_percent(0.55)}; the model flags films whose top class is under "
            f"{format_percent(1 - result.scope_limit)}") in text
    # ... and no verdict on the call: how often such calls were right is the calibration line's to say
    assert "How often calls at this probability were right: the calibration line." in text
    assert "not wrong" not in text
    assert "are a close call" not in text
    assert panel.limits.text().startswith("Calibration: of the validation films given a Pneumonia probability of "
                                          "50–60 %")


def test_a_childs_chest_without_an_age_says_the_childrens_figures_are_one_sources(qtbot, card, classifier,
                                                                                    shared_data):
    film = kermany_children(shared_data, 1)[0]
    result, panel = _classified(qtbot, card, classifier, film)
    if "child-chest" not in result.out_of_scope.split(";"):
        pytest.skip(f"{film.name} is not flagged as a child's chest by this card's heads: {result.out_of_scope!r}")
    data = json.loads(BUNDLED_CARD.read_text())
    children = data["validation_metrics"]["reliability"]["by_age_group"]["pediatric"]["n"]
    kermany = sum(data["training_data"]["sources"]["kermany_pediatric"]["images"]["val"].values())
    calibration = panel.limits.text().splitlines()[0]
    assert "children's films" in calibration  # the children's figure is shown ...
    assert (f"Of the {children} children's validation films, {kermany} are from one source (kermany_pediatric): "
            "the children's figures may not hold for a child filmed elsewhere.") in calibration  # ... and whose it is

    adult = shared_data / "dicom_rsna" / ADULT  # an adult's film: no children's figure, no note
    if adult.exists():
        _, panel = _classified(qtbot, card, classifier, adult)
        assert "from one source" not in panel.limits.text()


def test_an_out_of_scope_films_class_is_shown_below_the_banner_not_as_a_call(qtbot, card, classifier, dicom_dir,
                                                                               shared_data):
    from io import BytesIO

    from pypdf import PdfReader

    from cxr_engine.outputs.report import ReportPage, build_report_pdf
    from cxr_engine.pixels.rendering import Renderer

    image = read_image(dicom_dir / INVERTED)
    check = check_image(image, default_checker())
    prediction = classifier.predict([image])[0]
    result, panel = _panel(qtbot, card, image, check, prediction)
    assert banner_is_firm(result.out_of_scope)  # the red banner
    top = f"{prediction.display_label}  {format_percent(prediction.probabilities[prediction.index])}"
    assert panel.top_label.text() == f"{OUT_OF_SCOPE_TOP} {top}"  # visible, prefixed ...
    assert panel.top_label.styleSheet() == OUT_OF_SCOPE_TOP_STYLE != TOP_STYLE  # ... small and grey
    box = panel.top_label.parentWidget().layout()
    assert box.indexOf(panel.scope_banner) < box.indexOf(panel.top_label)  # under the banner
    row = panel.bars[prediction.label]
    assert "bold" not in row.name.styleSheet() and "#d9822b" not in row.bar.styleSheet()
    assert all(r.value.text().endswith("%") for r in panel.bars.values())  # every probability still shown

    # The PDF says the same in its own words: "Not reliable: ..." above its greyed table, every probability shown.
    page = ReportPage.for_image(image, Renderer(image).render(), prediction=prediction)
    page = type(page)(**{**page.__dict__, "out_of_scope": result.out_of_scope})
    text = _words("\n".join(p.extract_text() for p in PdfReader(BytesIO(
        build_report_pdf([page], model_card=card, deidentify=True))).pages))
    assert f"{OUT_OF_SCOPE_TOP} {prediction.display_label}" in text
    assert format_percent(prediction.probabilities[prediction.index]) in text

    # An in-scope adult film keeps the large type.
    film = shared_data / "dicom_rsna" / "009482dc-3db5-48d4-8580-5c89c4f01334.dcm"
    if film.exists():
        result, panel = _classified(qtbot, card, classifier, film)
        if not result.out_of_scope:
            assert panel.top_label.styleSheet() == TOP_STYLE
            assert panel.top_label.text().startswith(result.prediction.display_label)


def test_the_networks_disagreement_is_its_own_line_under_the_probabilities_not_a_header_warning(qtbot, card,
                                                                                                 shared_data):
    """A tester found the note buried in the orange warnings, styled like the Pixel Spacing notes: it stands under the
    top class and its probabilities in the close call's grey-blue; the film's warnings (CSV, JSON, PDF) keep it."""
    from cxr_desktop.result_panel import MODEL_NOTE_STYLE

    film = shared_data / "dicom_rsna" / ADULT
    if not film.exists():
        pytest.skip(f"not found: {film}")
    image = read_image(film)
    split = Prediction(tuple(card.classes), (0.05, 0.15, 0.80), card.name, "",
                       (("efficientnet-lite0", "pneumonia"), ("efficientnet-b1", "covid")))
    result, panel = _panel(qtbot, card, image, prediction=split)
    note = result.model_note
    assert note.startswith("the averaged networks disagree on this film (efficientnet-lite0: Pneumonia, "
                           "efficientnet-b1: COVID-19)")
    assert panel.model_note.isVisibleTo(panel) and panel.model_note.text() == "T" + note[1:]
    assert panel.model_note.styleSheet() == MODEL_NOTE_STYLE and "#ffb347" not in MODEL_NOTE_STYLE
    box = panel.top_label.parentWidget().layout()
    bars = box.indexOf(panel.bars_box)
    assert box.indexOf(panel.top_label) < bars < box.indexOf(panel.model_note) < box.indexOf(panel.model_label)
    assert "disagree" not in panel.warnings_label.text()  # not among the orange warnings ...
    assert note not in result.image_warnings
    assert note in result.film_warnings  # ... but the CSV's, JSON's and PDF's warnings keep it

    # networks that agree: no line
    agreed = Prediction(tuple(card.classes), (0.05, 0.15, 0.80), card.name, "",
                        (("efficientnet-lite0", "covid"), ("efficientnet-b1", "covid")))
    _, panel = _panel(qtbot, card, image, prediction=agreed)
    assert not panel.model_note.isVisibleTo(panel) and panel.model_note.text() == ""


def test_the_model_box_gives_the_called_classs_figure_and_the_test_accuracy_once(qtbot, card, shared_data):
    """The adults' "a Pneumonia call was right 32 of 43 times" stood under every call: the panel gives the called
    class's; and the model line's "test accuracy 0.946" is not said again beside the next line's "all 94.6 %"."""
    from cxr_engine.models.model_limits import metric_lines

    film = shared_data / "dicom_rsna" / ADULT
    if not film.exists():
        pytest.skip(f"not found: {film}")
    image = read_image(film)
    for probabilities, name in (((0.8, 0.1, 0.1), "Normal"), ((0.1, 0.1, 0.8), "COVID-19"),
                                ((0.1, 0.8, 0.1), "Pneumonia")):
        prediction = Prediction(tuple(card.classes), probabilities, card.name)
        _, panel = _panel(qtbot, card, image, prediction=prediction)
        lines = panel.model_label.text().splitlines()
        calls = [line for line in lines if "call was right" in line]
        assert len(calls) == 1 and calls[0].startswith(f"In adults with a recorded age, a {name} call was right")
        assert lines[1:] == metric_lines(card.test_metrics, "adult", called=prediction.label, card=card)
        accuracy = format_percent(card.test_metrics["accuracy"])
        assert f"all {accuracy}" in lines[1]
        assert "test accuracy" not in lines[0] and f"{card.test_metrics['accuracy']:.3f}" not in lines[0]
        assert lines[0].startswith(f"Model: {card.name} [")
