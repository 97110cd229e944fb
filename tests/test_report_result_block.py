"""The PDF's "AI result" block as the app's panel shows it, on the real film ``Fake_MONOHR1.dcm`` (text, fonts and
positions read back with pypdf):

- a film outside what the model was trained for (the firm banner): its top class "Not reliable: COVID-19 77.9 %",
  no bold, no highlighted row, every bar grey, every probability still shown; a close call and a film possibly out
  of scope keep the normal style (a tester: the PDF showed the top class bold on a highlighted row with a dark bar
  while the app showed it small and grey);
- the averaged networks' disagreement note under the probability table, not among the "Image checks" (it is no image
  check), while the page's warnings (and so the CSV) keep it."""
from __future__ import annotations

import io
from dataclasses import replace

import pytest

from cxr_engine.models.ensemble import disagreement_note, is_disagreement_note
from cxr_engine.models.model_card import ModelCard
from cxr_engine.outputs import report
from cxr_engine.outputs.report import ReportPage, build_report_pdf
from cxr_engine.pixels.rendering import render
from cxr_engine.reading.read import read_image

from model_factory import BUNDLED_CARD

pypdf = pytest.importorskip("pypdf")

NOTE = ("the averaged networks disagree on this film (efficientnet-lite0: Pneumonia, efficientnet-b1: COVID-19): such "
        "calls were right less often than the calibration line's figures")
SECONDARY = "secondary capture: a converted or digitised copy, not the original radiograph"


def _page(dicom_dir, **kwargs) -> ReportPage:
    from cxr_engine.models.torch_backend import Prediction

    image = read_image(dicom_dir / "Fake_MONOHR1.dcm")
    prediction = Prediction(classes=("normal", "pneumonia", "covid"), probabilities=(0.177, 0.044, 0.779),
                            model_name="efficientnet-lite0")
    return replace(ReportPage.for_image(image, render(image), prediction=prediction), **kwargs)


def _runs(data: bytes, number: int = 0) -> list[tuple[str, str, float, float]]:
    """(text, font name, x, y) of each text run on page ``number``."""
    runs = []

    def visit(text, cm, tm, font, size):
        if text.strip():
            runs.append((text, str((font or {}).get("/BaseFont", "")), cm[4] + tm[4] * cm[0], cm[5] + tm[5] * cm[3]))

    pypdf.PdfReader(io.BytesIO(data)).pages[number].extract_text(visitor_text=visit)
    return runs


def _build(page, monkeypatch):
    """The PDF of ``page`` and what its probability table drew: the bars' colours and the tables' style commands
    (the page is laid out on scratch canvases first: the drawn page's bars are the last three)."""
    bars, styles = [], []
    original_bar, original_style = report._Bar, report.TableStyle

    class Bar(original_bar):
        def __init__(self, fraction, width, height, colour):
            bars.append(colour)
            super().__init__(fraction, width, height, colour)

    def style(commands, *args, **kwargs):
        styles.extend(commands)
        return original_style(commands, *args, **kwargs)

    monkeypatch.setattr(report, "_Bar", Bar)
    monkeypatch.setattr(report, "TableStyle", style)
    data = build_report_pdf([page], model_card=ModelCard.load(BUNDLED_CARD), deidentify=False)
    return data, bars, styles


def _highlighted(styles) -> bool:
    return any(command[0] == "BACKGROUND" and command[-1] == report.HIGHLIGHT for command in styles)


def test_an_out_of_scope_films_top_class_is_shown_not_reliable_and_grey(dicom_dir, monkeypatch):
    data, bars, styles = _build(_page(dicom_dir, out_of_scope="inverted"), monkeypatch)
    runs = _runs(data)
    text = " ".join(r[0] for r in runs)
    assert "Not reliable: COVID-19 77.9 %" in " ".join(text.split())
    assert all(p in text for p in ("17.7 %", "4.4 %", "77.9 %"))  # every probability still shown
    assert not [r for r in runs if "77.9 %" in r[0] and "Bold" in r[1]], "the top class is bold"
    assert bars[-3:] == [report.MUTED] * 3 and set(bars) == {report.MUTED} and not _highlighted(styles)


@pytest.mark.parametrize("scope", ["", "uncertain", "child-chest", "child-chest;uncertain"])
def test_a_close_call_or_a_maybe_keeps_the_normal_style(dicom_dir, monkeypatch, scope):
    data, bars, styles = _build(_page(dicom_dir, out_of_scope=scope), monkeypatch)
    runs = _runs(data)
    assert "Not reliable:" not in " ".join(r[0] for r in runs)
    assert [r for r in runs if r[0].strip() == "77.9 %" and "Bold" in r[1]], "the top class is not bold"
    assert bars[-3:] == [report.MUTED, report.MUTED, report.ACCENT] and _highlighted(styles)  # the page as drawn


def test_the_networks_note_is_under_the_probabilities_not_among_the_image_checks(dicom_dir, monkeypatch):
    page = _page(dicom_dir, out_of_scope="uncertain", warnings=("note: the model is unsure between its classes, as "
                                                                "it rarely is on films like its training data", NOTE,
                                                                SECONDARY))
    data, _, _ = _build(page, monkeypatch)
    runs = _runs(data)
    y = {name: next(r[3] for r in runs if r[0].startswith(name))
         for name in ("Image checks", "Reader's comment", "COVID-19", "the averaged networks disagree", "secondary")}
    assert y["COVID-19"] > y["the averaged networks disagree"] > y["Image checks"]  # under the table, above checks
    checks = " ".join(r[0] for r in runs if y["Image checks"] >= r[3] > y["Reader's comment"])
    assert "secondary capture" in checks and "averaged networks" not in checks and "disagree" not in checks
    assert next(r[2] for r in runs if r[0].startswith("the averaged networks")) < report.PAGE_W / 2  # AI result column
    assert NOTE in page.warnings  # the film's record keeps it


def test_a_page_whose_only_warning_is_the_note_says_no_warnings_under_image_checks(dicom_dir, monkeypatch):
    data, _, _ = _build(_page(dicom_dir, warnings=(NOTE,)), monkeypatch)
    text = " ".join(" ".join(r[0] for r in _runs(data)).split())
    assert "No warnings for this image." in text and "the averaged networks disagree" in text


def test_the_helper_recognises_the_engines_own_note():
    from cxr_engine.models.ensemble_card import EnsembleCard
    from cxr_engine.models.torch_backend import Prediction

    card = EnsembleCard(name="average", architecture="ensemble", classes=["normal", "pneumonia", "covid"],
                        members=[], logit_offsets=[0.0] * 3,
                        member_agreement={"split": "val", "disagree": 118, "right_when_disagree": 0.55,
                                          "right_when_agree": 0.96})
    prediction = Prediction(("normal", "pneumonia", "covid"), (0.1, 0.2, 0.7), "average", "",
                            (("lite0", "pneumonia"), ("b1", "covid")))
    assert is_disagreement_note(disagreement_note(card, prediction))
    assert is_disagreement_note(disagreement_note(card, prediction, "inverted"))  # the short form too
    assert not is_disagreement_note(SECONDARY) and not is_disagreement_note("")
