"""Header facts that put a film outside the model's scope (tester item 1): a patient's age outside the
training data (Patient's Age in days, weeks, months or years, else Birth Date to Study Date), a Body Part
Examined that is not the chest and a Modality that is not a projection radiograph set ``out_of_scope``
like a lateral View Position: the CSV column and the summary's count (CLI), the app's banner and the PDF,
each in the words of ``image_checks.REASON_WORDS``. Copies of the real CR-MONO1-10-chest.dcm with one
header field changed."""
from __future__ import annotations

import csv
import io
import shutil

import numpy as np
import pydicom
import pytest

from cxr_engine.cli import main
from cxr_engine.models.image_checks import banner, banner_is_firm, describe, scope_warning
from cxr_engine.models.scope_score import out_of_scope
from cxr_engine.models.suitability import (
    AGE_OUTSIDE_TRAINING, LATERAL, NOT_CHEST_BODY_PART, NOT_RADIOGRAPH, header_scope_reasons, patient_age_years,
)
from cxr_engine.pixels.image import ImageMetadata

from model_factory import BUNDLED_CARD

FRONTAL = "CR-MONO1-10-chest.dcm"
#: file name -> (header fields changed, the header's out-of-scope reasons)
FILMS = {
    "age_003M.dcm": ({"PatientAge": "003M"}, AGE_OUTSIDE_TRAINING),
    "age_300D.dcm": ({"PatientAge": "300D"}, AGE_OUTSIDE_TRAINING),
    "age_010Y.dcm": ({"PatientAge": "010Y"}, AGE_OUTSIDE_TRAINING),
    "age_017Y.dcm": ({"PatientAge": "017Y"}, AGE_OUTSIDE_TRAINING),
    "age_003Y.dcm": ({"PatientAge": "003Y"}, ""),  # a child of the training ages
    "age_030M.dcm": ({"PatientAge": "030M"}, ""),
    "age_045Y.dcm": ({"PatientAge": "045Y"}, ""),
    "born_2000_seen_2010.dcm": ({"PatientBirthDate": "20000101", "StudyDate": "20100101"}, AGE_OUTSIDE_TRAINING),
    "born_1940_seen_2004.dcm": ({"PatientBirthDate": "19400101", "StudyDate": "20040101"}, ""),
    "hand.dcm": ({"BodyPartExamined": "HAND"}, NOT_CHEST_BODY_PART),
    "port_chest.dcm": ({"BodyPartExamined": "PORT CHEST"}, ""),
    "ct.dcm": ({"Modality": "CT"}, NOT_RADIOGRAPH),
    "lateral_child.dcm": ({"ViewPosition": "LL", "PatientAge": "010Y"}, f"{LATERAL};{AGE_OUTSIDE_TRAINING}"),
}


class TestHeaderReasons:
    @pytest.mark.parametrize("name", sorted(FILMS))
    def test_each_header_fact(self, name):
        changes, expected = FILMS[name]
        keys = {"PatientAge": "patient_age", "PatientBirthDate": "patient_birth_date", "StudyDate": "study_date",
                "BodyPartExamined": "body_part", "Modality": "modality", "ViewPosition": "view_position"}
        fields = {"modality": "CR", "body_part": "CHEST", "view_position": "PA"}
        header = ImageMetadata(**{**fields, **{keys[key]: value for key, value in changes.items()}})
        assert header_scope_reasons(header) == expected
        # The image checks and the heads come after the header; the heads are left out once it has spoken.
        assert out_of_scope("", (0.9, 0.05, 0.05), None, header, "child-chest") == (expected or "child-chest")

    @pytest.mark.parametrize("age, years", [("003M", 0.25), ("010Y", 10.0), ("052W", 52 / 52.18), ("006D", 6 / 365.25),
                                            ("17", 17.0), ("abc", None), ("", None)])
    def test_age_strings(self, age, years):
        got = patient_age_years(ImageMetadata(patient_age=age))
        assert got == (pytest.approx(years) if years is not None else None)

    def test_birth_date_after_the_study_or_damaged_gives_no_age(self):
        assert patient_age_years(ImageMetadata(patient_birth_date="20200101", study_date="20100101")) is None
        assert patient_age_years(ImageMetadata(patient_birth_date="d14a028c", study_date="20100101")) is None
        # Patient's Age wins over the dates.
        assert patient_age_years(ImageMetadata(patient_age="045Y", patient_birth_date="20000101",
                                               study_date="20100101")) == 45

    def test_a_view_position_string_alone_still_works(self):
        assert header_scope_reasons("LL") == LATERAL and header_scope_reasons("PA") == ""

    def test_the_header_reasons_are_worded_in_the_banner_not_twice_in_the_warnings(self):
        reasons = f"{AGE_OUTSIDE_TRAINING};{NOT_CHEST_BODY_PART};{NOT_RADIOGRAPH}"
        for part in reasons.split(";"):
            assert describe(part) != part  # has its own words
            assert describe(part) in banner(reasons)
        assert scope_warning(reasons) == ""  # suitability.assess words them, with the header's value


def _copy(folder, dicom_dir, name, changes):
    ds = pydicom.dcmread(dicom_dir / FRONTAL, force=True)
    for key, value in changes.items():
        setattr(ds, key, value)
    ds.SOPInstanceUID = pydicom.uid.generate_uid()  # another instance, not a copy of the frontal film
    ds.save_as(folder / name)


@pytest.fixture()
def header_films(tmp_path, dicom_dir):
    folder = tmp_path / "hdr"
    folder.mkdir()
    shutil.copy(dicom_dir / FRONTAL, folder / FRONTAL)
    for name, (changes, _) in FILMS.items():
        _copy(folder, dicom_dir, name, changes)
    return folder


def test_the_cli_sets_out_of_scope_and_counts_it(header_films, tmp_path, capsys):
    out = tmp_path / "out.csv"
    assert main([str(header_films), "--csv", str(out), "--model", str(BUNDLED_CARD), "--backend", "onnx",
                 "--no-isolation"]) == 0
    with open(out, newline="") as handle:
        rows = {row["path"].rsplit("/", 1)[-1]: row for row in csv.DictReader(handle)}
    for name, (_, expected) in FILMS.items():
        header_part = ";".join(part for part in rows[name]["out_of_scope"].split(";")
                               if part in (LATERAL, AGE_OUTSIDE_TRAINING, NOT_CHEST_BODY_PART, NOT_RADIOGRAPH))
        assert header_part == expected, name
    assert "body part HAND: the model is made for chest films" in rows["hand.dcm"]["warnings"]
    assert "modality CT is not a projection radiograph" in rows["ct.dcm"]["warnings"]
    flagged = sum(1 for row in rows.values() if row["out_of_scope"] and banner_is_firm(row["out_of_scope"]))
    summary = capsys.readouterr().err.strip().splitlines()[-1]
    assert f"out of scope {flagged}," in summary
    assert flagged >= sum(1 for _, expected in FILMS.values() if expected)


def test_the_pdf_page_shows_the_banner_of_a_child(dicom_dir):
    pypdf = pytest.importorskip("pypdf")
    from cxr_engine.models.torch_backend import Prediction
    from cxr_engine.outputs.report import ReportPage, build_report_pdf
    from cxr_engine.pixels.rendering import render
    from cxr_engine.reading.read import read_image

    image = read_image(dicom_dir / FRONTAL)
    shown = np.repeat(render(image)[..., None], 3, axis=2)
    reasons = out_of_scope("", (0.9, 0.05, 0.05), None, ImageMetadata(patient_age="010Y"))
    page = ReportPage(displayed=shown, prediction=Prediction(("normal", "pneumonia", "covid"), (0.9, 0.05, 0.05), "t"),
                      out_of_scope=reasons)
    text = " ".join(" ".join(p.extract_text() for p in pypdf.PdfReader(io.BytesIO(
        build_report_pdf([page], model_card=None, deidentify=False))).pages).split())
    assert "an age it has almost no training films of (its children are nearly all 1–5 years old" in text


def test_the_app_panel_shows_the_banner_for_header_facts(qtbot):
    pytest.importorskip("PySide6")
    from PySide6.QtGui import QAction

    from cxr_desktop.result_model import ResultModel
    from cxr_desktop.result_panel import ResultPanel
    from cxr_desktop.viewer_model import ViewerModel

    model = ResultModel()
    panel = ResultPanel(model, ViewerModel(), QAction("Heat-map"))
    qtbot.addWidget(panel)
    for header, expected in ((ImageMetadata(patient_age="010Y"), AGE_OUTSIDE_TRAINING),
                             (ImageMetadata(modality="CT"), NOT_RADIOGRAPH),
                             (ImageMetadata(body_part="HAND"), NOT_CHEST_BODY_PART)):
        model.set_image((), header)
        assert model.out_of_scope == expected
        assert panel.scope_banner.text() == banner(expected) and not panel.scope_banner.isHidden()
    model.set_image((), ImageMetadata(patient_age="045Y", modality="DX", body_part="CHEST"))
    assert model.out_of_scope == "" and panel.scope_banner.isHidden()
