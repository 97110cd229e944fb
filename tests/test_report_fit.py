"""A report page never runs into its footer while its images can give room (seen on the PDF of an
identified, out-of-scope film: banner, two long warnings, and the reader's comment box drawn under the
footer). Real film ``Fake_MONOHR1.dcm``; text positions read back with pypdf."""
from __future__ import annotations

import io

import pytest

from cxr_engine.models.model_card import ModelCard
from cxr_engine.outputs.report import FOOTER_TOP, MIN_COMMENT_H, ReportPage, build_report_pdf
from cxr_engine.pixels.rendering import render
from cxr_engine.reading.read import read_image

from model_factory import BUNDLED_CARD

pypdf = pytest.importorskip("pypdf")

LONG_WARNINGS = (
    "secondary capture: a converted or digitised copy, not the original radiograph",
    "image check: shown as a negative (inverted): outside what the model was trained for; out of scope: the "
    "model is unsure between its classes, as it rarely is on films like its training data",
)


def _y_of(data: bytes, wanted: str) -> float:
    """The baseline y (points from the page bottom) of the first text run holding ``wanted``."""
    found = []

    def visit(text, cm, tm, font, size):
        if wanted in text:
            found.append(cm[5] + tm[5] * cm[3])

    pypdf.PdfReader(io.BytesIO(data)).pages[0].extract_text(visitor_text=visit)
    assert found, f"{wanted!r} not on the page"
    return found[0]


def _page(dicom_dir, **kwargs) -> ReportPage:
    from cxr_engine.models.torch_backend import Prediction

    image = read_image(dicom_dir / "Fake_MONOHR1.dcm")
    prediction = Prediction(classes=("normal", "pneumonia", "covid"), probabilities=(0.177, 0.044, 0.779),
                            model_name="efficientnet-lite0")
    return ReportPage.for_image(image, render(image), prediction=prediction, **kwargs)


@pytest.mark.parametrize("measurements", [(), ("Cardiothoracic ratio 0.48 (proposed lines)",) * 3])
def test_a_long_page_keeps_its_comment_box_above_the_footer(dicom_dir, measurements):
    from dataclasses import replace

    page = replace(_page(dicom_dir), warnings=LONG_WARNINGS, out_of_scope="inverted;uncertain",
                   measurements=measurements)
    data = build_report_pdf([page], model_card=ModelCard.load(BUNDLED_CARD), deidentify=False)
    assert _y_of(data, "(no comment)") > FOOTER_TOP + MIN_COMMENT_H / 2
    assert _y_of(data, "Page 1 of 2") < FOOTER_TOP


def test_only_a_page_that_needs_room_gets_smaller_panels(dicom_dir, monkeypatch):
    from dataclasses import replace

    from cxr_engine.outputs import report

    heights = []
    original = report._panel_height

    def spy(ctx, page, top):
        heights.append(original(ctx, page, top))
        return heights[-1]

    monkeypatch.setattr(report, "_panel_height", spy)
    # A card that meets the bar: a card below it lists the checks it fails under the limits, which takes room too.
    card = replace(ModelCard.load(BUNDLED_CARD), meets_bar=True)
    # one short warning (the film's own also say that its spacing was set aside: two long lines)
    short = replace(_page(dicom_dir), warnings=("secondary capture: a converted or digitised copy, not the original "
                                                "radiograph",))
    long = replace(short, warnings=LONG_WARNINGS, out_of_scope="inverted;uncertain")
    build_report_pdf([short, long], model_card=card, deidentify=False)
    assert heights[0] == report.PANEL_H
    assert report.MIN_PANEL_H <= heights[1] < report.PANEL_H
