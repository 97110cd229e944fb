"""De-identified free text (``outputs.deidentify.redact_free_text``) finds a patient's name as each script writes it;
a tester found it left in:

- Arabic and Hebrew names with a one-letter proclitic joined to them: لمحمد, ومحمد ("to / and Muhammad"), לדוד ("to
  David"), ולכהן ("and to Cohen"), the same gap as the CJK particles glued to a name;
- ``O’Brien`` typed with a curly apostrophe (U+2019) for the Patient's Name ``O'Brien`` (and the reverse);
- a one-character CJK family name given alone (``=李^``): it goes before an honorific (李先生), and only there, since
  the character alone is a common word (李子 "plum", 行李 "luggage").

Ordinary words that merely end with the name stay (كامل "complete" for the name امل, כלי "vessel" for the name לי).
The names are read from copies of the real ``CR-MONO1-10-chest.dcm`` (skipped with a reason when ``../shared`` is
absent) with Patient's Name set in UTF-8.
"""
from __future__ import annotations

import pydicom
import pytest

from cxr_engine.outputs.deidentify import REDACTED, redact_free_text, redact_generated_text
from cxr_engine.pixels.image import ImageMetadata
from cxr_engine.reading.read import read_image

SOURCE = "CR-MONO1-10-chest.dcm"


@pytest.fixture
def patient(tmp_path, dicom_dir):
    """``patient(name)``: the metadata the reader reads from a copy of the real film whose Patient's Name is
    ``name`` (ISO_IR 192, UTF-8)."""
    def _patient(name: str) -> ImageMetadata:
        ds = pydicom.dcmread(dicom_dir / SOURCE, force=True)
        ds.SpecificCharacterSet = "ISO_IR 192"
        ds.PatientName = name
        ds.SOPInstanceUID = pydicom.uid.generate_uid()
        path = tmp_path / "film.dcm"
        ds.save_as(path)
        metadata = read_image(path).metadata
        assert metadata.patient_name == name
        return metadata
    return _patient


class TestArabic:
    NAME = "محمد^علي"

    @pytest.mark.parametrize("comment, redacted", [
        ("مقارنة مع صورة سابقة لمحمد", f"مقارنة مع صورة سابقة ل{REDACTED}"),  # to Muhammad
        ("ومحمد علي", f"و{REDACTED} {REDACTED}"),  # and Muhammad Ali
        ("فمحمد وبمحمد ولعلي", f"ف{REDACTED} وب{REDACTED} ول{REDACTED}"),  # so, and with, and to
        ("محمد", REDACTED),
    ])
    def test_a_name_after_a_proclitic_goes(self, patient, comment, redacted):
        assert redact_free_text(comment, patient(self.NAME)) == redacted

    def test_the_testers_comment_keeps_no_name(self, patient):
        text = redact_free_text("تمت مقارنة الصورة مع صورة سابقة لمحمد ومحمد علي", patient(self.NAME))
        assert "محمد" not in text and "علي" not in text
        assert text.startswith("تمت مقارنة الصورة مع صورة سابقة")

    @pytest.mark.parametrize("name, comment", [
        ("امل^سعيد", "التئام كامل للكسر"),  # ك + امل (Amal) is كامل "complete": ك is not taken as a proclitic
        ("صدر^علي", "لا توجد آفة في الصدر"),  # ال + صدر (Sadr) is الصدر "the chest": nor is the article
        ("محمد^علي", "المحمدية محمدي"),  # the name inside a longer word
    ])
    def test_ordinary_words_stay(self, patient, name, comment):
        assert redact_free_text(comment, patient(name)) == comment


class TestHebrew:
    NAME = "כהן^דוד"

    @pytest.mark.parametrize("comment, redacted", [
        ("נשלח לדוד כהן ולכהן", f"נשלח ל{REDACTED} {REDACTED} ול{REDACTED}"),  # to David Cohen and to Cohen
        ("שלדוד ומדוד, כשדוד", f"של{REDACTED} ומ{REDACTED}, כש{REDACTED}"),  # that-to, and from, when
        ("דוד", REDACTED),
    ])
    def test_a_name_after_stacked_proclitics_goes(self, patient, comment, redacted):
        assert redact_free_text(comment, patient(self.NAME)) == redacted

    @pytest.mark.parametrize("name, comment", [
        ("לי^כהן", "כלי דם תקינים, התיק שלי"),  # a two-letter name takes no proclitic: כ + לי is כלי "vessel"
        ("כהן^דוד", "דודים כהנים"),  # the name inside a longer word
    ])
    def test_ordinary_words_stay(self, patient, name, comment):
        assert redact_free_text(comment, patient(name)) == comment


class TestApostrophes:
    @pytest.mark.parametrize("name", ["O'Brien^Sean", "O’Brien^Sean"])
    @pytest.mark.parametrize("written", ["O'Brien", "O’Brien", "O‘Brien", "OʼBrien", "O`Brien", "O´Brien"])
    def test_any_apostrophe_matches_any_other(self, patient, name, written):
        assert redact_free_text(f"Seen by Dr. X for {written}, compared.", patient(name)) == (
            f"Seen by Dr. X for {REDACTED}, compared.")

    def test_the_full_name_in_generated_text_too(self, patient):
        metadata = patient("O'Brien^Sean")
        assert redact_generated_text("film of Sean O’Brien", metadata) == f"film of {REDACTED}"

    def test_other_names_with_an_apostrophe_stay(self, patient):
        assert redact_free_text("O’Neill's report", patient("O'Brien^Sean")) == "O’Neill's report"


class TestOneCharacterName:
    NAME = "=李^"

    @pytest.mark.parametrize("comment, redacted", [
        ("李先生复查", f"{REDACTED}先生复查"),  # Mr Li, follow-up
        ("患者李女士，胸片", f"患者{REDACTED}女士，胸片"),
        ("李 先生", f"{REDACTED} 先生"),
        ("李さん", f"{REDACTED}さん"),
    ])
    def test_it_goes_before_an_honorific(self, patient, comment, redacted):
        assert redact_free_text(comment, patient(self.NAME)) == redacted

    def test_alone_it_is_a_common_word_and_stays(self, patient):
        comment = "李子大小的结节，行李"  # a plum-sized nodule, luggage
        assert redact_free_text(comment, patient(self.NAME)) == comment

    def test_with_a_given_name_the_full_name_goes(self, patient):
        assert redact_free_text("李明的胸片", patient("=李^明")) == f"{REDACTED}的胸片"
