"""What a report may show about the patient and study, per DICOM PS3.15 Annex E.

The report's identification block and the reader's free text are the two places where a
patient's identity could leak into an exported PDF. This module decides both, so the rule
lives in one place:

* ``report_identifiers`` gives the rows of the identification block. De-identified, it
  applies the Basic Application Level Confidentiality Profile (PS3.15 Table E.1-1) to every
  attribute of ``ImageMetadata``: attributes the profile removes (X), empties (Z) or replaces
  by new UIDs (U) are left out; only attributes the profile does not list are shown.
* ``redact_text`` removes the patient's name parts, IDs and birth date from free text that a
  person wrote (the reader's comment, text notes): every name component goes, wherever it stands,
  so "patient Test Lateral" loses both words even when they are ordinary words. A name is found as it is
  written in its script: glued to the particles of the scripts written without spaces (患者山田太郎の), after
  the one-letter proclitics Arabic and Hebrew join to the next word (لمحمد "to Muhammad", ולכהן "and to
  Cohen": ``_PROCLITICS``), and with any apostrophe (O'Brien, O’Brien: ``_APOSTROPHES``). A one-character name
  component alone (the family name 李 of ``=李^``) goes only before an honorific (李先生, 李さん, 이 씨:
  ``_HONORIFICS``): the character alone is a common word (王 "king", 高 "tall", 이 "this"); with a given name,
  the full name goes whole.
* ``redact_generated_text`` does the same for the app's own messages (suitability warnings), which
  are written from a fixed vocabulary ("lateral view: ...") plus values from the file: there, IDs,
  accession number and birth date go wherever they stand, the full name (two or more components,
  in any order, with or without a comma or carets) goes wherever it stands, and a single name
  component goes only inside a path or file-name token (one holding "/", "\\", "_", a dot between
  letters, or a digit), where the file's name carries it. So a patient named "Test^Lateral" keeps
  "lateral view" in the warnings, while "/data/Lateral_Test/1.dcm" and "Test Lateral" go. The same
  messages also lose, whatever the patient: a value quoted after the name or tag of an identifying
  attribute (``IDENTIFYING_FIELDS``, and every date, time and date-time attribute that Table E.1-1 lists,
  ``IDENTIFYING_DATE_TIME_TAGS``: "invalid Patient's Age (0010,1010) '...'" and "at the Content Date
  (0008,0023) '...'" keep their words, not the value), an age said in words ("an age of 64 years", the
  header check's age from the dates), the source's own UIDs and any other non-standard UID, absolute
  paths (spaces included: the ``paths`` given and their folders first, as they are spelt; then any other, up
  to an image file's extension or, for a last name of capitalised words, the end of the clause), and the
  names of the ``paths`` given (the source files: a file or folder name is often the patient's name, ID or a
  UID; a stem without a letter, "55" of "55.dcm", is no one's and stays in the text).
* ``pixel_text_note`` says what de-identification leaves: text burned into the image's pixels (the
  Clean Pixel Data Option is not applied), in one wording for the PDF, the SC and the SR.

Patient's Sex (0010,0040; Z) and Patient's Age (0010,1010; X) are removed by default, as the
basic profile requires; ``retain_patient_characteristics=True`` keeps them, which is what the
profile's *Retain Patient Characteristics Option* permits (Table E.1-1, "Rtn. Pat. Chars.").
Study date and time are dropped, not coarsened: the basic profile empties them, and a
"year only" note would need the *Retain Longitudinal Temporal Information* option.
"""
from __future__ import annotations

import functools
import re
from dataclasses import fields
from pathlib import PurePath, PureWindowsPath

from ..display_text import format_age, format_date, format_person_name, format_time, printable
from ..pixels.image import ImageMetadata
from ..reading.header_checks import AGE_FROM_DATES
from ..reading.lossy_compression import lossy_compression_text

__all__ = ["IDENTIFYING_FIELDS", "RETAINED_FIELDS", "REDACTED", "report_identifiers", "redact_text",
           "redact_generated_text", "redact_free_text", "full_name_patterns", "pixel_text_note", "deidentified_badge",
           "identifying_terms", "name_parts", "date_spellings", "IDENTIFYING_DATE_TIME_TAGS",
           "KEPT_DATE_TIME_TAGS"]

#: ``ImageMetadata`` field → (DICOM tag, Annex E basic-profile action code).
IDENTIFYING_FIELDS: dict[str, tuple[str, str]] = {
    "patient_name": ("(0010,0010)", "Z"),
    "patient_id": ("(0010,0020)", "Z"),
    "patient_birth_date": ("(0010,0030)", "Z"),
    "patient_sex": ("(0010,0040)", "Z"),
    "patient_age": ("(0010,1010)", "X"),
    "study_instance_uid": ("(0020,000D)", "U"),
    "study_date": ("(0008,0020)", "Z"),
    "study_time": ("(0008,0030)", "Z"),
    "study_description": ("(0008,1030)", "X"),
    "accession_number": ("(0008,0050)", "Z"),
    "series_instance_uid": ("(0020,000E)", "U"),
    "series_description": ("(0008,103E)", "X"),
    "sop_instance_uid": ("(0008,0018)", "U"),
    "institution_name": ("(0008,0080)", "X/Z/D"),
}

#: Fields that Table E.1-1 does not list: kept in a de-identified report.
RETAINED_FIELDS: tuple[str, ...] = (
    "series_number", "instance_number", "modality", "body_part", "view_position", "manufacturer",
    "sop_class_uid", "burned_in_annotation", "presentation_intent_type", "lossy_image_compression",
    "lossy_compression_ratio", "lossy_compression_method",
)

#: Kept only with the Retain Patient Characteristics Option.
PATIENT_CHARACTERISTICS: tuple[str, ...] = ("patient_sex", "patient_age")

REDACTED = "[removed]"

_SEX = {"M": "Male", "F": "Female", "O": "Other"}
# Name components that identify: family, given, middle (prefix and suffix, e.g. "Dr", do not).
_IDENTIFYING_NAME_COMPONENTS = 3
_MIN_PART_LENGTH = 2


def report_identifiers(
    metadata: ImageMetadata, deidentify: bool, *, retain_patient_characteristics: bool = False
) -> list[tuple[str, str]]:
    """(label, value) rows for a report's identification block, in display order.

    Rows whose value is absent are omitted; control characters show as U+FFFD
    (``display_text.printable``). With ``deidentify``, every field in
    ``IDENTIFYING_FIELDS`` is left out (sex and age stay when ``retain_patient_characteristics``).
    The film's facts that are no identifier stay: its modality and view, and "Compression" for pixels that
    have been lossy compressed (``Lossy compressed (JPEG, 10:1)``: ``reading.lossy_compression``).
    """
    hidden = _hidden_fields(deidentify, retain_patient_characteristics)
    m = {f.name: ("" if f.name in hidden else getattr(metadata, f.name)) for f in fields(metadata)}
    rows = [
        ("Patient", format_person_name(m["patient_name"])),
        ("Patient ID", m["patient_id"]),
        ("Birth date", format_date(m["patient_birth_date"])),
        ("Sex", _SEX.get(m["patient_sex"].upper(), m["patient_sex"])),
        ("Age", format_age(m["patient_age"])),
        ("Accession number", m["accession_number"]),
        ("Study date", _join(format_date(m["study_date"]), format_time(m["study_time"]))),
        ("Study", m["study_description"]),
        ("Series", _join(m["series_number"], m["series_description"], sep=" · ")),
        ("Instance", m["instance_number"]),
        ("Modality / view", _join(m["modality"], m["view_position"], m["body_part"], sep=" · ")),
        ("Institution", m["institution_name"]),
        ("Manufacturer", m["manufacturer"]),
        ("Compression", lossy_compression_text(metadata)),
        ("Study UID", m["study_instance_uid"]),
        ("Series UID", m["series_instance_uid"]),
        ("Image UID", m["sop_instance_uid"]),
    ]
    return [(label, printable(value)) for label, value in rows if value]


def redact_text(text: str, metadata: ImageMetadata) -> str:
    """``text`` with the patient's name parts, patient ID, accession number and birth date
    replaced by ``REDACTED``, case-insensitively.

    Name parts come from the DICOM PN value (``FAMILY^GIVEN^MIDDLE^PREFIX^SUFFIX``, with
    ``=``-separated alphabetic/ideographic/phonetic groups); parts shorter than two characters
    are ignored. A match must not be glued to other letters or digits, so "Al" does not eat
    "normal"; but for an end in a script written without spaces between words (``_UNSPACED``), where
    "患者山田太郎の" holds the name 山田太郎, and for Arabic and Hebrew, whose one-letter proclitics join the word
    after them (``_PROCLITICS``: لمحمد, ולכהן). A full name in such a script goes first, whole, so that a
    one-character family name (王 of 王小明) goes with it; a one-character name component alone goes only before an
    honorific (``_HONORIFICS``: 李先生). Apostrophes match whatever their form (``_APOSTROPHES``: O’Brien for
    O'Brien).
    """
    unspaced = [p for p in full_name_patterns(metadata.patient_name) if _UNSPACED.match(p[:1])]
    terms = [_literal(t) for t in sorted(identifying_terms(metadata), key=len, reverse=True)]
    return _before_honorifics(_substitute(text, unspaced + terms), metadata.patient_name)


#: Dates as people type them (2019-03-17, 17.03.2019, 17/03/2019, 03/17/2019, 20190317): a reader's free text.
_TYPED_DATE = re.compile(r"(?<![\w./-])(?:\d{4}[-./]\d{1,2}[-./]\d{1,2}|\d{1,2}[-./]\d{1,2}[-./]\d{2,4}|"
                         r"(?:19|20)\d{2}(?:0[1-9]|1[0-2])(?:0[1-9]|[12]\d|3[01]))(?![\w/-]|\.\d)")


def redact_free_text(text: str, metadata: ImageMetadata, paths=()) -> str:
    """``text`` a person typed (the reader's comment, a note on a mark), as a de-identified output may carry it:
    :func:`redact_text` (the patient's name parts, ID, accession number and birth date, wherever they stand), then
    the rules of :func:`redact_generated_text` (quoted identifying values, UIDs, paths, file names), then any date
    as people type it (``2019-03-17``, ``17.03.2019``, ``17/03/2019``, ``20190317``): the basic profile removes
    the study's and acquisition's dates, and a typed date is most often one of them (a tester's comment "seen
    17.03.2019" kept the Acquisition Date)."""
    if not text:
        return text
    text = redact_generated_text(redact_text(text, metadata), metadata, paths)
    return _TYPED_DATE.sub(REDACTED, text)


def redact_generated_text(text: str, metadata: ImageMetadata, paths=()) -> str:
    """``text``, one of the app's own messages (a suitability warning), with the patient's ID,
    accession number, birth date and full name replaced by ``REDACTED`` wherever they stand, and a
    single name component only inside a path or file-name token (see the module docstring): the
    message's own words ("lateral", "normal") stay even when the patient's name is one of them.
    Also replaced: a value quoted after an identifying attribute's name or tag (``IDENTIFYING_FIELDS`` and the
    date and time attributes of ``IDENTIFYING_DATE_TIME_TAGS``), an age in words ("an age of 64 years"), the
    source's UIDs and any other UID outside the standard's root, each of ``paths`` (the source files) and its
    folders as spelt (longest first), then any other absolute path, each of ``paths``' file names and (inside a
    path or file-name token) their stems that hold a letter. Case-insensitive.
    """
    if not text:
        return text
    text = _quoted_identifying().sub(lambda m: f"{m.group(1)}'{REDACTED}'", text)
    text = _AGE_IN_WORDS.sub(lambda m: f"{m.group(1)}{REDACTED}", text)
    text = _absolute_paths(paths).sub(REDACTED, text)
    whole = {v.strip() for v in (metadata.patient_id, metadata.accession_number, metadata.study_instance_uid,
                                 metadata.series_instance_uid, metadata.sop_instance_uid)}
    whole.update(date_spellings(metadata.patient_birth_date))
    stems = set()
    for path in paths:
        path = _pure_path(path)
        # a path, and a file's name ("ZZ_pa.dcm"), go wherever they stand; a bare folder name ("chest", "in") is also
        # a word, so it goes only inside path or file-name tokens (with the stems below)
        if len(path.parts) > 1 or path.suffix:
            whole.add(str(path))
        if path.suffix:
            whole.add(path.name)
        if re.search(r"[^\W\d_]", path.stem):  # "55" of "55.dcm" is no one's: "55 % of 118" stays
            stems.add(path.stem)
    text = _substitute(text, [re.escape(t) for t in whole if len(t) >= _MIN_PART_LENGTH])
    text = _UID.sub(lambda m: m.group(0) if m.group(0).startswith(_STANDARD_UID_ROOT) else REDACTED, text)
    text = _in_path_tokens(text, [re.escape(s) for s in stems if len(s) >= _MIN_PART_LENGTH])
    text = _substitute(text, full_name_patterns(metadata.patient_name))
    return _in_path_tokens(text, [_literal(p) for p in name_parts(metadata.patient_name)])


def _pure_path(path) -> PurePath:
    """``path`` as a pure path of its own system's spelling: a drive ("C:\\...") or a UNC share ("\\\\host\\...")
    is a Windows path wherever this runs, so that its folders are found."""
    text = str(path)
    if re.match(r"[A-Za-z]:[\\/]|\\\\", text):
        return PureWindowsPath(text)
    return PurePath(path)


#: How many folders above each of ``paths`` are removed as spelt (``/data/Jones Mary/CT 12/1.dcm`` also removes
#: ``/data/Jones Mary/CT 12``, ``/data/Jones Mary`` and ``/data``), the anchor ("/", "C:\\") never.
_PATH_FOLDERS = 4


def _known_paths(paths) -> list[str]:
    """The absolute ``paths`` and their folders (up to ``_PATH_FOLDERS`` above), longest first."""
    known = set()
    for path in paths:
        path = _pure_path(path)
        if not path.is_absolute():  # a file name alone, a relative path: removed as words, not as a path
            continue
        known.add(str(path))
        known.update(str(p) for p in list(path.parents)[:_PATH_FOLDERS] if str(p) != path.anchor)
    return sorted((k for k in known if len(k) >= _MIN_PART_LENGTH), key=len, reverse=True)


def _absolute_paths(paths=()) -> re.Pattern:
    """``_ABSOLUTE_PATH``, with the absolute ``paths`` and their folders (``_known_paths``) as starts of their own:
    each goes as spelt, spaces included, with what follows it in the same path."""
    known = _known_paths(paths)
    if not known:
        return _ABSOLUTE_PATH
    spelt = "|".join(re.escape(k) for k in known)
    return re.compile(rf"{_PATH_START_BOUNDARY}(?i:{spelt})(?:{_PATH_REST_AFTER_FOLDER}|{_PATH_END})"
                      rf"|{_ABSOLUTE_PATH.pattern}")


def _in_path_tokens(text: str, alternatives: list[str]) -> str:
    """``text`` with ``alternatives`` replaced only inside path or file-name tokens (``_PATH_LIKE``)."""
    if not alternatives:
        return text
    return re.sub(r"\S+", lambda token: _substitute(token.group(0), alternatives) if _PATH_LIKE.search(token.group(0))
                  else token.group(0), text)


#: A token that names a file or folder rather than being a word of a sentence.
_PATH_LIKE = re.compile(r"[/\\_]|\w\.\w|\d")
#: Absolute paths. A path starts with "/" (not inside a word: "nnnD/W/M/Y", "40/400", "1/2 of"), a drive ("C:\\") or a
#: UNC share ("\\\\host"); its folders may hold spaces (a separator follows each: "/data/Jones Mary/CT 12/"); its last
#: name holds spaces only when it ends with an image file's extension ("Mary Jones.dcm") or, made of capitalised
#: words or numbers, ends the clause ("/data/Jones Mary," "C:\\Users\\Mary Jones"): "/data/x and 2 more" keeps
#: "and 2 more". No name holds a clause's punctuation (,;:'"()[]).
_PATH_WORD = r"[^\s\\/,;:'\"()\[\]]+"
_PATH_SEPARATOR = r"[\\/]"
_IMAGE_EXTENSION = r"\.(?:dcm|dicom|png|jpe?g|j2k|jp2)"
_CLAUSE_END = r"(?=[.!?]?(?:\s*[,;:()\[\]'\"]|\s*$)|[.!?]\s)"
_PATH_LAST = (rf"(?:(?:{_PATH_WORD} +)*?[^\s\\/,;:'\"()\[\]]*?{_IMAGE_EXTENSION}(?![^\s,;:'\"()\[\]])"
              rf"|{_PATH_WORD}(?: +[A-Z0-9][^\s\\/,;:'\"()\[\]]*)+{_CLAUSE_END}"
              rf"|{_PATH_WORD})")
#: After a start: folders, each followed by a separator, then the last name (or nothing after a trailing separator).
_PATH_REST = rf"(?:{_PATH_WORD}(?: +{_PATH_WORD})*{_PATH_SEPARATOR})*(?:{_PATH_LAST})?"
#: After a known folder spelt out: a separator and the rest of the path.
_PATH_REST_AFTER_FOLDER = rf"{_PATH_SEPARATOR}{_PATH_REST}"
#: A known path spelt out ends there (not "/data" in "/database").
_PATH_END = r"(?![^\s,;:'\"()\[\]])"
_PATH_START_BOUNDARY = r"(?<![\w.\-/\\])"
_ABSOLUTE_PATH = re.compile(
    rf"{_PATH_START_BOUNDARY}(?:/(?=[^\s/])|[A-Za-z]:[\\/]|\\\\(?=\w)){_PATH_REST}")
#: A DICOM UID (PS3.5 9.1: digits and dots; here three or more components and ten or more characters, so a
#: version such as "3.6.7" is not one); the standard's own (transfer syntaxes, SOP classes) are no one's.
_UID = re.compile(r"(?<![\w.])(?=[0-9.]{10})[0-9]+(?:\.[0-9]+){2,}(?![\w.]*\w)")
_STANDARD_UID_ROOT = "1.2.840.10008."
#: An age said in words: "an age of 64 years" (``header_checks.AGE_FROM_DATES``, the age from the birth and study
#: dates); group 1 is what precedes the value. Patient's Age is identifying (Table E.1-1: X).
_AGE_IN_WORDS = re.compile(
    rf"({re.escape(AGE_FROM_DATES)}\s+)'?\d+(?:\.\d+)?\s*(?:years?|months?|weeks?|days?|[DWMY])\b'?", re.IGNORECASE)

#: Date, time and date-time attributes (VR DA, DT, TM, pydicom's dictionary) that Table E.1-1 of PS3.15 does not list,
#: so the basic profile keeps them (K): a value quoted after them stays. Every other one is removed, emptied or
#: replaced by the profile (Acquisition Date X/Z, Content Date Z/D, Series Time X/D, Study Time Z...; the *Retain
#: Longitudinal Temporal Information* option is what keeps them), so its quoted value goes.
KEPT_DATE_TIME_TAGS: frozenset[int] = frozenset({
    0x00080404, 0x00080416, 0x0008041F,  # Item Inventory, Expiration, Study Update DateTime
    0x00140102, 0x00140103, 0x00141020,  # Secondary Review Date / Time, Expiry Date
    0x00143076, 0x00143077,  # Date / Time of Gain Calibration
    0x00144076, 0x00144078, 0x0014407A,  # Procedure Creation / Expiration / Last Modified Date
    0x40101025, 0x40101026, 0x4010102B, 0x40101041,  # DICOS route, alarm and owner times
})


def _attribute_name(tag: str) -> str:
    """The standard name of the attribute ``(gggg,eeee)`` (pydicom's dictionary), ``""`` when unknown."""
    try:
        from pydicom.datadict import dictionary_description

        return dictionary_description(int(tag.strip("()").replace(",", ""), 16))
    except Exception:  # pydicom absent or an unknown tag: the tag alone then
        return ""


def _date_time_attributes() -> dict[str, str]:
    """``(gggg,eeee)`` → name of every date, time and date-time attribute in pydicom's dictionary that Table E.1-1
    lists (not in ``KEPT_DATE_TIME_TAGS``); empty without pydicom."""
    try:
        from pydicom.datadict import DicomDictionary
    except Exception:  # pydicom absent: the identifying fields' tags alone then
        return {}
    return {f"({tag >> 16:04X},{tag & 0xFFFF:04X})": entry[2] for tag, entry in DicomDictionary.items()
            if entry[0] in ("DA", "DT", "TM") and tag not in KEPT_DATE_TIME_TAGS}


#: ``(gggg,eeee)`` → name of each date, time and date-time attribute whose quoted value a de-identified message loses.
IDENTIFYING_DATE_TIME_TAGS: dict[str, str] = _date_time_attributes()


@functools.cache
def _quoted_identifying() -> re.Pattern:
    """(Compiled on first use, not at import: some 200 alternatives take 10-20 ms, paid only by a de-identified
    output.) A quoted value after the name and/or tag of an attribute of ``IDENTIFYING_FIELDS`` or of
    ``IDENTIFYING_DATE_TIME_TAGS`` (a header check's "invalid Patient's Age (0010,1010) 'X'", "at the Content Date
    (0008,0023) 'X'"): group 1 is what precedes the quote."""
    fields_tags = [tag for tag, _ in IDENTIFYING_FIELDS.values()]
    tags = fields_tags + list(IDENTIFYING_DATE_TIME_TAGS)
    names = [name for name in map(_attribute_name, fields_tags) if name] + list(IDENTIFYING_DATE_TIME_TAGS.values())
    tag_or_name = "|".join(re.escape(t) for t in sorted({*tags, *names}, key=len, reverse=True))
    tag = r"\([0-9A-Fa-f]{4},[0-9A-Fa-f]{4}\)"
    # the value runs to the quote that closes it, i.e. one before a space, punctuation or the end: a value may hold
    # a quote itself ("5'0Y" left "'0Y'" behind)
    return re.compile(rf"((?<![\w'])(?:{tag_or_name})(?:\s*{tag})?\s*[:=]?\s*)'[^\n]*?'(?=[\s:;,.)\]]|$)",
                      re.IGNORECASE)


#: What de-identification leaves in the pixels (PS3.15 Annex E: cleaning them is the Clean Pixel Data Option,
#: which is not applied): one wording for the PDF, the Secondary Capture and the SR.
PIXEL_TEXT_NOT_REMOVED = "Text burned into the image, if any, is not removed"
PIXEL_TEXT_SAID = ("Text burned into the image is not removed, and the source says its image has some "
                   "(Burned In Annotation YES)")


def pixel_text_note(burned_in_annotation: str = "") -> str:
    """The sentence every de-identified output carries about the pixels, by the source's Burned In Annotation
    (0028,0301): ``YES`` says the source has some; anything else (NO, absent) says "if any"."""
    return (PIXEL_TEXT_SAID if str(burned_in_annotation or "").strip().upper() == "YES"
            else PIXEL_TEXT_NOT_REMOVED) + "."


def deidentified_badge(burned_in_annotation: str = "") -> str:
    """The de-identified PDF's badge: what was de-identified (the header), and for a source with burned-in
    annotation that its image text stays."""
    if str(burned_in_annotation or "").strip().upper() == "YES":
        return "HEADER DE-IDENTIFIED - BURNED-IN TEXT KEPT"
    return "HEADER DE-IDENTIFIED"


def full_name_patterns(person_name: str) -> list[str]:
    """Regular expressions for the spellings of a DICOM PN value's full name in text: family, given
    and middle name (when two or more are present) in the orders "FAMILY GIVEN MIDDLE",
    "FAMILY, GIVEN", "GIVEN MIDDLE FAMILY", "GIVEN FAMILY", separated by spaces, commas, carets or
    underscores, or by nothing for a name in a script written without spaces (``_UNSPACED``: 山田太郎 of
    ``=山田^太郎``); one per ``=`` group (alphabetic, ideographic, phonetic). A one-component name gives none."""
    patterns = []
    for group in person_name.split("="):
        family, given, middle = ([c.strip() for c in group.split("^")] + ["", ""])[:3]
        if not (family and given):
            continue
        orders = [(family, given, middle), (family, given), (given, middle, family), (given, family)]
        for order in orders:
            words = [w for w in order if w]
            separator = r"[\s,^_]*" if all(_UNSPACED.fullmatch(w) for w in words) else r"[\s,^_]+"
            patterns.append(separator.join(_literal(w) for w in words))
    return sorted(set(patterns), key=len, reverse=True)


#: Words of the scripts written without spaces between them (Han, Hiragana, Katakana, Hangul, whose particles
#: join the name: 김철수는): a name in them is found inside a run of letters, not only as a word of its own.
_UNSPACED_LETTER = ("\u1100-\u11ff\u3040-\u30ff\u3130-\u318f\u31f0-\u31ff\u3400-\u4dbf\u4e00-\u9fff"
                    "\uac00-\ud7af\uf900-\ufaff\U00020000-\U0003134f")
_UNSPACED = re.compile(f"[{_UNSPACED_LETTER}]+")


#: The apostrophes a name is typed with (O'Brien, O’Brien, Oʼ Brien): any of them matches any other.
_APOSTROPHES = "'\u2019\u2018\u02bc\u00b4`"
_ANY_APOSTROPHE = f"[{_APOSTROPHES}]"


def _literal(term: str) -> str:
    """The pattern of ``term`` as written, except that each apostrophe matches any of ``_APOSTROPHES``."""
    return re.sub(f"[{_APOSTROPHES}]", lambda _: _ANY_APOSTROPHE, re.escape(term))


def _proclitic_sequences(conjunctions: str, relatives: tuple[str, ...], prepositions: tuple[str, ...]) -> set[str]:
    """Every sequence conjunction? relative? preposition? (at least one letter) of those given."""
    return {c + r + p for c in ("", *conjunctions) for r in ("", *relatives) for p in ("", *prepositions)} - {""}


#: The one-letter proclitics written joined to the word they precede, which may precede a name, by the script of
#: the name's first letter (its range), as the sequences allowed (a conjunction, then a preposition; Hebrew's
#: relative ש between them). Arabic: و "and", ف "so", then ب "with, at", ل "to, for" (وبمحمد, فلمحمد). Left out,
#: since proclitic and name then often spell an ordinary word: ك "like", rarely before a name (ك + امل Amal is
#: كامل "complete"), and the article ال (ال + صدر Sadr is الصدر "the chest"); a name written with the article has it
#: in the Patient's Name. Hebrew: ו "and", ש "that" (also כש "when"), then ה "the", ב "in", כ "as",
#: ל "to", מ "from" and מה "from the" (ולכהן, שלדוד). A name part shorter than ``_MIN_PROCLITIC_NAME`` letters
#: takes none: כ + לי Li is כלי "vessel" (כלי דם), ש + לי is שלי "my".
_PROCLITICS: dict[tuple[str, str], set[str]] = {
    ("\u0600", "\u06ff"): _proclitic_sequences("وف", (), ("ب", "ل")),
    ("\u0590", "\u05ff"): _proclitic_sequences("ו", ("ש", "כש"), ("ה", "ב", "כ", "ל", "מ", "מה")),
}
_MIN_PROCLITIC_NAME = 3


def _proclitic_starts(alternative: str) -> str:
    """The zero-width starts after which ``alternative`` may follow one of its script's proclitics (``_PROCLITICS``)
    that begins a word, one lookbehind per length (Python's are fixed-width); ``""`` for other scripts and for a
    leading word shorter than ``_MIN_PROCLITIC_NAME`` letters."""
    word = re.match(r"[^\W\d_]+", alternative)
    if not word or len(word.group(0)) < _MIN_PROCLITIC_NAME:
        return ""
    for (low, high), sequences in _PROCLITICS.items():
        if low <= alternative[0] <= high:
            lengths = sorted({len(sequence) for sequence in sequences})
            return "".join(rf"|(?<=(?<![^\W_])(?:{'|'.join(q for q in sorted(sequences) if len(q) == n)}))"
                           for n in lengths)
    return ""


#: Honorifics written after a family name (Chinese 先生 女士 小姐 老师 医生 太太, Japanese さん 様 氏 君 くん ちゃん 先生,
#: Korean 씨 님 선생님, with or without a space): a one-character name component before one is the patient's name.
_HONORIFICS = ("先生", "女士", "小姐", "老师", "老師", "医生", "醫生", "太太", "さん", "様", "氏", "君", "くん",
               "ちゃん", "씨", "님", "선생님")


def _before_honorifics(text: str, person_name: str) -> str:
    """``text`` with each one-character identifying name component of ``person_name`` in a script written without
    spaces (``_UNSPACED``: the family name 李 of ``=李^``) replaced by ``REDACTED`` where an honorific follows it
    (``_HONORIFICS``: 李先生), and only there: alone it is too common a word to remove everywhere."""
    characters = set()
    for group in person_name.split("="):
        characters.update(c.strip() for c in group.split("^")[:_IDENTIFYING_NAME_COMPONENTS])
    characters = sorted(c for c in characters if len(c) == 1 and _UNSPACED.match(c))
    if not text or not characters:
        return text
    honorific = "|".join(map(re.escape, _HONORIFICS))
    return re.sub(f"[{''.join(map(re.escape, characters))}](?=\\s?(?:{honorific}))", REDACTED, text)


def _bounded(alternative: str) -> str:
    """The pattern ``alternative`` not glued to other letters or digits, at each end that is not a letter of a
    script written without spaces (``_UNSPACED``), where a word has no such bound; an Arabic or Hebrew one may
    follow a proclitic joined to it (``_proclitic_starts``)."""
    before = "" if _UNSPACED.match(alternative[:1]) else rf"(?:(?<![^\W_]){_proclitic_starts(alternative)})"
    after = "" if _UNSPACED.match(alternative[-1:]) else r"(?![^\W_])"
    return f"{before}(?:{alternative}){after}"


def _substitute(text: str, alternatives: list[str]) -> str:
    """``text`` with each of the patterns ``alternatives`` (the first that matches, in order) replaced by
    ``REDACTED`` where it is not glued to other letters or digits (``_bounded``)."""
    if not text or not alternatives:
        return text
    pattern = re.compile("|".join(_bounded(alternative) for alternative in alternatives), re.IGNORECASE)
    return pattern.sub(REDACTED, text)


def identifying_terms(metadata: ImageMetadata) -> set[str]:
    """Every string ``redact_text`` removes for this patient."""
    terms = set(name_parts(metadata.patient_name))
    terms.update(v.strip() for v in (metadata.patient_id, metadata.accession_number))
    terms.update(date_spellings(metadata.patient_birth_date))
    return {t for t in terms if len(t) >= _MIN_PART_LENGTH}


def name_parts(person_name: str) -> list[str]:
    """The identifying pieces of a DICOM PN value: each whole component and each word in it."""
    parts = []
    for group in person_name.split("="):
        components = group.split("^")
        if len(components) == 1:
            components = [group]  # free-form names ("Jane Doe", "Anonymized") have no carets
        for component in components[:_IDENTIFYING_NAME_COMPONENTS]:
            component = component.strip()
            words = re.split(r"[\s,]+", component)
            parts.extend(p for p in [component, *words] if len(p) >= _MIN_PART_LENGTH)
    return parts


def date_spellings(value: str) -> list[str]:
    """Common spellings of a DICOM DA value (``YYYYMMDD``): ISO, dotted, slashed, both orders."""
    value = value.strip()
    if not re.fullmatch(r"\d{8}", value):
        return [value] if value else []
    y, m, d = value[:4], value[4:6], value[6:]
    return [value, f"{y}-{m}-{d}", f"{y}/{m}/{d}", f"{y}.{m}.{d}",
            f"{d}.{m}.{y}", f"{d}/{m}/{y}", f"{d}-{m}-{y}", f"{m}/{d}/{y}", f"{m}-{d}-{y}"]


def _hidden_fields(deidentify: bool, retain_patient_characteristics: bool) -> set[str]:
    if not deidentify:
        return set()
    hidden = set(IDENTIFYING_FIELDS)
    if retain_patient_characteristics:
        hidden -= set(PATIENT_CHARACTERISTICS)
    return hidden


def _join(*values: str, sep: str = " ") -> str:
    return sep.join(v for v in values if v)
