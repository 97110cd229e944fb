"""The PDF prints every character some font here has, and says where it could not (a DICOM expert's finding: a
Chinese name, ISO_IR 192 ``王^小明``, printed as empty boxes in DejaVu Sans, with nothing to say so). The film is
a copy of the real CR-MONO1-10-chest.dcm with that name; the text is read back with pdftotext."""
from __future__ import annotations

import logging
import shutil
import subprocess
from pathlib import Path

import pydicom
import pytest

pytest.importorskip("reportlab")
from reportlab.pdfbase import pdfmetrics  # noqa: E402

from cxr_engine.outputs import report  # noqa: E402
from cxr_engine.outputs.report import NO_GLYPH, ReportPage, write_report  # noqa: E402
from cxr_engine.pixels.rendering import render  # noqa: E402
from cxr_engine.reading.read import read_image  # noqa: E402

NAME = "王^小明"
#: 𠮷 (U+20BB7, CJK Extension B), the first letter of a Japanese family name: not in Droid Sans Fallback.
RARE = "\U00020bb7"


def _available(files) -> tuple[str, ...]:
    return tuple(file for file in files if Path(file).is_file())


@pytest.fixture()
def chinese_film(tmp_path, dicom_dir):
    ds = pydicom.dcmread(dicom_dir / "CR-MONO1-10-chest.dcm", force=True)
    ds.SpecificCharacterSet = "ISO_IR 192"
    ds.PatientName = NAME
    ds.SOPInstanceUID = pydicom.uid.generate_uid()
    path = tmp_path / "chinese.dcm"
    ds.save_as(path)
    return read_image(path)


@pytest.fixture(autouse=True)
def unicode_report_font():
    if not report._fonts(report.FONT_CANDIDATES).unicode:
        pytest.skip(f"none of the report's TrueType fonts is installed here: {report.FONT_CANDIDATES}")


def write(tmp_path, image, **page) -> Path:
    return write_report(tmp_path / "report.pdf", [ReportPage.for_image(image, render(image), **page)],
                        model_card=None, deidentify=False)


def pdf_text(path: Path) -> str:
    """The PDF's first page as pdftotext reads it, whitespace collapsed."""
    if shutil.which("pdftotext") is None:
        pytest.skip("pdftotext (poppler-utils) is not installed")
    out = subprocess.run(["pdftotext", "-f", "1", "-l", "1", str(path), "-"], capture_output=True, text=True,
                         check=True).stdout
    return " ".join(out.split())


def page_fonts(path: Path) -> list[str]:
    """The base font names of the PDF's first page (subset prefix dropped: ``DejaVuSans``)."""
    pypdf = pytest.importorskip("pypdf")
    fonts = pypdf.PdfReader(path).pages[0]["/Resources"]["/Font"].values()
    return [str(font.get_object()["/BaseFont"]).lstrip("/").split("+")[-1] for font in fonts]


def test_a_chinese_name_prints_in_the_fallback_font(tmp_path, chinese_film, caplog):
    fallbacks = _available(report.FALLBACK_FONT_CANDIDATES)
    if not fallbacks:
        pytest.skip("no fallback font with Chinese letters installed (apt-get install fonts-wqy-microhei)")
    fonts = report._fonts(report.FONT_CANDIDATES, report.FALLBACK_FONT_CANDIDATES)
    assert fonts.missing("王小明") == []
    assert all(ord(char) not in report._glyphs(fonts.regular) for char in "王小明")  # not the report font's
    with caplog.at_level(logging.WARNING, logger=report.__name__):
        path = write(tmp_path, chinese_film)
    text = pdf_text(path)
    assert "王, 小明" in text
    fallback = pdfmetrics.getFont(report._fallback_fonts(fonts.fallback_files)[0]).face.name.decode()
    assert fallback in page_fonts(path)  # embedded, and so printed in it
    assert NO_GLYPH not in text and "no font on this computer" not in text
    assert not [r for r in caplog.records if "no glyph" in r.getMessage()]


def test_a_character_no_font_has_is_a_box_and_said_so(tmp_path, chinese_film, monkeypatch, caplog):
    droid = "/usr/share/fonts/truetype/droid/DroidSansFallbackFull.ttf"
    if not Path(droid).is_file():
        pytest.skip(f"{droid} is not installed (apt-get install fonts-droid-fallback)")
    monkeypatch.setattr(report, "FALLBACK_FONT_CANDIDATES", (droid,))
    assert report._fonts(report.FONT_CANDIDATES, (droid,)).missing(f"{RARE}野") == [RARE]
    with caplog.at_level(logging.WARNING, logger=report.__name__):
        text = pdf_text(write(tmp_path, chinese_film, comment=f"{RARE}野 clear lungs"))
    assert "王, 小明" in text  # the name still prints
    assert f"{NO_GLYPH}野 clear lungs" in text
    assert ("Reader's comment shown with □: no font on this computer has this character (U+20BB7). Install a font "
            "that has it") in text
    [record] = [r for r in caplog.records if "no glyph" in r.getMessage()]
    assert record.getMessage() == ("report: 1 character(s) in Reader's comment have no glyph in any font here: "
                                   "printed as □")


def test_without_a_fallback_font_the_name_is_boxes_and_said_so(tmp_path, chinese_film, monkeypatch, caplog):
    monkeypatch.setattr(report, "FALLBACK_FONT_CANDIDATES", ())  # DejaVu Sans (or Arial) only
    with caplog.at_level(logging.WARNING, logger=report.__name__):
        path = write(tmp_path, chinese_film)
    text = pdf_text(path)
    assert not [font for font in page_fonts(path) if "Fallback" in font]
    assert f"{NO_GLYPH}, {NO_GLYPH}{NO_GLYPH}" in text
    assert ("Patient shown with □: no font on this computer has these characters (U+738B, U+5C0F, U+660E). Install "
            "a font that has them (for Chinese, Japanese and Korean: fonts-wqy-microhei") in text
    messages = [r.getMessage() for r in caplog.records if "no glyph" in r.getMessage()]
    assert messages == ["report: 3 character(s) in Patient have no glyph in any font here: printed as □"]
    assert not any(char in message for message in messages for char in "王小明")  # never the name in the log


def test_a_korean_name_prints_in_a_fallback_font_with_hangul(tmp_path, dicom_dir, caplog):
    """Droid Sans Fallback has 3 of the 11,172 Hangul syllables (a tester's =홍^길동 printed as boxes with the advice
    to install the font that was installed): a Hangul syllable goes to the first fallback font that has it."""
    wqy = "/usr/share/fonts/truetype/wqy/wqy-microhei.ttc"
    if not Path(wqy).is_file():
        pytest.skip(f"{wqy} is not installed (apt-get install fonts-wqy-microhei)")
    ds = pydicom.dcmread(dicom_dir / "CR-MONO1-10-chest.dcm", force=True)
    ds.SpecificCharacterSet = "ISO_IR 192"
    ds.PatientName = "=홍^길동"
    ds.SOPInstanceUID = pydicom.uid.generate_uid()
    ds.save_as(tmp_path / "korean.dcm")
    with caplog.at_level(logging.WARNING, logger=report.__name__):
        path = write(tmp_path, read_image(tmp_path / "korean.dcm"))
    text = pdf_text(path)
    assert "홍, 길동" in text
    assert NO_GLYPH not in text and "no font on this computer" not in text
    assert not [r for r in caplog.records if "no glyph" in r.getMessage()]
