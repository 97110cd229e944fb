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


def _all_text(data: bytes) -> list[str]:
    return [" ".join(page.extract_text().split()) for page in pypdf.PdfReader(io.BytesIO(data)).pages]


#: A close call with the averaged networks' note and three long warnings (the tester's ``00313ee0…`` page, with one
#: warning more): the panels at their smallest were not room enough, and the comment box shrank to one line with the
#: footer running through "(no comment)".
CROWDED = dict(out_of_scope="uncertain", measurements=("Cardiothoracic ratio 0.48 (proposed lines)",) * 3, warnings=(
    "note: the model is unsure between its classes, as it rarely is on films like its training data",
    "the averaged networks disagree on this film (efficientnet-lite0: Normal, efficientnet-b1: Pneumonia): such calls "
    "were right less often than the calibration line's figures, which count all films (55 % of 118 validation and "
    "76 % of 130 test films, against 96 % where the networks agreed)",
    "Pixel Spacing 0.194311 × 0.194311 mm gives a field of view of 199 × 199 mm, too small for a chest film: the "
    "spacing is most likely the original film's, kept when the image was resized; lengths are given in pixels",
    *LONG_WARNINGS))


@pytest.mark.parametrize("reader_name", ["", "Dr Reader"])
def test_a_page_too_tall_for_its_panels_moves_sections_to_a_continuation_page(dicom_dir, reader_name):
    from dataclasses import replace

    page = replace(_page(dicom_dir), **CROWDED)
    data = build_report_pdf([page], model_card=ModelCard.load(BUNDLED_CARD), deidentify=False,
                            reader_name=reader_name)
    # the comment box keeps its minimum height: from under its heading down to the footer
    assert _y_of(data, "Reader's comment") - FOOTER_TOP >= MIN_COMMENT_H + 10
    assert _y_of(data, "(no comment)") > FOOTER_TOP + MIN_COMMENT_H / 2
    texts = _all_text(data)
    assert len(texts) == 3 and "Page 1 of 3" in texts[0] and "Page 3 of 3" in texts[2]
    assert "Continued on page 2:" in texts[0] and "Continued from page 1" in texts[1]
    # nothing is lost: what page 1 left out is on page 2
    moved = texts[0][texts[0].index("Continued on page 2:"):].split(":", 1)[1].split(".")[0]
    for name in moved.split(", "):
        assert name.strip() in texts[1], (name, texts[1])
    whole = " ".join(texts)
    for line in ("Cardiothoracic ratio 0.48", "secondary capture: a converted", "Pixel Spacing 0.194311",
                 "Calibration:", "the averaged networks disagree"):
        assert line in whole
    # the close call's banner sends the reader to the calibration line: it stays beside the result
    assert "Calibration:" in texts[0] and "Cardiothoracic ratio 0.48" in texts[1]


def test_a_page_that_fits_gets_no_continuation_page(dicom_dir):
    data = build_report_pdf([_page(dicom_dir)], model_card=ModelCard.load(BUNDLED_CARD), deidentify=False)
    texts = _all_text(data)
    assert len(texts) == 2 and "Continued" not in " ".join(texts)


def test_even_an_extreme_page_never_runs_into_its_footer(dicom_dir):
    """Twelve long warnings and a banner of every reason: whatever moves, the comment box keeps its height."""
    from dataclasses import replace

    page = replace(_page(dicom_dir), out_of_scope="inverted;rotated-180;cropped;lateral;child-chest;uncertain",
                   warnings=tuple(f"{i}: {LONG_WARNINGS[1]}" for i in range(12)),
                   measurements=("Cardiothoracic ratio 0.48 (proposed lines)",) * 6, comment="Reviewed. " * 40)
    data = build_report_pdf([page, _page(dicom_dir)], model_card=ModelCard.load(BUNDLED_CARD), deidentify=False)
    reader = pypdf.PdfReader(io.BytesIO(data))
    total = len(reader.pages)
    assert f"Page {total} of {total}" in reader.pages[-1].extract_text()
    for number, pdf_page in enumerate(reader.pages):
        low = []

        def visit(text, cm, tm, font, size):
            y = cm[5] + tm[5] * cm[3]
            if text.strip() and FOOTER_TOP - 2 < y < FOOTER_TOP + 4:
                low.append(text)

        pdf_page.extract_text(visitor_text=visit)
        assert not low, f"page {number + 1}: text on the footer line: {low}"
    assert "Reviewed." in " ".join(p.extract_text() for p in reader.pages)
