"""One wording of what the image checks and the out-of-scope heads found (``image_checks.scope_warning``):
the CSV's ``warnings`` column says it; the PDF's "Image checks" leaves to the banner above it what the banner
says already (``image_checks.beside_banner``, as the app's panel: tester, a close call's "note: the model is
unsure ..." and a child's age repeated word for word under the banner), and never prints "No warnings" under
an out-of-scope banner (tester: a child's film, ``child-chest`` banner, "No warnings")."""
from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest

from cxr_engine.models.image_checks import (
    NOT_CORRECTED, beside_banner, check_warning, describe, film_warnings, scope_warning,
)
from cxr_engine.models.suitability import AGE_OUTSIDE_TRAINING, AGE_WARNING
from cxr_engine.models.scope_heads import CHILD, OTHER_FINDINGS, WORDS as HEAD_WORDS
from cxr_engine.models.scope_score import WORDS as UNCERTAIN_WORDS
from cxr_engine.outputs.report import ReportPage, build_report_pdf

from conftest import kermany_children
from model_factory import BUNDLED_CARD, default_card_path

NO_WARNINGS = "No warnings for this image."


class TestScopeWarning:
    def test_in_scope_is_empty(self):
        assert scope_warning("") == ""

    def test_a_head_is_worded_as_out_of_scope_the_child_head_as_possibly(self):
        child = f"possibly out of scope: {HEAD_WORDS[CHILD]}, unless the patient is an adult"
        assert scope_warning(CHILD) == child
        assert scope_warning(OTHER_FINDINGS) == f"out of scope: {HEAD_WORDS[OTHER_FINDINGS]}"
        assert scope_warning(f"{OTHER_FINDINGS};{CHILD}") == f"out of scope: {HEAD_WORDS[OTHER_FINDINGS]}; {child}"

    def test_uncertain_after_the_heads_as_a_note(self):
        assert scope_warning(f"{CHILD};uncertain") == (f"possibly out of scope: {HEAD_WORDS[CHILD]}, unless the "
                                                       f"patient is an adult; note: {UNCERTAIN_WORDS}")

    def test_image_check_reasons_in_the_checks_own_words(self):
        assert scope_warning("inverted;rotated-180") == check_warning("inverted;rotated-180")
        assert "upside down" in scope_warning("inverted;rotated-180")

    def test_the_checks_own_warning_wins_when_given(self):
        note = "auto-orient: the film looked upside down; classified as corrected"
        assert scope_warning("uncertain", note) == f"{note}; note: {UNCERTAIN_WORDS}"

    def test_lateral_is_left_to_the_header_warning(self):
        assert scope_warning("lateral") == ""


SECONDARY = "secondary capture: a converted or digitised copy, not the original radiograph"


class TestBesideBanner:
    """What the banner says is left out of the lines under it: the classification's own note, statement by
    statement, and the header's warning of a reason it lists; everything else stays, in order."""

    def test_a_close_calls_note_is_left_to_the_banner(self):
        warnings = film_warnings("uncertain", None, [SECONDARY])
        assert warnings == (f"note: {UNCERTAIN_WORDS}", SECONDARY)  # the CSV's column keeps it
        assert beside_banner(warnings, "uncertain") == (SECONDARY,)

    def test_the_checks_fault_and_the_age_are_left_to_the_banner(self):
        reasons = f"{AGE_OUTSIDE_TRAINING};atypical-film"
        warnings = film_warnings(reasons, None, [SECONDARY, AGE_WARNING])
        assert beside_banner(warnings, reasons) == (SECONDARY,)

    def test_what_the_banner_does_not_say_stays(self):
        reasons = "rotated-90;uncertain"
        warnings = film_warnings(reasons, f"{check_warning('rotated-90')}; {NOT_CORRECTED}", [SECONDARY])
        assert beside_banner(warnings, reasons) == (NOT_CORRECTED, SECONDARY)

    def test_without_a_banner_every_warning_stays(self):
        warnings = (f"note: {UNCERTAIN_WORDS}", SECONDARY)
        assert beside_banner(warnings, "") == warnings


def _pdf_text(data: bytes) -> str:
    import io

    from pypdf import PdfReader

    return " ".join(" ".join(page.extract_text() for page in PdfReader(io.BytesIO(data)).pages).split())


class TestReportPage:
    def test_a_banner_without_warnings_still_says_why(self):
        page = ReportPage(displayed=np.zeros((64, 64), np.uint8), out_of_scope=CHILD)
        text = _pdf_text(build_report_pdf([page], model_card=None, deidentify=False))
        assert NO_WARNINGS not in text
        assert " ".join(scope_warning(CHILD).split()[:8]) in text

    def test_a_lateral_banner_without_warnings_says_lateral(self):
        page = ReportPage(displayed=np.zeros((64, 64), np.uint8), out_of_scope="lateral")
        text = _pdf_text(build_report_pdf([page], model_card=None, deidentify=False))
        assert NO_WARNINGS not in text and "a lateral view" in text

    def test_in_scope_without_warnings_says_so(self):
        page = ReportPage(displayed=np.zeros((64, 64), np.uint8))
        assert NO_WARNINGS in _pdf_text(build_report_pdf([page], model_card=None, deidentify=False))


def test_csv_and_pdf_say_the_same_for_a_real_child_film_and_an_adult_film(tmp_path, shared_data):
    """cxr-classify's CSV and a PDF page made from the same ``classify_files`` event carry the same words:
    the child's JPEG (no header age) gets the child head's warning under its banner; an adult NIH film in
    scope gets neither banner nor warning."""
    pytest.importorskip("onnxruntime")
    pytest.importorskip("pypdf")
    from dataclasses import replace

    from cxr_engine import classify_files, load_classifier
    from cxr_engine.cli import main
    from cxr_engine.models.image_checks import default_checker
    from cxr_engine.pixels.rendering import render

    child = kermany_children(shared_data, 1)[0]
    adult = shared_data / "cxr3" / "images" / "normal" / "019795c67ec99c90.jpg"  # nih_cxr14, normal
    if not adult.exists():
        pytest.skip(f"{adult} is not on this machine")
    out = tmp_path / "r.csv"
    assert main([str(child), str(adult), "--csv", str(out), "--model", str(BUNDLED_CARD), "--backend", "onnx",
                 "--no-isolation", "--quiet"]) == 0
    with open(out, newline="") as handle:
        rows = {Path(r["path"]).name: r for r in csv.DictReader(handle)}
    assert rows[child.name]["out_of_scope"] == CHILD and scope_warning(CHILD) in rows[child.name]["warnings"]

    classifier = load_classifier(str(BUNDLED_CARD), backend="onnx")
    events = [e for e in classify_files([child, adult], classifier, checker=default_checker()) if e.done]
    for event in events:
        assert "; ".join(event.warnings) == rows[event.path.name]["warnings"]
        assert event.out_of_scope == rows[event.path.name]["out_of_scope"]
        page = replace(ReportPage.for_image(event.image, render(event.image), prediction=event.prediction),
                       warnings=event.warnings, out_of_scope=event.out_of_scope)
        text = _pdf_text(build_report_pdf([page], model_card=classifier.card, deidentify=False))
        if event.path == child:
            assert "Possibly outside what this model was trained for" in text and NO_WARNINGS not in text
            assert " ".join(HEAD_WORDS[CHILD].split()[:6]) in text
        else:
            assert "outside what this model was trained for" not in text.lower() and NO_WARNINGS in text


def test_the_pdf_inside_dicom_out_has_the_banner_of_its_warnings(tmp_path, dicom_dir):
    """The encapsulated report of ``--dicom-out`` showed the out-of-scope warnings without the banner."""
    pytest.importorskip("onnxruntime")
    pypdf = pytest.importorskip("pypdf")
    import io

    import pydicom

    from cxr_engine.cli import main
    from cxr_engine.outputs.dicom_outputs.encapsulated_pdf import pdf_bytes

    out, table = tmp_path / "dicom_out", tmp_path / "r.csv"
    assert main([str(dicom_dir / "Fake_MONOHR1.dcm"), "--dicom-out", str(out), "--csv", str(table), "--model",
                 str(BUNDLED_CARD), "--backend", "onnx", "--no-isolation", "--quiet"]) == 0
    with open(table, newline="") as handle:
        [row] = list(csv.DictReader(handle))
    assert row["out_of_scope"].startswith("inverted")
    [pdf] = out.glob("*_pdf.dcm")
    reader = pypdf.PdfReader(io.BytesIO(pdf_bytes(pydicom.dcmread(pdf))))
    text = " ".join(" ".join(page.extract_text() for page in reader.pages).split())
    assert "Outside what this model was trained for: shown as a negative (inverted)" in text
    # said once, in the banner: the CSV's column keeps the warning, the page's "Image checks" leave it out
    assert scope_warning(row["out_of_scope"]) in row["warnings"]
    assert " ".join(scope_warning(row["out_of_scope"]).split()[:8]) not in text


def test_a_film_that_may_be_in_scope_gets_a_milder_banner():
    """A reading radiologist's finding: a correct adult pneumonia (98 %) was told "outside what this model was
    trained for; the probabilities below are not reliable" because the child head fired on an adult ICU film,
    and a borderline genuine pneumonia because the model was unsure."""
    from cxr_engine.models.image_checks import banner, heatmap_note

    unsure = banner("uncertain")
    assert unsure.startswith("Note: the model is unsure") and "not reliable" not in unsure
    child = banner(CHILD)
    assert child.startswith("Possibly outside what this model was trained for: looks like a child's chest")
    assert child.endswith("If the patient is an adult, the child's-chest check does not apply; for a child, the "
                          "probabilities below are less reliable.")
    assert banner(f"{CHILD};uncertain").startswith("Possibly outside")
    for firm in ("inverted", "inverted;uncertain", f"lateral;{CHILD}"):
        assert banner(firm).endswith("The probabilities below are not reliable.")
        assert heatmap_note(firm).endswith("the heat-map is not reliable either.")
    assert "not reliable" not in heatmap_note("uncertain") + heatmap_note(CHILD)


def test_only_a_firm_banner_is_red():
    from cxr_engine.models.image_checks import banner_is_firm

    assert not banner_is_firm("uncertain") and not banner_is_firm(CHILD) and not banner_is_firm(f"{CHILD};uncertain")
    assert banner_is_firm("inverted") and banner_is_firm("inverted;uncertain") and banner_is_firm(f"lateral;{CHILD}")


def _start(text: str, words: int = 8) -> str:
    return " ".join(text.split()[:words])


def test_the_pdf_says_once_what_its_banner_says_for_real_films(shared_data, dicom_dir):
    """Real films with a banner, classified by the app's default model: the RSNA film of a 6-year-old (age, image
    checks), an RSNA close call and the inverted Fake_MONOHR1. Their page states each reason in the banner only;
    its "Image checks" keep the other warnings; the classification's events (the CSV's column) keep every one."""
    pytest.importorskip("onnxruntime")
    pytest.importorskip("pypdf")
    from dataclasses import replace

    from cxr_engine import classify_files, load_classifier
    from cxr_engine.models.image_checks import default_checker
    from cxr_engine.pixels.rendering import render

    child = shared_data / "dicom_rsna" / "00aecb01-a116-45a2-956c-08d2fa55433f.dcm"
    close_call = shared_data / "dicom_rsna" / "0004cfab-14fd-4e49-80ba-63a80b6bddd6.dcm"
    inverted = dicom_dir / "Fake_MONOHR1.dcm"
    if not (child.exists() and close_call.exists()):
        pytest.skip("the RSNA films are not on this machine")
    classifier = load_classifier(str(default_card_path()), backend="onnx")
    events = {e.path: e for e in classify_files([child, close_call, inverted], classifier,
                                                checker=default_checker()) if e.done}
    assert events[child].out_of_scope.startswith(AGE_OUTSIDE_TRAINING)
    assert events[close_call].out_of_scope == "uncertain"
    assert events[inverted].out_of_scope.startswith("inverted")
    for path, event in events.items():
        said = [*scope_warning(event.out_of_scope).split("; "), *([AGE_WARNING] if path == child else [])]
        assert all(statement in "; ".join(event.warnings) for statement in said)  # the CSV keeps them
        page = replace(ReportPage.for_image(event.image, render(event.image), prediction=event.prediction),
                       warnings=event.warnings, out_of_scope=event.out_of_scope)
        text = _pdf_text(build_report_pdf([page], model_card=classifier.card, deidentify=False))
        checks = text[text.index("Image checks"):text.index("Reader's comment")]
        assert all(_start(statement) not in text for statement in said), (path.name, checks)
        assert _start(SECONDARY) in checks and NO_WARNINGS not in checks, (path.name, checks)


def test_a_close_call_banner_never_reads_a_figure_under_itself():
    """A reviewer's finding: a top probability just over the flag line could read "66.6 % ... under 66.6 %"."""
    from cxr_engine.models.image_checks import close_call_banner

    text = close_call_banner(0.6652, 0.3346)  # 66.52 % and 66.54 % both round to 66.5 %
    assert "the top class has 66.52 %; the model flags films whose top class is under 66.54 %" in text
    assert "the top class has 57.2 %; the model flags films whose top class is under 66.5 %" in close_call_banner(
        0.572, 0.3346)
