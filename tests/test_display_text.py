"""Finding 7: control characters in a header value (a crafted Patient's Name holding an escape
sequence and CR/LF) never reach a display, a PDF or a DICOM output as such: each shows as U+FFFD
and the value stays on one line. One crafted copy of a real film is read by every path."""
from __future__ import annotations

import re
from pathlib import Path

import pydicom
import pytest

from cxr_engine.display_text import (REPLACEMENT, format_age, format_date, format_percent, format_person_name,
                                     format_time, printable)
from cxr_engine.reading.read import read_image

FILM = "CR-MONO1-10-chest.dcm"
EVIL_NAME = "Evil\x1b[31m^Name\r\nInjected: yes"
CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e]")


@pytest.fixture(scope="module")
def crafted(tmp_path_factory, dicom_dir) -> Path:
    ds = pydicom.dcmread(dicom_dir / FILM, force=True)
    ds.SpecificCharacterSet = "ISO_IR 100"
    ds.PatientName = EVIL_NAME
    ds.StudyDescription = "CHEST\u202eKO"  # a right-to-left override
    folder = tmp_path_factory.mktemp("crafted")
    ds.save_as(folder / "evil.dcm", enforce_file_format=True)
    return folder / "evil.dcm"


class TestPrintable:
    def test_control_characters_become_replacement_characters(self):
        assert printable("a\x1bb\rc\nd\te\x00f\x85g\u2028h\u202ei") == "a\ufffdb\ufffdc\ufffdd\ufffde\ufffdf\ufffdg\ufffdh\ufffdi"

    def test_ordinary_names_are_untouched(self):
        for name in ("DOE^JANE^Q", "M\u00fcller^J\u00f6rg", "\u5c71\u7530^\u592a\u90ce", "\u0645\u06cc\u200c\u0631"):
            assert printable(name) == name

    def test_person_name(self):
        assert format_person_name("DOE^JANE^Q") == "DOE, JANE Q"
        assert format_person_name("DOE^JANE^^DR") == "DOE, JANE DR"
        assert format_person_name("Jane Doe") == "Jane Doe"
        assert format_person_name("") == ""
        shown = format_person_name(EVIL_NAME)
        assert shown == "Evil\ufffd[31m, Name\ufffd\ufffdInjected: yes"
        assert not CONTROL.search(shown)

    def test_date_is_iso_8601_in_every_locale(self):
        assert format_date("19620314") == "1962-03-14"
        assert format_date(" 20240131 ") == "2024-01-31"
        assert format_date("1962.03.14") == "1962-03-14"  # ACR-NEMA's form, still read (PS3.5 6.2)
        hash_56 = "d14a028c2a3a2bc9476102bb288234c415a2b01f828ea62ac5b3e42f"  # 966_fixed.dcm's birth date
        for broken in ("1962", "196203", "2024-01-31", "20231345", "19620230", hash_56, "1962\x1b0314",
                       "\u0661\u0669\u0666\u0662\u0660\u0663\u0661\u0664"):
            assert format_date(broken) == "invalid date"  # not a DA value: never its text
        assert format_date(None) == "" and format_date("  ") == ""

    def test_time_and_age(self):
        assert format_time("143015.25") == "14:30" and format_time("0905") == "09:05" and format_time("9") == "9"
        assert format_age("062Y") == "62 years" and format_age("003W") == "3 weeks" and format_age("62") == "62 years"
        assert format_age("") == "" and format_age("old") == "invalid age" and format_age("abc") == "invalid age"

    def test_percent_has_a_space_before_the_sign(self):
        assert format_percent(0.7134) == "71.3 %" and format_percent(0.91, 0) == "91 %"
        assert format_percent(1.0) == "100.0 %" and format_percent(0.0004, 2) == "0.04 %"


#: Real films with a caret-separated name, a birth date, study date and time, or only an age.
SAME_ON_EVERY_FACE = ("JPEG2KLossless_1s_1f_u_16_16.dcm", "RG1_J2KI.dcm", "CR-MONO1-10-chest.dcm",
                      "1.2.276.0.7230010.3.1.4.8323329.6904.1517875201.850819.dcm")


@pytest.mark.parametrize("film", SAME_ON_EVERY_FACE)
def test_the_viewer_and_the_pdf_show_a_name_dates_and_age_alike(film, dicom_dir):
    """The viewer's corner text and the PDF's identification block write each header value the same way."""
    formatting = pytest.importorskip("cxr_desktop.formatting")
    from cxr_engine.outputs.deidentify import report_identifiers
    from cxr_engine.pixels.windowing import Window

    meta = read_image(dicom_dir / film).metadata
    corners = formatting.corner_text(meta, (440, 440), Window(1000.0, 2000.0), 1.0, 0, False, False, False)
    screen = "\n".join((*corners.top_left, *corners.top_right))
    pdf = dict(report_identifiers(meta, deidentify=False))
    compared = [(pdf.get("Patient"), meta.patient_name), (pdf.get("Birth date"), meta.patient_birth_date),
                (pdf.get("Age"), meta.patient_age), (pdf.get("Study date"), meta.study_date)]
    assert any(shown for shown, _ in compared), "the film has nothing to compare"
    for shown, stored in compared:
        if stored.strip():
            assert shown and shown in screen, (shown, screen)
    if "^" in meta.patient_name:
        family = meta.patient_name.split("^")[0]
        assert pdf["Patient"].startswith(f"{family}, ") and corners.top_left[0] == pdf["Patient"]
    if meta.patient_birth_date:
        assert f"Born {format_date(meta.patient_birth_date)}" in corners.top_left
        assert pdf["Birth date"][4] == "-" == pdf["Birth date"][7]


def test_image_metadata_is_printable(crafted):
    meta = read_image(crafted).metadata
    assert meta.patient_name == EVIL_NAME.replace("\x1b", REPLACEMENT).replace("\r", REPLACEMENT).replace("\n", REPLACEMENT)
    assert not CONTROL.search(meta.study_description)


def test_study_tree_record_is_printable(crafted):
    from cxr_engine.reading.scanning import scan

    result = scan(crafted.parent)
    names = [patient.name for patient in result.patients]
    assert names and all(not CONTROL.search(name) for name in names), names


def test_viewer_corner_text_has_no_injected_line(crafted):
    formatting = pytest.importorskip("cxr_desktop.formatting")
    from cxr_engine.pixels.windowing import Window

    image = read_image(crafted)
    corners = formatting.corner_text(image.metadata, (440, 440), Window(1000.0, 2000.0), 1.0, 0, False, False, False)
    for line in (*corners.top_left, *corners.top_right, *corners.bottom_left, *corners.bottom_right):
        assert not CONTROL.search(line), repr(line)
    assert corners.top_left[0] == "Evil\ufffd[31m, Name\ufffd\ufffdInjected: yes"


def test_pdf_patient_block_stays_on_one_line(crafted, tmp_path):
    pypdf = pytest.importorskip("pypdf")
    import numpy as np

    from cxr_engine.outputs.deidentify import report_identifiers
    from cxr_engine.models.model_card import CLASSES
    from cxr_engine.models.classifier import Prediction
    from cxr_engine.pixels.rendering import render
    from cxr_engine.outputs.report import ReportPage, write_report

    image = read_image(crafted)
    rows = dict(report_identifiers(image.metadata, deidentify=False))
    assert not CONTROL.search(rows["Patient"]) and not CONTROL.search(rows["Study"])
    grey = render(image)
    page = ReportPage.for_image(image, np.repeat(grey[..., None], 3, axis=2),
                                prediction=Prediction(tuple(CLASSES), (0.2, 0.3, 0.5), "test-model"))
    path = tmp_path / "evil.pdf"
    write_report(path, [page], model_card=None, deidentify=False, app_version="0.1.0")
    text = pypdf.PdfReader(path).pages[0].extract_text()
    lines = text.splitlines()
    assert not any(line.strip().startswith("Injected: yes") for line in lines), text
    assert any("Evil" in line and "Injected: yes" in line for line in lines), text


def test_dicom_outputs_carry_no_control_characters(crafted, tmp_path):
    pytest.importorskip("highdicom")
    from cxr_engine.outputs.dicom_outputs.source import read_source_header, reference_dataset

    reference = reference_dataset(read_source_header(crafted))
    assert str(reference.PatientName) == "Evil\ufffd[31m^Name\ufffd\ufffdInjected: yes"
    assert not CONTROL.search(str(reference.StudyDescription))
    assert crafted.read_bytes().count(b"\x1b[31m") == 1  # the source is never changed
