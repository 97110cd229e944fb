"""A new user's findings on the PDF, on real films of ../shared/data (skipped, saying why, without them); the text
is read back with pdftotext:

- A file name holding ESC (U+001B) got "no font on this computer has this character (U+001B). Install a font…":
  a control character is no letter; it prints as the app shows it (U+FFFD), and no font is suggested.
- An RSNA Patient ID (36 characters) wrapped inside the ID ("…9ab" / "4"): an identifier stays on one line, shrunk
  to fit, and one too long even so breaks only after a separator.
- The inverted Fake_MONOHR1.dcm: "Not reliable: COVID-19 93.7 %" above "a COVID-19 call was right 34 of 37 times" in
  the Model box: that figure is withheld, saying why, as the calibration line is.
"""
from __future__ import annotations

import shutil
import subprocess
from dataclasses import replace
from pathlib import Path

import pytest

pytest.importorskip("reportlab")

from cxr_engine.display_text import REPLACEMENT  # noqa: E402
from cxr_engine.outputs import report  # noqa: E402
from cxr_engine.outputs.report import MIN_VALUE_PT, NO_GLYPH, ReportPage, write_report  # noqa: E402
from cxr_engine.pixels.rendering import render  # noqa: E402
from cxr_engine.reading.read import read_image  # noqa: E402

from real_films import rsna_film  # noqa: E402

RSNA = "00436515-870c-4b36-a041-de91049b9ab4.dcm"  # Patient ID (and name) 00436515-870c-4b36-a041-de91049b9ab4
SIIM = "1.2.276.0.7230010.3.1.4.8323329.6904.1517875201.850819.dcm"
INVERTED = "Fake_MONOHR1.dcm"


@pytest.fixture(autouse=True)
def unicode_report_font():
    if not report._fonts(report.FONT_CANDIDATES).unicode:
        pytest.skip(f"none of the report's TrueType fonts is installed here: {report.FONT_CANDIDATES}")


def pdf_lines(path: Path) -> list[str]:
    """The PDF's first page as pdftotext reads it, one string a line."""
    if shutil.which("pdftotext") is None:
        pytest.skip("pdftotext (poppler-utils) is not installed")
    return subprocess.run(["pdftotext", "-f", "1", "-l", "1", str(path), "-"], capture_output=True, text=True,
                          check=True).stdout.splitlines()


def write(tmp_path: Path, film: Path, card=None, **changes) -> Path:
    image = read_image(film)
    page = replace(ReportPage.for_image(image, render(image)), **changes)
    return write_report(tmp_path / "report.pdf", [page], model_card=card, deidentify=False)


def test_a_control_character_in_a_file_name_prints_as_the_app_shows_it(tmp_path, shared_data):
    film = tmp_path / "esc\x1b[31mred.dcm"
    shutil.copy(rsna_film(shared_data, RSNA), film)
    fonts = report._fonts(report.FONT_CANDIDATES, report.FALLBACK_FONT_CANDIDATES)
    assert fonts.missing(film.name) == []
    text = " ".join(pdf_lines(write(tmp_path, film)))
    assert f"esc{REPLACEMENT}[31mred.dcm" in text
    assert "U+001B" not in text and "no font on this computer" not in text and NO_GLYPH not in text


def test_a_long_patient_id_stays_on_one_line(tmp_path, shared_data):
    film = rsna_film(shared_data, RSNA, "an RSNA film with a 36-character Patient ID")
    patient_id = read_image(film).metadata.patient_id
    assert len(patient_id) == 36
    lines = pdf_lines(write(tmp_path, film))
    started = [line for line in lines if patient_id[:8] in line]  # the Patient ID, the name (the same, here), the file
    assert len(started) == 3 and all(patient_id in line for line in started), started


def test_an_identifier_too_long_even_when_shrunk_breaks_only_after_a_separator(dicom_dir):
    if not (dicom_dir / SIIM).exists():
        pytest.skip(f"not in {dicom_dir}: {SIIM}")
    fonts = report._fonts(report.FONT_CANDIDATES)
    ctx = report._Context(None, fonts, None, False, "", "", "", 1)
    width = report.CONTENT_W / 2 - 80 - 10
    paragraph = report._identification_value(ctx, "File", SIIM, width)
    pieces = paragraph.text.split("<br/>")
    assert "".join(pieces) == SIIM and len(pieces) > 1
    assert all(piece.endswith(".") for piece in pieces[:-1])
    assert all(fonts.width(piece, paragraph.style.fontSize) <= width for piece in pieces)
    assert paragraph.style.fontSize == MIN_VALUE_PT
    short = report._identification_value(ctx, "Patient ID", "PAT-4711", width)
    assert short.style.fontSize == report._styles(fonts)["value"].fontSize  # as before when it fits


def test_an_out_of_scope_films_pdf_withholds_the_calls_right_figure(tmp_path, dicom_dir):
    pytest.importorskip("onnxruntime")
    from cxr_engine.models.backends import create_classifier
    from cxr_engine.models.image_checks import banner_is_firm, check_image, default_checker
    from cxr_engine.models.model_card import ModelCard
    from cxr_engine.models.model_limits import OUT_OF_SCOPE_CALLS
    from cxr_engine.models.scope_score import film_out_of_scope, threshold

    from model_factory import BUNDLED_CARD

    film = dicom_dir / INVERTED
    if not film.exists():
        pytest.skip(f"not in {dicom_dir}: {INVERTED}")
    card = ModelCard.load(BUNDLED_CARD)
    model = create_classifier(card, backend="onnx", device="cpu")
    model.load()
    image = read_image(film)
    prediction = model.predict([image])[0]
    scope = film_out_of_scope(check_image(image, default_checker()), prediction, threshold(card), image.metadata)
    assert banner_is_firm(scope)
    text = " ".join(" ".join(pdf_lines(write(tmp_path, film, card, prediction=prediction, out_of_scope=scope))).split())
    assert "Not reliable:" in text and "call was right" not in text
    assert " ".join(OUT_OF_SCOPE_CALLS.split()) in text
    assert "Test accuracy: adults with a recorded age" in text  # the test set's figures stay

    in_scope = " ".join(" ".join(pdf_lines(write(tmp_path, film, card, prediction=prediction))).split())
    assert f"a {prediction.display_label} call was right" in in_scope
