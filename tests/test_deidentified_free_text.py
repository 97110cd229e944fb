"""De-identified outputs carry no identifier in their free text or their file names (privacy audit, 2026-11-30).

The audit's findings, each checked as a kind of fault on real films (``dicom_rsna``, ``dicom``), copied and given a
test patient's identifiers under a folder and file named after the patient:

* a warning that names source paths or the original SOP Instance UID (the identical-copy and UID-clash notes)
  reached the de-identified SR, SC band and Encapsulated PDF: ``DicomOutputWriter`` now de-identifies every
  warning it is given (``deidentify.redact_generated_text``), whoever calls it;
* a de-identified object was named after the source file (``ZZLEAKNAME_chest1_sc.dcm``): the writer never uses a
  stem that carries the film's file name or its patient's identifiers;
* the source's Burned In Annotation (0028,0301) was never read, so the outputs claimed more than was done: every
  de-identified output says text burned into the image is not removed (and, for YES, that the source says it has
  some), and an object showing such a film claims no Patient Identity Removed;
* a header check quoting an invalid Patient's Age ("invalid Patient's Age (0010,1010) 'ZZAGE1933'") was copied
  into de-identified outputs: a value quoted after an identifying attribute's name or tag is removed.

A review of those fixes found, each tested below: a path with spaces ("/data/Jones Mary/CT 12/img1.dcm") lost only
its first word; a numeric file stem ("55.dcm") removed "55" from "55 % of 118"; the CLI's numbered stem was replaced
when the source happened to be named after the same number; the report re-read each source's header (on the app's
GUI thread) for Burned In Annotation, which the decoder now records in ``ImageMetadata``.
"""
from __future__ import annotations

import io
from pathlib import Path

import pydicom
import pytest

highdicom = pytest.importorskip("highdicom")
pytest.importorskip("pypdf")

from cxr_engine.outputs.deidentify import REDACTED, redact_generated_text  # noqa: E402
from cxr_engine.outputs.dicom_outputs import DicomOutputWriter  # noqa: E402
from cxr_engine.outputs.dicom_outputs.encapsulated_pdf import pdf_bytes  # noqa: E402
from cxr_engine.pixels.image import ImageMetadata  # noqa: E402
from cxr_engine.reading.copies import copies_note  # noqa: E402
from cxr_engine.reading.read import read_image  # noqa: E402
from cxr_engine.reading.uid_clashes import clash_note  # noqa: E402

from test_dicom_outputs import card, classifier  # noqa: E402,F401  (fixtures: the bundled Lite0 on ONNX Runtime)

RSNA_FILM = "0004cfab-14fd-4e49-80ba-63a80b6bddd6.dcm"
CR_FILM = "CR-MONO1-10-chest.dcm"
NAME, PATIENT_ID, BIRTH, AGE = "Zzleakname^Zzgiven", "ZZPID4242", "19330101", "ZZAGE1933"
SECRETS = ("Zzleakname", "Zzgiven", "ZZPID4242", "19330101", AGE)


def named_film(source: Path, folder: Path, burned_in: str | None = None, age: str = AGE) -> Path:
    """A copy of the real film ``source`` with the test patient's identifiers (an invalid Patient's Age) in
    ``folder/Zzleakname_Zzgiven/Zzleakname_chest.dcm``."""
    ds = pydicom.dcmread(source, force=True)
    ds.PatientName, ds.PatientID, ds.PatientBirthDate, ds.PatientAge = NAME, PATIENT_ID, BIRTH, age
    if burned_in is not None:
        ds.BurnedInAnnotation = burned_in
    path = folder / "Zzleakname_Zzgiven" / "Zzleakname_chest.dcm"
    path.parent.mkdir(parents=True)
    ds.save_as(path)
    return path


def _texts(ds) -> str:
    return " | ".join(str(e.value) for e in ds.iterall() if e.VR not in ("SQ", "OB", "OW", "UN"))


def _sr_texts(path: Path, concept: str = "Suitability warning") -> list[str]:
    group = highdicom.sr.srread(path).content.get_image_measurement_groups()[0]
    return [item.TextValue for item in group[0].ContentSequence
            if item.ValueType == "TEXT" and item.ConceptNameCodeSequence[0].CodeMeaning == concept]


def _pdf_text(ds) -> str:
    from pypdf import PdfReader

    return "\n".join(page.extract_text() for page in PdfReader(io.BytesIO(pdf_bytes(ds))).pages)


def test_deidentified_objects_carry_no_source_path_uid_quoted_age_or_file_name(tmp_path, shared_data, classifier,
                                                                              card):
    source = named_film(shared_data / "dicom_rsna" / RSNA_FILM, tmp_path / "in")
    other = tmp_path / "in" / "copy_Zzleakname" / "Zzleakname_copy.dcm"
    uid = str(pydicom.dcmread(source, stop_before_pixels=True).SOPInstanceUID)
    image = read_image(source)
    assert any(f"'{AGE}'" in w for w in image.warnings)  # the header check quotes the invalid age
    # What an identified caller passes (the CLI's row warnings, the app's film_warnings): notes naming paths and UID.
    warnings = (*image.warnings, copies_note([other]), clash_note(uid, [source, other]))
    out = tmp_path / "out"
    objects = DicomOutputWriter(out, card, deidentify=True, inputs=(tmp_path / "in",)).write(
        image, classifier.predict_with_heatmap(image), warnings=warnings)

    assert sorted(o.kind for o in objects) == ["pdf", "sc", "sr"]
    for obj in objects:
        assert "zzleakname" not in obj.path.name.lower() and "chest" not in obj.path.name, obj.path.name
        ds = pydicom.dcmread(obj.path)
        text = _texts(ds) + (_pdf_text(ds) if obj.kind == "pdf" else "")
        for secret in (*SECRETS, uid, str(tmp_path), "copy_Zzleakname"):
            assert secret.lower() not in text.lower(), f"{obj.kind}: {secret!r} in {obj.path.name}"
    sr_warnings = _sr_texts(next(o.path for o in objects if o.kind == "sr"))
    # The warnings stay, in their words, without the values: the age check, the copy and the clash are still said.
    assert any(w.startswith(f"invalid Patient's Age (0010,1010) '{REDACTED}'") for w in sr_warnings), sr_warnings
    assert any(w.startswith("the same SOP Instance is also stored as 1 other identical file") for w in sr_warnings)
    assert any("claim the same SOP Instance UID" in w for w in sr_warnings)


def test_a_stem_that_carries_the_source_name_is_not_used_when_deidentifying(tmp_path, dicom_dir, classifier, card):
    source = named_film(dicom_dir / CR_FILM, tmp_path / "in", age="045Y")
    image = read_image(source)
    heatmap = classifier.predict_with_heatmap(image)
    writer = DicomOutputWriter(tmp_path / "out", card, deidentify=True, kinds=("sr",))
    [named] = writer.write(image, heatmap, stem="00007_Zzleakname_chest")
    [patient] = writer.write(image, heatmap, stem="00007_ZZPID4242")
    [number] = writer.write(image, heatmap, stem="00007")  # the CLI's: the input's number only
    assert named.path.name.startswith("anon-") and patient.path.name.startswith("anon-")
    assert number.path.name == "00007_sr.dcm"
    identified = DicomOutputWriter(tmp_path / "ident", card, kinds=("sr",)).write(image, heatmap)
    assert identified[0].path.name == "Zzleakname_chest_sr.dcm"  # identified objects keep the film's name


def test_the_clis_number_is_kept_for_a_source_named_after_the_same_number(tmp_path, dicom_dir, classifier, card):
    """``cxr-classify --deidentify --dicom-out`` names the objects by the input's number (docs/dicom_outputs.md):
    a source that happens to be called ``00003.dcm`` must not turn its objects into ``anon-...``."""
    source = tmp_path / "in" / "00003.dcm"
    source.parent.mkdir()
    ds = pydicom.dcmread(dicom_dir / CR_FILM, force=True)
    ds.PatientName, ds.PatientID, ds.PatientAge = NAME, PATIENT_ID, "045Y"
    ds.save_as(source)
    image = read_image(source)
    writer = DicomOutputWriter(tmp_path / "out", card, deidentify=True, kinds=("sr",))
    [number] = writer.write(image, classifier.predict_with_heatmap(image), stem="00003")
    assert number.path.name == "00003_sr.dcm"
    reference = pydicom.Dataset()
    reference.SOPInstanceUID = "2.25.1234567890"
    assert writer.deidentified_stem("00003", image, reference) == "00003"
    assert writer.deidentified_stem("00003_x", image, reference).startswith("anon-")  # the source's name, not a number
    # A number that is the patient's ID is still not used.
    as_id = type(image)(path=image.path, stored=image.stored, modality=image.modality,
                        metadata=ImageMetadata(patient_id="00003"))
    assert writer.deidentified_stem("00003", as_id, reference).startswith("anon-")


@pytest.mark.parametrize("burned_in", ["YES", None])
def test_deidentified_objects_say_burned_in_text_is_not_removed(tmp_path, dicom_dir, classifier, card, burned_in):
    from cxr_engine.outputs.deidentify import pixel_text_note
    from cxr_engine.outputs.dicom_outputs.source import pixel_text_method

    source = named_film(dicom_dir / CR_FILM, tmp_path / "in", burned_in=burned_in, age="045Y")
    image = read_image(source)
    heatmap = classifier.predict_with_heatmap(image)
    objects = {o.kind: pydicom.dcmread(o.path) for o in
               DicomOutputWriter(tmp_path / "out", card, deidentify=True).write(image, heatmap)}
    note = pixel_text_note(burned_in or "")
    said = burned_in == "YES"
    assert ("source says its image has some (Burned In Annotation YES)" in note) == said
    assert ("if any" in note) == (not said)
    # The SR (no pixels of the film) keeps its claim and says what is left; the SC and the PDF show the film:
    # with burned-in text said by the source, no identity is claimed removed (PS3.3 C.7.1.1: "and the Pixel Data").
    sr = objects["sr"]
    assert sr.PatientIdentityRemoved == "YES" and pixel_text_method(burned_in or "") in sr.DeidentificationMethod
    assert _sr_texts(Path(sr.filename), "De-identification note") == [note]
    for kind in ("sc", "pdf"):
        if said:
            assert objects[kind].PatientIdentityRemoved == "NO" and "DeidentificationMethod" not in objects[kind]
        else:
            assert objects[kind].PatientIdentityRemoved == "YES"
    pdf = " ".join(_pdf_text(objects["pdf"]).split())
    assert note in pdf and ("BURNED-IN TEXT KEPT" in pdf) == said
    assert "identifiers are removed as the DICOM PS3.15 Annex E basic profile requires." not in pdf  # the overclaim
    # Identified objects say nothing of it.
    plain = DicomOutputWriter(tmp_path / "ident", card, kinds=("sr",)).write(image, heatmap)
    assert _sr_texts(plain[0].path, "De-identification note") == []


def test_the_report_reads_burned_in_annotation_from_the_source(tmp_path, dicom_dir, monkeypatch):
    """The app's Export PDF and ``cxr-desktop --export-pdf --deidentify`` build their pages with ``for_image``: the
    source's Burned In Annotation comes with the decoded film (``ImageMetadata``, also across the isolated
    decoder's wire format), and no page reads the source's header again (the app makes pages on its GUI thread)."""
    from cxr_engine.outputs.deidentify import pixel_text_note
    from cxr_engine.outputs.report import ReportPage, build_report_pdf
    from cxr_engine.pixels.rendering import render
    from cxr_engine.reading.image_wire import decode_image, encode_image
    from pypdf import PdfReader

    source = named_film(dicom_dir / CR_FILM, tmp_path / "in", burned_in="YES", age="045Y")
    image = read_image(source)
    assert image.metadata.burned_in_annotation == "YES"
    assert decode_image(*encode_image(image)).metadata.burned_in_annotation == "YES"
    assert read_image(dicom_dir / CR_FILM).metadata.burned_in_annotation == ""  # absent: nothing said

    reads = []
    real = pydicom.dcmread
    monkeypatch.setattr(pydicom, "dcmread", lambda *args, **kwargs: reads.append(args) or real(*args, **kwargs))
    page = ReportPage.for_image(image, render(image))
    identified = " ".join(PdfReader(io.BytesIO(build_report_pdf([page], model_card=None, deidentify=False)))
                          .pages[0].extract_text().split())
    assert reads == []  # no header read for a page, let alone an identified one
    assert "burned into" not in identified
    assert page.burned_in_annotation == "YES"
    text = " ".join(PdfReader(io.BytesIO(build_report_pdf([page], model_card=None, deidentify=True)))
                    .pages[0].extract_text().split())
    assert pixel_text_note("YES") in text and "HEADER DE-IDENTIFIED - BURNED-IN TEXT KEPT" in text
    assert reads == []


def test_generated_text_loses_quoted_identifying_values_uids_and_paths():
    metadata = ImageMetadata(patient_name=NAME, patient_id=PATIENT_ID, sop_instance_uid="1.2.3.4.5.6.77")
    age = "invalid Patient's Age (0010,1010) 'ZZAGE1933': not an age (nnnD/W/M/Y, PS3.5 6.2); the age checks cannot use it"
    assert redact_generated_text(age, metadata) == age.replace("ZZAGE1933", REDACTED)  # the message's words stay
    assert redact_generated_text("Patient's Birth Date (0010,0030) 'Jan 1 1933' unreadable", metadata) == \
        f"Patient's Birth Date (0010,0030) '{REDACTED}' unreadable"
    clash = clash_note("1.2.3.4.5.6.77", [Path("/data/a/x.dcm"), Path("C:\\scans\\y.dcm")])
    cleaned = redact_generated_text(clash, metadata)
    assert "1.2.3.4.5.6.77" not in cleaned and "/data" not in cleaned and "scans" not in cleaned, cleaned
    assert redact_generated_text("another UID 2.25.1234567 here", metadata) == f"another UID {REDACTED} here"
    assert redact_generated_text("file Zzleakname_chest.dcm", metadata, paths=["/in/Zzleakname_chest.dcm"]) == \
        f"file {REDACTED}"
    # Not identifiers: the standard's own UIDs, a slash inside a word or a window, a non-identifying quoted value.
    kept = ("transfer syntax 1.2.840.10008.1.2.4.90, window 40/400, nnnD/W/M/Y, "
            "invalid Rescale Slope (0028,1053) '0': not a number")
    assert redact_generated_text(kept, metadata) == kept


def test_a_deidentified_presentation_state_carries_the_notes_redacted(tmp_path, dicom_dir, classifier, card):
    """The reader's text notes, which the de-identified PDF prints redacted, were written as typed into a
    de-identified presentation state (the audit's "another route" for free text)."""
    from cxr_engine.outputs.dicom_outputs.presentation_state import Mark

    source = named_film(dicom_dir / CR_FILM, tmp_path / "in", age="045Y")
    image = read_image(source)
    marks = (Mark("text", ((50.0, 60.0),), "Zzgiven Zzleakname ZZPID4242: nodule?"),)
    [gsps] = DicomOutputWriter(tmp_path / "out", card, deidentify=True, kinds=("gsps",)).write(
        image, classifier.predict_with_heatmap(image), marks=marks)
    texts = [t.UnformattedTextValue for layer in pydicom.dcmread(gsps.path).GraphicAnnotationSequence
             for t in layer.get("TextObjectSequence", [])]
    assert texts == [f"{REDACTED} {REDACTED} {REDACTED}: nodule?"]


@pytest.mark.parametrize("path, folder", [
    ("/data/Jones Mary/CT 12/img1.dcm", "/data/Jones Mary"),
    ("C:\\Users\\Mary Jones\\scan.dcm", "C:\\Users\\Mary Jones"),
    ("\\\\server\\share\\Mary Jones\\CT 12\\img 1.dcm", "\\\\server\\share\\Mary Jones"),
])
def test_a_path_with_spaces_goes_whole(path, folder):
    """A folder or file named with spaces lost only its first word ("[removed] Mary/CT 12/[removed]")."""
    metadata = ImageMetadata()
    for paths in ((path, folder), (path,), ()):  # the source's paths given, or any other path
        assert redact_generated_text(f"also stored as {path}", metadata, paths=paths) == f"also stored as {REDACTED}"
        assert redact_generated_text(f"left out: {path}, {path} and 2 more", metadata, paths=paths) == \
            f"left out: {REDACTED}, {REDACTED} and 2 more"
        assert redact_generated_text(f"files in {folder}, kept", metadata, paths=paths) == f"files in {REDACTED}, kept"
    # A folder given, as spelt (lower case: no capitalised words to go by), and what follows it in the same path.
    assert redact_generated_text("in /data/jones mary and more", metadata, paths=("/data/jones mary/x.dcm",)) == \
        f"in {REDACTED} and more"
    assert redact_generated_text("in /data/jones mary/ct 1/x y.dcm: unreadable", metadata,
                                 paths=("/data/jones mary/ct 1/x y.dcm",)) == f"in {REDACTED}: unreadable"
    # Neither a folder given inside a longer name ("/data" of "/database") nor ordinary words after a path go.
    assert redact_generated_text("/database and folder /data/scans are kept", metadata, paths=("/data/x.dcm",)) == \
        f"{REDACTED} and folder {REDACTED} are kept"


def test_ordinary_sentences_are_no_paths():
    metadata = ImageMetadata()
    for kept in ("window 40/400, nnnD/W/M/Y, 1/2 of the film (PA/AP) and/or lateral",
                 "not an age (nnnD/W/M/Y, PS3.5 6.2); the age checks cannot use it",
                 "55 % of 118 validation films; 1024 x 1024 pixels"):
        assert redact_generated_text(kept, metadata, paths=("/in/Jones Mary/x.dcm",)) == kept


def test_a_file_stem_without_a_letter_is_no_identifier():
    """A source file "55.dcm" turned "55 % of 118 validation" into "[removed] % of 118 validation"."""
    metadata = ImageMetadata()
    text = "the model is sure on 55 % of 118 validation films; input 1024 x 1024"
    assert redact_generated_text(text, metadata, paths=("/in/55.dcm", "/in/1024.dcm", "55.dcm")) == text
    # The file itself still goes, as a path or a file name, and a stem with a letter still goes in a file name.
    assert redact_generated_text("cannot read /in/55.dcm or 55.dcm", metadata, paths=("/in/55.dcm",)) == \
        f"cannot read {REDACTED} or {REDACTED}"
    assert redact_generated_text("copy scan55_b.png", metadata, paths=("/in/scan55.dcm",)) == \
        f"copy {REDACTED}_b.png"


@pytest.mark.parametrize("name", [
    "Acquisition Date (0008,0022)", "Content Date (0008,0023)", "Series Time (0008,0031)", "Study Time (0008,0030)",
    "Acquisition DateTime (0008,002A)", "Content Time (0008,0033)", "Instance Creation Date (0008,0012)",
])
def test_a_value_quoted_after_an_identifying_date_or_time_goes(name):
    """Table E.1-1 removes, empties or replaces these (not K): their quoted values go, their words stay."""
    text = f"at the {name} '2024-05-10 10:11', something"
    assert redact_generated_text(text, ImageMetadata()) == f"at the {name} '{REDACTED}', something"
    bare = name.split(" (")[0]
    assert redact_generated_text(f"{bare}: '2024'", ImageMetadata()) == f"{bare}: '{REDACTED}'"
    # A date attribute that Table E.1-1 does not list (kept by the profile) keeps its quoted value.
    kept = "Date of Gain Calibration (0014,3076) '2024-05-10'"
    assert redact_generated_text(kept, ImageMetadata()) == kept


def test_testers_findings_folder_words_quoted_apostrophes_and_typed_dates():
    """A tester's findings: an input folder named "in" or "chest" was removed as a word everywhere ("lengths are
    given [removed] pixels"); a quoted value holding a quote left part of it ("'[removed]'0Y'"); a reader's comment
    in a de-identified PDF kept a typed acquisition date and a typed path."""
    from cxr_engine.outputs.deidentify import REDACTED, redact_free_text, redact_generated_text
    from cxr_engine.pixels.image import ImageMetadata

    metadata = ImageMetadata(patient_name="Müller^Zoë", patient_id="MZ1", patient_birth_date="19500202")
    warning = "too small for a chest film: lengths are given in pixels"
    assert redact_generated_text(warning, metadata, paths=("/data/chest",)) == warning
    assert redact_generated_text(warning, metadata, paths=("in",)) == warning
    # a file's own name still goes wherever it stands; the folder's name inside a path too
    assert "ZZ_pa.dcm" not in redact_generated_text("also stored as ZZ_pa.dcm", metadata, paths=("/data/x/ZZ_pa.dcm",))
    assert "chest" not in redact_generated_text("copy at /data/chest/a.dcm", metadata, paths=("/data/chest",))
    aged = redact_generated_text("invalid Patient's Age (0010,1010) '5'0Y': not an age", metadata)
    assert aged == f"invalid Patient's Age (0010,1010) '{REDACTED}': not an age"
    comment = "seen 17.03.2019 and 2019-03-17, cf. /data/Zoë Müller, 1950 (Ward 3)/x.dcm; Müller well; 55 % better"
    cleaned = redact_free_text(comment, metadata)
    # (a typed path whose folder names hold commas and brackets is cut at them: "(Ward 3)" is left, a known limit)
    for kept_out in ("17.03.2019", "2019-03-17", "/data", "Müller", "Zoë"):
        assert kept_out not in cleaned, (kept_out, cleaned)
    assert cleaned.startswith("seen ") and "55 % better" in cleaned
