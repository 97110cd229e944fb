"""Header faults a DICOM expert found, on copies of the real CR-MONO1-10-chest.dcm with one header field changed:

- a Patient's Name whose alphabetic group is empty (``=山田^太郎=やまだ^たろう``, ISO 2022 IR 87, as PS3.5 6.2.1.2
  allows) was shown as nothing (an empty viewer corner, "(no name)" in the study tree, no Patient line in the
  PDF): the ideographic group is shown, and de-identification removes every group, written with or without spaces;
- a Specific Character Set that is not a defined term (``ISO_IR192`` with UTF-8 bytes: 'MÃ¼ller, JÃ¼rgen') was
  shown without a warning: the warning names the value and what the text was decoded as;
- a DX image for processing (raw detector data, PS3.3 C.8.11.1.1.1) was classified as any film: it is out of
  scope (``for-processing``) in the CSV, the app's banner and the PDF, with a warning naming the header's values.
"""
from __future__ import annotations

import io

import numpy as np
import pydicom
import pytest

from cxr_engine.display_text import format_person_name
from cxr_engine.models.image_checks import banner, banner_is_firm, describe, heatmap_note, scope_warning
from cxr_engine.models.scope_score import out_of_scope
from cxr_engine.models.suitability import FOR_PROCESSING, header_scope_reasons
from cxr_engine.outputs.deidentify import REDACTED, name_parts, redact_free_text, report_identifiers
from cxr_engine.reading.read import read_image

from model_factory import BUNDLED_CARD, classify_one_to_csv

SOURCE = "CR-MONO1-10-chest.dcm"
IDEOGRAPHIC_ONLY = "=山田^太郎=やまだ^たろう"
DX_FOR_PROCESSING = "1.2.840.10008.5.1.4.1.1.1.1.1"
DX_FOR_PRESENTATION = "1.2.840.10008.5.1.4.1.1.1.1"


@pytest.fixture()
def film(tmp_path, dicom_dir):
    """``film(name, **attributes)``: a copy of the real CR film in ``tmp_path / "films"`` with those attributes set
    (a ``bytes`` Patient's Name is written as those bytes, whatever the character set says)."""
    folder = tmp_path / "films"
    folder.mkdir()

    def make(name: str, **attributes):
        ds = pydicom.dcmread(dicom_dir / SOURCE, force=True)
        for keyword, value in attributes.items():
            if keyword == "PatientName" and isinstance(value, bytes):
                ds["PatientName"] = pydicom.DataElement(0x00100010, "PN", value)
            else:
                setattr(ds, keyword, value)
        ds.SOPInstanceUID = pydicom.uid.generate_uid()
        path = folder / name
        ds.save_as(path)
        return path
    return make


class TestPersonNameGroups:
    @pytest.mark.parametrize("value, shown", [
        (IDEOGRAPHIC_ONLY, "山田, 太郎"),  # no alphabetic group: the ideographic one
        ("==やまだ^たろう", "やまだ, たろう"),  # only the phonetic one
        ("^=山田^太郎", "山田, 太郎"),  # an alphabetic group of carets alone is empty too
        ("Yamada^Tarou=山田^太郎=やまだ^たろう", "Yamada, Tarou"),  # the alphabetic group first, as before
        ("==", ""),
    ])
    def test_the_first_group_that_holds_a_name_is_shown(self, value, shown):
        assert format_person_name(value) == shown

    def test_the_real_file_shows_the_ideographic_name_on_every_face(self, film):
        path = film("ideographic.dcm", SpecificCharacterSet=["", "ISO 2022 IR 87"], PatientName=IDEOGRAPHIC_ONLY)
        image = read_image(path)
        assert image.metadata.patient_name == IDEOGRAPHIC_ONLY  # decoded as the file says (ISO 2022 IR 87)
        assert not [w for w in image.warnings if "Character Set" in w]
        assert dict(report_identifiers(image.metadata, deidentify=False))["Patient"] == "山田, 太郎"
        formatting = pytest.importorskip("cxr_desktop.formatting")
        from cxr_engine.pixels.windowing import Window

        corners = formatting.corner_text(image.metadata, image.shape, Window(1000.0, 2000.0), 1.0, 0, False, False,
                                         False)
        assert corners.top_left[0] == "山田, 太郎"

    def test_the_study_tree_names_the_patient(self, film, qtbot):
        pytest.importorskip("PySide6")
        from cxr_desktop.study_browser import StudyBrowser
        from cxr_engine.reading.scanning import scan

        path = film("ideographic.dcm", SpecificCharacterSet=["", "ISO 2022 IR 87"], PatientName=IDEOGRAPHIC_ONLY)
        browser = StudyBrowser()
        qtbot.addWidget(browser)
        browser.add_result(scan(path.parent))
        assert browser.topLevelItem(0).text(0).startswith("山田, 太郎")

    def test_de_identification_removes_every_group_spaced_or_not(self):
        from cxr_engine.pixels.image import ImageMetadata

        assert {"山田", "太郎", "やまだ", "たろう"} <= set(name_parts(IDEOGRAPHIC_ONLY))
        metadata = ImageMetadata(patient_name=IDEOGRAPHIC_ONLY)
        # Japanese writes a full name without a space, and glues words to it: 患者 (patient), の (of).
        assert redact_free_text("患者山田太郎の胸部、やまだ たろう様", metadata) == f"患者{REDACTED}の胸部、{REDACTED}様"
        assert redact_free_text("山田, 太郎: clear lungs", metadata) == f"{REDACTED}: clear lungs"
        # A one-character family name goes with the full name it starts (王小明 of 王^小明).
        assert redact_free_text("王小明的胸片", ImageMetadata(patient_name="王^小明")) == f"{REDACTED}的胸片"
        # Latin names keep their word bounds: "Al" does not eat "normal".
        assert redact_free_text("normal, Al", ImageMetadata(patient_name="Al^Bo")) == f"normal, {REDACTED}"


@pytest.mark.filterwarnings("ignore:Unknown encoding:UserWarning", "ignore:Incorrect value for Specific:UserWarning",
                            "ignore:Invalid value for VR CS:UserWarning")  # pydicom's own, to its log
class TestCharacterSet:
    MULLER = "Müller^Jürgen"

    def test_a_misspelt_utf8_term_is_named_with_what_was_assumed(self, film):
        path = film("misspelt.dcm", SpecificCharacterSet="ISO_IR192", PatientName=self.MULLER.encode("utf-8"))
        image = read_image(path)
        assert image.metadata.patient_name == "MÃ¼ller^JÃ¼rgen"  # pydicom's fallback, ISO 8859-1
        assert ("Specific Character Set (0008,0005) 'ISO_IR192' is not a defined term (PS3.3 C.12.1.1.2; perhaps "
                "'ISO_IR 192' misspelt): Patient's Name decoded as ISO 8859-1 (pydicom's fallback), which may show "
                "wrong letters") in image.warnings

    def test_a_misspelling_pydicom_corrects_says_so(self, film):
        path = film("spaced.dcm", SpecificCharacterSet="ISO IR 100", PatientName=self.MULLER.encode("latin-1"))
        image = read_image(path)
        assert image.metadata.patient_name == self.MULLER
        assert ("Specific Character Set (0008,0005) 'ISO IR 100' is not a defined term (PS3.3 C.12.1.1.2): "
                "Patient's Name read as 'ISO_IR 100' (pydicom's correction of a common misspelling)") in image.warnings

    def test_a_python_codec_name_says_so(self, film):
        image = read_image(film("codec.dcm", SpecificCharacterSet="utf8", PatientName=self.MULLER.encode("utf-8")))
        assert image.metadata.patient_name == self.MULLER
        assert ("Specific Character Set (0008,0005) 'utf8' is not a defined term (PS3.3 C.12.1.1.2): Patient's Name "
                "read as the Python codec 'utf-8' of that name") in image.warnings

    @pytest.mark.parametrize("charset, name", [("ISO_IR192", b"Test^Film"), ("ISO_IR 192", "Müller^Jürgen".encode()),
                                               (["", "ISO 2022 IR 87"], IDEOGRAPHIC_ONLY)])
    def test_no_warning_when_nothing_shown_depends_on_it(self, film, charset, name):
        """ASCII text reads the same in any character set; a defined term decodes as the standard says."""
        image = read_image(film("plain.dcm", SpecificCharacterSet=charset, PatientName=name))
        assert not [w for w in image.warnings if "Character Set" in w]


class TestForProcessing:
    WARNING = ("image for processing (Presentation Intent Type (0008,0068) 'FOR PROCESSING' and SOP Class 'Digital "
               "X-Ray Image Storage - For Processing'): raw detector data, meant to be processed before it is "
               "displayed (PS3.3 C.8.11.1.1.1); shown as stored, and the model, trained on processed films (for "
               "presentation), is not reliable on it")

    @pytest.fixture()
    def raw(self, film):
        return film("dx_for_processing.dcm", Modality="DX", SOPClassUID=DX_FOR_PROCESSING,
                    PresentationIntentType="FOR PROCESSING")

    def test_the_header_puts_it_out_of_scope_with_a_warning(self, raw):
        image = read_image(raw)
        assert self.WARNING in image.warnings
        assert header_scope_reasons(image.metadata) == FOR_PROCESSING
        assert out_of_scope("", (0.9, 0.05, 0.05), None, image.metadata, "child-chest") == FOR_PROCESSING
        assert banner_is_firm(FOR_PROCESSING)
        assert banner(FOR_PROCESSING) == ("Outside what this model was trained for: raw detector data (the header "
                                          "says for processing), not a film processed for viewing.\nThe probabilities "
                                          "below are not reliable.")
        assert scope_warning(FOR_PROCESSING) == ""  # the reader's warning names the header's values instead

    def test_a_film_for_presentation_is_not_flagged(self, film):
        image = read_image(film("dx.dcm", Modality="DX", SOPClassUID=DX_FOR_PRESENTATION,
                                PresentationIntentType="FOR PRESENTATION"))
        assert header_scope_reasons(image.metadata) == ""
        assert not [w for w in image.warnings if "for processing" in w]

    def test_the_attribute_alone_is_named(self, film):
        image = read_image(film("cr_raw.dcm", PresentationIntentType="FOR PROCESSING"))
        assert ("image for processing (Presentation Intent Type (0008,0068) 'FOR PROCESSING'): raw detector data, "
                "meant to be processed before it is displayed") in " ".join(image.warnings)
        assert header_scope_reasons(image.metadata) == FOR_PROCESSING  # the attribute alone gives the reason too

    def test_the_csv_flags_it(self, raw, tmp_path):
        row = classify_one_to_csv(raw, tmp_path / "out.csv", BUNDLED_CARD)
        assert row["out_of_scope"].split(";")[0] == FOR_PROCESSING
        assert self.WARNING in row["warnings"]

    def test_the_pdf_shows_the_banner_the_legend_note_and_the_warning(self, raw):
        pypdf = pytest.importorskip("pypdf")
        from cxr_engine.models.torch_backend import Prediction
        from cxr_engine.outputs.report import ReportPage, build_report_pdf
        from cxr_engine.pixels.rendering import render

        image = read_image(raw)
        shown = np.repeat(render(image)[..., None], 3, axis=2)
        prediction = Prediction(("normal", "pneumonia", "covid"), (0.9, 0.05, 0.05), "t")
        page = ReportPage(displayed=shown, heatmap=shown, heatmap_class="normal", prediction=prediction,
                          warnings=image.warnings, metadata=image.metadata,
                          out_of_scope=out_of_scope("", prediction.probabilities, None, image.metadata))
        pdf = pypdf.PdfReader(io.BytesIO(build_report_pdf([page], model_card=None, deidentify=False)))
        text = " ".join(" ".join(p.extract_text() for p in pdf.pages).split())
        assert f"Outside what this model was trained for: {describe(FOR_PROCESSING)}." in text
        assert heatmap_note(FOR_PROCESSING) in text
        assert "image for processing (Presentation Intent Type (0008,0068) 'FOR PROCESSING'" in text

    def test_the_app_shows_the_banner(self, raw, qtbot):
        pytest.importorskip("PySide6")
        from PySide6.QtGui import QAction

        from cxr_desktop.result_model import ResultModel
        from cxr_desktop.result_panel import ResultPanel
        from cxr_desktop.viewer_model import ViewerModel

        image = read_image(raw)
        model = ResultModel()
        panel = ResultPanel(model, ViewerModel(), QAction("Heat-map"))
        qtbot.addWidget(panel)
        model.set_image(image.warnings, image.metadata)
        assert model.out_of_scope == FOR_PROCESSING
        assert panel.scope_banner.text() == banner(FOR_PROCESSING) and not panel.scope_banner.isHidden()


def test_a_tab_or_line_break_without_a_character_set_is_no_warning(dicom_dir, tmp_path):
    """A reviewer's finding: control characters counted as "not ASCII" gave every file whose Study Description
    holds a tab or a line break the warning that its letters may be wrong. They are ASCII."""
    for index, text in enumerate(("CHEST\tPA", "CHEST PA\r\nPORTABLE", "CHEST\x00")):
        ds = pydicom.dcmread(dicom_dir / "CR-MONO1-10-chest.dcm", force=True)
        if "SpecificCharacterSet" in ds:
            del ds.SpecificCharacterSet
        ds.StudyDescription = text
        ds.save_as(tmp_path / f"ctrl{index}.dcm")
        assert not [w for w in read_image(tmp_path / f"ctrl{index}.dcm").warnings if "not ASCII" in w], repr(text)
