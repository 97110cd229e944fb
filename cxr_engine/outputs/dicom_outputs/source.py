"""The source film's header as the DICOM outputs see it: the patient and study they belong to and
the image they reference, identified or de-identified (PS3.15 Annex E).

Only the attributes listed here ever reach an output, so a de-identified output cannot carry an
identifier that slipped through a copy of the whole header.
"""
from __future__ import annotations

import hashlib
import logging
import re
import secrets
from dataclasses import dataclass, field
from pathlib import Path

from pydicom import dcmread
from pydicom.dataset import Dataset
from pydicom.uid import generate_uid

from ...errors import SourceHeaderError

logger = logging.getLogger(__name__)

#: Patient, study and source-image attributes an identified output copies from the source.
COPIED_KEYWORDS: tuple[str, ...] = (
    "PatientName", "PatientID", "IssuerOfPatientID", "PatientBirthDate",
    "PatientSex", "PatientAge", "StudyInstanceUID", "StudyDate", "StudyTime", "AccessionNumber",
    "StudyID", "ReferringPhysicianName", "StudyDescription", "SeriesInstanceUID", "SOPClassUID",
    "SOPInstanceUID", "Modality", "BodyPartExamined", "PatientOrientation", "Manufacturer", "InstitutionName",
)

#: What a de-identified output keeps of those (PS3.15 Table E.1-1 lists none of them).
RETAINED_KEYWORDS: tuple[str, ...] = ("SOPClassUID", "Modality", "BodyPartExamined",
                                      "PatientOrientation")
#: Kept only with the Retain Patient Characteristics Option.
PATIENT_CHARACTERISTICS: tuple[str, ...] = ("PatientSex", "PatientAge")
#: Replaced by new UIDs, the same new UID for the same old one within a session (action U).
REPLACED_UIDS: tuple[str, ...] = ("StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID")
#: Given a zero-length value (action Z; the patient's name and ID get a pseudonym instead, see below).
EMPTIED_KEYWORDS: tuple[str, ...] = ("PatientBirthDate", "StudyDate", "StudyTime", "AccessionNumber",
                                      "StudyID", "ReferringPhysicianName")

#: Specific Character Set (0008,0005) of an output holding non-ASCII text: UTF-8 (PS3.3 C.12.1.1.2,
#: PS3.5 6.1.2.3), which holds both the source's values (decoded by pydicom from the source's own
#: character set) and the app's text ("turned 180°", dashes); copying a source's character set, or
#: its absence (ASCII), would leave such text unencodable. An all-ASCII output drops it
#: (``settle_character_set``): the default repertoire, read by every viewer.
OUTPUT_CHARACTER_SET = "ISO_IR 192"
_TEXT_VRS = frozenset({"AE", "AS", "CS", "DA", "DS", "DT", "IS", "LO", "LT", "PN", "SH", "ST", "TM", "UC", "UI",
                       "UR", "UT"})

#: (0012,0064) De-identification Method Code Sequence values (PS3.16 CID 7050).
BASIC_PROFILE = ("113100", "DCM", "Basic Application Confidentiality Profile")
RETAIN_PATIENT_CHARACTERISTICS = ("113108", "DCM", "Retain Patient Characteristics Option")


def read_source_header(path: str | Path) -> Dataset:
    """The header of the DICOM file at ``path`` (pixel data not read).

    Raises ``SourceHeaderError`` when it is not a DICOM file or lacks Study Instance UID,
    SOP Class UID or SOP Instance UID (the outputs could not join its study or reference it).
    """
    path = Path(path)
    try:
        ds = dcmread(path, stop_before_pixels=True, force=True)  # old files without the DICM preamble
    except Exception as exc:  # pydicom raises several types for a non-DICOM or damaged file
        raise SourceHeaderError(path, f"not a readable DICOM file ({type(exc).__name__}: {exc})") from exc
    missing = [k for k in ("StudyInstanceUID", "SOPClassUID", "SOPInstanceUID") if not str(ds.get(k, "")).strip()]
    if missing:
        raise SourceHeaderError(path, f"no {', '.join(missing)}: the outputs could not join the film's study")
    return ds


def referenced_frame(header: Dataset) -> int | None:
    """The number (1 for the first) of the frame the outputs show and reference of the film ``header`` describes
    when it has more than one (Number of Frames (0028,0008)): its Representative Frame Number, else the first, as the
    reader shows it (``dicom_io.representative_frame``); None for a single-frame film, whose references name no
    frame (Referenced Frame Number is required only when a reference is not to every frame: PS3.3 Table 10-3)."""
    from ...reading.dicom_io import representative_frame

    try:
        frames = int(str(header.get("NumberOfFrames", 1) or 1).strip())
    except ValueError:
        return None
    return representative_frame(header, frames)[0] + 1 if frames > 1 else None


@dataclass
class Deidentifier:
    """PS3.15 Annex E Basic Application Level Confidentiality Profile for the outputs' references.

    One instance per session: the same source UID always maps to the same new UID (so a study's
    outputs stay together), and the same Patient ID to the same pseudonym, while two patients
    never share one. The salt is random per instance, so pseudonyms cannot be traced back.
    """

    retain_patient_characteristics: bool = False
    _salt: str = field(default_factory=lambda: secrets.token_hex(16), repr=False)

    def uid(self, original: str) -> str:
        return generate_uid(entropy_srcs=[self._salt, original.strip()])

    def pseudonym(self, patient_id: str, patient_name: str, birth_date: str) -> str:
        """"ANON-" and ten hex digits, from the patient's ID, name and birth date (so two patients
        without an ID still get two pseudonyms)."""
        key = "\x1f".join((self._salt, patient_id.strip(), patient_name.strip(), birth_date.strip()))
        return "ANON-" + hashlib.sha256(key.encode("utf-8")).hexdigest()[:10].upper()

    def apply(self, source: Dataset) -> Dataset:
        """A new reference dataset holding only what the profile lets through."""
        out = Dataset()
        kept = RETAINED_KEYWORDS + (PATIENT_CHARACTERISTICS if self.retain_patient_characteristics else ())
        for keyword in kept:
            if keyword in source:
                setattr(out, keyword, source[keyword].value)
        for keyword in REPLACED_UIDS:
            if str(source.get(keyword, "")).strip():
                setattr(out, keyword, self.uid(str(source.get(keyword))))
        for keyword in EMPTIED_KEYWORDS:
            setattr(out, keyword, "")
        pseudonym = self.pseudonym(str(source.get("PatientID", "")), str(source.get("PatientName", "")),
                                   str(source.get("PatientBirthDate", "")))
        out.PatientID = pseudonym
        out.PatientName = pseudonym
        if not self.retain_patient_characteristics:
            out.PatientSex = ""
        out.PatientIdentityRemoved = "YES"
        # What was done, then what was not (PS3.3 C.7.1.1: the method may be multi-valued): the pixels are not
        # cleaned (Annex E's Clean Pixel Data Option), so text burned into the film stays.
        out.DeidentificationMethod = ["PS3.15 Annex E Basic Application Level Confidentiality Profile" + (
            ", Retain Patient Characteristics Option" if self.retain_patient_characteristics else ""),
            pixel_text_method(str(source.get("BurnedInAnnotation", "") or ""))]
        out.DeidentificationMethodCodeSequence = [_code_item(*code) for code in self.method_codes()]
        return out

    def method_codes(self) -> list[tuple[str, str, str]]:
        return [BASIC_PROFILE] + ([RETAIN_PATIENT_CHARACTERISTICS] if self.retain_patient_characteristics else [])


#: The De-identification Method value (LO, 64 characters) saying the pixels are not cleaned.
PIXEL_TEXT_METHOD = "Burned-in text, if any, not removed"
PIXEL_TEXT_METHOD_SAID = "Burned-in text not removed; source Burned In Annotation YES"


def pixel_text_method(burned_in_annotation: str) -> str:
    """``deidentify.pixel_text_note`` as a De-identification Method (0012,0063) value."""
    return PIXEL_TEXT_METHOD_SAID if burned_in_annotation.strip().upper() == "YES" else PIXEL_TEXT_METHOD


def withdraw_identity_removed(dataset: Dataset) -> Dataset:
    """A de-identified object that shows the source's pixels when the source says they hold burned-in text
    (Burned In Annotation YES): Patient Identity Removed (0012,0062) means removed "from the Attributes and the
    Pixel Data" (PS3.3 C.7.1.1), which is not done, so it becomes NO and the method attributes, required only
    with YES (Type 1C), go. Returns ``dataset``."""
    # Elements are removed, never changed in place: a library may share an element with the reference dataset
    # (and so with the session's other objects).
    for keyword in ("PatientIdentityRemoved", "DeidentificationMethod", "DeidentificationMethodCodeSequence"):
        if keyword in dataset:
            delattr(dataset, keyword)
    dataset.PatientIdentityRemoved = "NO"
    return dataset


def reference_dataset(source: Dataset, deidentifier: Deidentifier | None = None) -> Dataset:
    """The attributes the outputs take from ``source``: ``COPIED_KEYWORDS`` as they are, or with
    ``deidentifier`` only what Annex E lets through. Type 2 attributes the outputs need are
    present (empty when the source lacks them). Specific Character Set is ``OUTPUT_CHARACTER_SET``
    whatever the source's."""
    if deidentifier is not None:
        out = deidentifier.apply(source)
    else:
        out = Dataset()
        for keyword in COPIED_KEYWORDS:
            if keyword in source:
                setattr(out, keyword, source[keyword].value)
    for keyword in ("PatientID", "PatientName", "PatientBirthDate", "PatientSex", "StudyDate", "StudyTime",
                    "AccessionNumber", "StudyID", "ReferringPhysicianName"):
        if keyword not in out or out[keyword].value is None:
            setattr(out, keyword, "")
    out.SpecificCharacterSet = OUTPUT_CHARACTER_SET
    _replace_control_characters(out)
    _drop_invalid_dates(out)
    _drop_invalid_age(out)
    return out


def _replace_control_characters(ds: Dataset) -> None:
    """Control characters in a copied text value (a Patient's Name holding ESC, CR, LF) become U+FFFD
    (``display_text.printable``), so no output carries them into a PACS's display."""
    from ...display_text import printable

    for elem in ds:
        if elem.VR not in _TEXT_VRS or elem.VM != 1 or elem.value is None:
            continue
        text = str(elem.value)
        if printable(text) != text:
            elem.value = printable(text)


def settle_character_set(ds: Dataset) -> Dataset:
    """Give ``ds`` (an output about to be written) Specific Character Set ``OUTPUT_CHARACTER_SET``
    when any text value, nested sequences included, is non-ASCII, and none otherwise; returns ``ds``."""
    def non_ascii(value) -> bool:
        values = value if isinstance(value, (list, tuple)) or type(value).__name__ == "MultiValue" else [value]
        return any(not str(v).isascii() for v in values if v is not None)

    needed = any(elem.VR in _TEXT_VRS and elem.value is not None and non_ascii(elem.value) for elem in ds.iterall())
    if needed:
        ds.SpecificCharacterSet = OUTPUT_CHARACTER_SET
    elif "SpecificCharacterSet" in ds:
        del ds.SpecificCharacterSet
    return ds


#: Age String (PS3.5 Table 6.2-1): three digits and D, W, M or Y.
_AGE_STRING = re.compile(r"\d{3}[DWMY]")


def _drop_invalid_age(ds: Dataset) -> None:
    """Remove a Patient's Age the source stores in a form AS does not allow (the RSNA films hold ``51``: years
    are likely but not stated, so it is not guessed into ``051Y``). It is Type 3 in the Patient Study module
    (PS3.3 C.7.2.2), so leaving it out is valid where the malformed value makes a checker (``dcmpschk``) fail."""
    value = str(ds.get("PatientAge", "") or "").strip()
    if value and not _AGE_STRING.fullmatch(value):
        logger.info("PatientAge is not a valid Age String: left out of the DICOM outputs")
        del ds.PatientAge


def _drop_invalid_dates(ds: Dataset) -> None:
    """Empty a date or time the source stores in a form its VR does not allow (a real file holds a
    hash as Patient's Birth Date): the outputs' libraries refuse it, and these are Type 2."""
    from pydicom.valuerep import DA, TM

    for keyword, vr in (("PatientBirthDate", DA), ("StudyDate", DA), ("StudyTime", TM)):
        value = str(ds.get(keyword, "") or "").strip()
        if not value:
            continue
        try:
            vr(value)
        except ValueError:
            # The value is the patient's: it is never logged.
            logger.info("%s is not a valid %s: left empty in the DICOM outputs", keyword, vr.__name__)
            setattr(ds, keyword, "")


def _code_item(value: str, scheme: str, meaning: str) -> Dataset:
    item = Dataset()
    item.CodeValue, item.CodingSchemeDesignator, item.CodeMeaning = value, scheme, meaning
    return item
