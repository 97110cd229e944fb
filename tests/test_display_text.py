"""Finding 7: control characters in a header value (a crafted Patient's Name holding an escape
sequence and CR/LF) never reach a display, a PDF or a DICOM output as such: each shows as U+FFFD
and the value stays on one line. One crafted copy of a real film is read by every path."""
from __future__ import annotations

import re
from pathlib import Path

import pydicom
import pytest

from cxr_engine.display_text import REPLACEMENT, format_person_name, printable
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
