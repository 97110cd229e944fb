"""The DICOM outputs of a classification (cxr_engine.outputs.dicom_outputs) on real films: each object read
back with pydicom and highdicom, the Secondary Capture's pixels, the SR item by item, the
Encapsulated PDF, de-identification against the Annex E identifiers, dcmdump/dsrdump, and
``cxr-classify --dicom-out`` (also without torch and offline)."""
from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pydicom
import pytest

highdicom = pytest.importorskip("highdicom")

from cxr_engine.outputs.dicom_outputs import DicomOutputError, DicomOutputWriter  # noqa: E402
from cxr_engine.outputs.dicom_outputs.encapsulated_pdf import pdf_bytes  # noqa: E402
from cxr_engine.outputs.dicom_outputs.presentation_state import Mark  # noqa: E402
from cxr_engine.outputs.dicom_outputs.secondary_capture import (  # noqa: E402
    NOTICE, SCOPE_HEADING, band_warning_lines, capture_pixels, line_height)
from cxr_engine.outputs.dicom_outputs.writer import default_film, result_lines  # noqa: E402
from cxr_engine.reading.read import read_image  # noqa: E402
from cxr_engine.models.model_card import ModelCard  # noqa: E402
from cxr_engine.pixels.overlay import FADE  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
CARD = REPO / "resources" / "models" / "efficientnet-lite0.json"
FILM = "CR-MONO1-10-chest.dcm"  # 440 x 440 CR, MONOCHROME1, an old file without the DICM preamble
RSNA_FILM = "0004cfab-14fd-4e49-80ba-63a80b6bddd6.dcm"

#: PS3.15 Table E.1-1 attributes a test source is given, with the values that must not survive.
IDENTIFIED = {
    "PatientName": "DOE^JANE^Q", "PatientID": "PID-987654", "IssuerOfPatientID": "ELSEWHERE-MRN",
    "PatientBirthDate": "19610412",
    "PatientSex": "F", "PatientAge": "064Y", "AccessionNumber": "ACC-55512", "StudyDate": "20250317",
    "StudyTime": "101530", "StudyID": "ST-777", "ReferringPhysicianName": "HOUSE^GREGORY",
    "InstitutionName": "St Elsewhere General", "StudyDescription": "CHEST PA JANE DOE",
    "OtherPatientIDs": "OTHER-42", "PatientAddress": "12 Elm Street", "OperatorsName": "SMITH^ANNA",
}
#: Annex E attributes that must be absent or empty in a de-identified output (X, Z, D actions),
#: besides the UIDs (U, checked for new values) and the patient's name and ID (a pseudonym).
ANNEX_E_EMPTY_OR_ABSENT = (
    "IssuerOfPatientID", "PatientBirthDate", "PatientSex", "PatientAge", "AccessionNumber", "StudyDate", "StudyTime",
    "StudyID",
    "ReferringPhysicianName", "InstitutionName", "InstitutionAddress", "StudyDescription", "OtherPatientIDs",
    "OtherPatientNames", "PatientAddress", "OperatorsName", "PerformingPhysicianName",
    "NameOfPhysiciansReadingStudy", "PhysiciansOfRecord", "RequestingPhysician", "StationName",
    "DeviceSerialNumber", "PatientBirthTime", "PatientWeight", "PatientSize", "AdmittingDiagnosesDescription",
    "AdditionalPatientHistory", "PatientComments", "AcquisitionDate", "SeriesDate", "InstitutionalDepartmentName",
)

#: A warning with the non-ASCII characters the app writes ("°", an en dash).
NON_ASCII_WARNING = "a test warning \u2013 turned 180\u00b0"

MARKS = (
    Mark("arrow", ((100.0, 100.0), (200.0, 150.0))),
    Mark("text", ((50.0, 60.0),), "nodule?"),
    Mark("ellipse", ((210.0, 220.0), (300.0, 260.0))),
    Mark("rectangle", ((10.0, 10.0), (40.0, 50.0))),
    Mark("ruler", ((100.0, 300.0), (300.0, 300.0))),
    Mark("angle", ((100.0, 100.0), (150.0, 150.0), (200.0, 100.0))),
)


@pytest.fixture(scope="module")
def card() -> ModelCard:
    return ModelCard.load(CARD)


@pytest.fixture(scope="module")
def classifier(card):
    pytest.importorskip("onnxruntime")
    from cxr_engine.models.backends import create_classifier

    model = create_classifier(card, backend="onnx", device="cpu")
    model.load()
    return model


@pytest.fixture(scope="module")
def identified_film(tmp_path_factory, dicom_dir) -> Path:
    """A copy of a real film whose header carries a full set of identifiers (the source is not touched)."""
    ds = pydicom.dcmread(dicom_dir / FILM, force=True)
    # No Specific Character Set: the outputs must still hold the app's non-ASCII text (finding 4).
    if "SpecificCharacterSet" in ds:
        del ds.SpecificCharacterSet
    for keyword, value in IDENTIFIED.items():
        setattr(ds, keyword, value)
    path = tmp_path_factory.mktemp("identified") / "film.dcm"
    ds.save_as(path, enforce_file_format=True)
    return path


@pytest.fixture(scope="module")
def classified(identified_film, classifier):
    image = read_image(identified_film)
    return image, classifier.predict_with_heatmap(image)


@pytest.fixture(scope="module")
def outputs(tmp_path_factory, classified, card):
    image, heatmap_result = classified
    writer = DicomOutputWriter(tmp_path_factory.mktemp("out"), card)
    return {obj.kind: obj for obj in writer.write(image, heatmap_result, warnings=(NON_ASCII_WARNING,), marks=MARKS,
                                                    window=(1200.0, 800.0))}


@pytest.fixture(scope="module")
def deidentified(tmp_path_factory, classified, card):
    image, heatmap_result = classified
    writer = DicomOutputWriter(tmp_path_factory.mktemp("deid"), card, deidentify=True)
    return {obj.kind: obj for obj in writer.write(image, heatmap_result, marks=MARKS)}


def _source(path: Path) -> pydicom.Dataset:
    return pydicom.dcmread(path, force=True, stop_before_pixels=True)


class TestSecondaryCapture:
    def test_reads_back_in_the_source_study(self, outputs, identified_film):
        source = _source(identified_film)
        ds = pydicom.dcmread(outputs["sc"].path)
        assert highdicom.imread(outputs["sc"].path).get_frame(1).shape == ds.pixel_array.shape
        assert ds.SOPClassUID == pydicom.uid.SecondaryCaptureImageStorage
        assert ds.StudyInstanceUID == source.StudyInstanceUID
        assert ds.SeriesInstanceUID != source.SeriesInstanceUID
        assert ds.SOPInstanceUID != source.SOPInstanceUID
        # OT, not the film's CR: a derived RGB capture is no radiograph (secondary_capture's docstring, PS3.3 C.8.6.1).
        assert (ds.Modality, source.Modality, ds.ConversionType) == ("OT", "CR", "WSD")
        assert ds.BurnedInAnnotation == "YES"
        assert (ds.PatientName, ds.PatientID, ds.AccessionNumber) == ("DOE^JANE^Q", "PID-987654", "ACC-55512")
        reference = ds.SourceImageSequence[0]
        assert (reference.ReferencedSOPClassUID, reference.ReferencedSOPInstanceUID) == (
            source.SOPClassUID, source.SOPInstanceUID)

    @pytest.mark.parametrize("which", ["outputs", "deidentified"])
    def test_carries_the_patient_and_study_attributes_of_the_sr_and_the_pdf(self, which, request):
        """highdicom's ``SCImage.from_ref_dataset`` kept no Issuer of Patient ID, Patient's Age or Study Description,
        which the SR and the PDF of the same film carry (tester finding); de-identified, the three carry the same
        Annex E remainder."""
        objects = request.getfixturevalue(which)
        sc, sr, pdf = (pydicom.dcmread(objects[kind].path, stop_before_pixels=True) for kind in ("sc", "sr", "pdf"))

        def patient_and_study(ds) -> dict:
            study = ("StudyInstanceUID", "StudyDate", "StudyTime", "AccessionNumber", "StudyID",
                     "ReferringPhysicianName", "StudyDescription")
            return {e.keyword: str(e.value) for e in ds if (e.tag.group == 0x0010 or e.keyword in study)
                    and e.keyword not in ("PatientIdentityRemoved",)}  # NO for pixels with burned-in text

        assert patient_and_study(sc) == patient_and_study(sr) == patient_and_study(pdf)
        if which == "outputs":
            assert (sc.IssuerOfPatientID, sc.PatientAge, sc.StudyDescription) == (
                IDENTIFIED["IssuerOfPatientID"], IDENTIFIED["PatientAge"], IDENTIFIED["StudyDescription"])
        else:
            assert not any(str(sc.get(k, "") or "") for k in ("IssuerOfPatientID", "PatientAge", "StudyDescription"))

    def test_pixels_hold_the_heatmap_and_the_text(self, outputs, classified):
        image, heatmap_result = classified
        pixels = pydicom.dcmread(outputs["sc"].path).pixel_array
        rows, cols = image.display_shape
        # Two result lines, the one warning (in scope: no red heading), the notice.
        assert pixels.shape == (rows + 4 * line_height(cols), cols, 3)
        film = pixels[:rows]
        hot = np.unravel_index(np.argmax(heatmap_result.heatmap), heatmap_result.heatmap.shape)
        r, g, b = (int(v) for v in film[hot])
        assert max(r, g, b) - min(r, g, b) > 40, "the heat-map's peak is not coloured"
        cold = heatmap_result.heatmap < FADE[0]
        assert cold.any()
        grey = film[cold]
        assert np.all(grey[:, 0] == grey[:, 1]) and np.all(grey[:, 1] == grey[:, 2]), "cold film is tinted"
        # Each band line holds text: bright pixels on black, the notice in amber.
        band = pixels[rows:]
        height = line_height(cols)
        for number in range(4):
            line = band[number * height:(number + 1) * height]
            assert (line.max(axis=2) > 200).sum() > 50, f"band line {number} holds no text"
        warning = band[2 * height:3 * height]
        lit = warning[warning.max(axis=2) > 200].astype(int)
        assert not np.all(lit[:, 0] > lit[:, 1] + 100), "an in-scope film's warning is headed in red"
        notice = band[3 * height:]
        lit = notice[notice.max(axis=2) > 200]
        assert np.all(lit[:, 0] >= lit[:, 2]), "the notice is not amber"

    def test_band_carries_the_warnings_of_an_out_of_scope_film(self, classified):
        """Finding 3: the SC (what PACS shows) said "AI result: COVID-19 91%" and nothing else for an
        inverted, upside-down film whose SR and CSV flag it out of scope."""
        image, heatmap_result = classified
        film = default_film(image, heatmap_result)
        warning = ("image check: shown as a negative (inverted), upside down (turned 180\u00b0): outside what "
                   "the model was trained for")
        plain = capture_pixels(film, result_lines(heatmap_result))
        flagged = capture_pixels(film, result_lines(heatmap_result), warnings=(warning, "lateral view: the model is made "
                                                                    "for frontal (PA/AP) chest films"), out_of_scope=True)
        rows, height = film.shape[0], line_height(film.shape[1])
        assert plain.shape[0] == rows + 3 * height
        added = band_warning_lines((warning, "lateral view: the model is made for frontal (PA/AP) chest films"), True)
        assert flagged.shape[0] == rows + (3 + len(added)) * height
        assert added[0][0] == SCOPE_HEADING and "NOT RELIABLE" in SCOPE_HEADING
        text = " ".join(line for line, _ in added[1:])
        assert "turned 180 deg" in text and "lateral view" in text and "?" not in text
        assert all(len(line) <= 64 for line, _ in added)
        heading = flagged[rows + 2 * height:rows + 3 * height]
        lit = heading[heading.max(axis=2) > 200].astype(int)
        assert len(lit) > 50 and np.all(lit[:, 0] > lit[:, 1] + 100), "no red out-of-scope heading"

    def test_written_capture_carries_the_writer_warnings(self, outputs, deidentified, classified):
        image, _ = classified
        rows, cols = image.display_shape
        with_warning = pydicom.dcmread(outputs["sc"].path).pixel_array
        without = pydicom.dcmread(deidentified["sc"].path).pixel_array
        assert with_warning.shape[0] == rows + 4 * line_height(cols)  # the warning; in scope: no red heading
        # No warning given; de-identified, its note says text burned into the film is not removed.
        from cxr_engine.outputs.deidentify import pixel_text_note

        note = band_warning_lines([f"De-identified: {pixel_text_note()}"])
        assert without.shape[0] == rows + (3 + len(note)) * line_height(cols)

    def test_band_text_follows_the_result(self, classified):
        image, heatmap_result = classified
        film = default_film(image, heatmap_result)
        shown = capture_pixels(film, result_lines(heatmap_result))
        other = capture_pixels(film, ["AI result: Pneumonia 99% (another model)", "x"])
        rows = film.shape[0]
        height = line_height(film.shape[1])
        assert not np.array_equal(shown[rows:rows + height], other[rows:rows + height])
        assert np.array_equal(shown[rows + 2 * height:], other[rows + 2 * height:])  # the same notice
        assert "NOT FOR DIAGNOSIS" in NOTICE

    def test_band_prints_probabilities_with_one_decimal_as_the_app(self, classified):
        """Tester: the capture said "COVID-19 81 %" where the app and the PDF say 80.8 %."""
        from cxr_engine.display_text import format_percent
        from cxr_engine.models.model_card import CLASS_DISPLAY_NAMES

        _, heatmap_result = classified
        prediction = heatmap_result.prediction
        first, second = result_lines(heatmap_result)
        assert first.startswith(f"AI result: {prediction.display_label} "
                                f"{format_percent(prediction.probability(prediction.label))} (")
        for cls, p in zip(prediction.classes, prediction.probabilities):
            if cls != prediction.label:
                assert f"{CLASS_DISPLAY_NAMES[cls]} {100 * p:.1f} %" in second

    def test_large_film_is_shrunk(self):
        film = np.zeros((3000, 2400, 3), np.uint8)
        out = capture_pixels(film, ["a"], max_side=2048)
        assert out.shape[1] == 1638 and out.shape[0] == 2048 + 2 * line_height(1638)


class TestStructuredReport:
    def test_content_item_by_item(self, outputs, identified_film, classified, card):
        image, heatmap_result = classified
        source = _source(identified_film)
        ds = pydicom.dcmread(outputs["sr"].path)
        sr = highdicom.sr.srread(outputs["sr"].path)
        assert ds.SOPClassUID == pydicom.uid.ComprehensiveSRStorage
        assert ds.StudyInstanceUID == source.StudyInstanceUID
        assert ds.SeriesInstanceUID not in (source.SeriesInstanceUID,)
        assert ds.CompletionFlag == "COMPLETE" and ds.VerificationFlag == "UNVERIFIED"
        assert ds.ContentTemplateSequence[0].TemplateIdentifier == "1500"
        evidence = ds.CurrentRequestedProcedureEvidenceSequence[0].ReferencedSeriesSequence[0]
        assert evidence.ReferencedSOPSequence[0].ReferencedSOPInstanceUID == source.SOPInstanceUID
        assert ds.CodingSchemeIdentificationSequence[0].CodingSchemeDesignator == "99CXRREADER"

        groups = sr.content.get_image_measurement_groups()
        assert len(groups) == 1
        group = groups[0]
        assert group.tracking_identifier == "CXR Reader classification"
        snomed = {"normal": "17621005", "pneumonia": "233604007", "covid": "840539006"}
        assert (group.finding_type.value, group.finding_type.scheme_designator) == (snomed[heatmap_result.prediction.label], "SCT")
        expected = {"Normal": "normal", "Pneumonia": "pneumonia", "COVID-19": "covid"}
        measured = {m.name.meaning.removeprefix("Probability of "): m for m in group.get_measurements()}
        assert set(measured) == set(expected)
        for meaning, cls in expected.items():
            assert measured[meaning].value == pytest.approx(heatmap_result.prediction.probability(cls), abs=1e-9)
            assert (measured[meaning].unit.value, measured[meaning].unit.scheme_designator) == ("1", "UCUM")
            assert measured[meaning].name.scheme_designator == "99CXRREADER"
        evaluations = {q.name.meaning: q.value for q in group.get_qualitative_evaluations()}
        # No: a suitability warning alone does not put a film out of scope (the CSV's and the app's verdict).
        assert (evaluations["Image outside the model's intended scope"].value) == "373067005"
        texts = [item.TextValue for item in group[0].ContentSequence if item.ValueType == "TEXT"
                 and item.ConceptNameCodeSequence[0].CodeMeaning == "Suitability warning"]
        assert texts == [NON_ASCII_WARNING]
        algorithm = {item.ConceptNameCodeSequence[0].CodeMeaning: item.TextValue
                     for item in group[0].ContentSequence if item.ValueType == "TEXT"}
        assert algorithm["Algorithm Name"] == "efficientnet-lite0"
        assert algorithm["Algorithm Version"].startswith(f"weights sha256:{card.weights_sha256[:8]}")
        source_image = group.source_images[0]
        assert source_image.referenced_sop_instance_uid == source.SOPInstanceUID

    def test_an_out_of_scope_film_has_no_coded_finding(self, tmp_path, dicom_dir, classifier, card):
        """Tester: the SR of Fake_MONOHR1 (flagged inverted) coded "Finding = COVID-19" as if it were a finding.
        Now no Finding, the flag Yes and a TEXT naming the reasons and the class not recorded."""
        from cxr_engine.display_text import format_percent

        image = read_image(dicom_dir / "Fake_MONOHR1.dcm")
        heatmap_result = classifier.predict_with_heatmap(image)
        prediction = heatmap_result.prediction
        written = DicomOutputWriter(tmp_path, card, kinds=("sr",)).write(image, heatmap_result, out_of_scope="inverted")
        group = highdicom.sr.srread(written[0].path).content.get_image_measurement_groups()[0]
        assert group.finding_type is None
        assert {q.name.meaning: q.value.value for q in group.get_qualitative_evaluations()} == {
            "Image outside the model's intended scope": "373066001"}  # Yes
        texts = {item.ConceptNameCodeSequence[0].CodeMeaning: item.TextValue
                 for item in group[0].ContentSequence if item.ValueType == "TEXT"}
        probability = format_percent(prediction.probability(prediction.label))
        assert texts["AI result not recorded as a finding"] == (
            f"Outside the model's intended scope (inverted): the most probable class, {prediction.display_label} "
            f"({probability}), is not reliable and is not recorded as a finding")
        assert len(group.get_measurements()) == 3  # the probabilities stay
        from cxr_engine.outputs.dicom_outputs.structured_report import not_a_finding_text

        assert not_a_finding_text(prediction, "inverted;child").startswith(
            "Outside the model's intended scope (inverted, child): ")
        # worded as the app's and the PDF's milder banner when the film may well be in scope
        assert not_a_finding_text(prediction, "child-chest;uncertain").startswith(
            "Possibly outside the model's intended scope (child-chest, uncertain): ")
        # a close call alone is no question of scope (the banner's "Note: ... a close call"; a code review)
        assert not_a_finding_text(prediction, "uncertain").startswith("A close call (the model is unsure")

        in_scope = DicomOutputWriter(tmp_path / "in", card, kinds=("sr",)).write(image, heatmap_result)
        group = highdicom.sr.srread(in_scope[0].path).content.get_image_measurement_groups()[0]
        assert group.finding_type is not None and group.finding_type.meaning == prediction.display_label

    def test_each_class_has_its_snomed_finding(self):
        from cxr_engine.outputs.dicom_outputs.codes import finding_concept

        assert {c: finding_concept(c).value for c in ("normal", "pneumonia", "covid")} == {
            "normal": "17621005", "pneumonia": "233604007", "covid": "840539006"}
        assert finding_concept("effusion").scheme_designator == "99CXRREADER"


class TestEncapsulatedPdf:
    def test_holds_the_report(self, outputs, identified_film):
        from pypdf import PdfReader
        import io

        source = _source(identified_film)
        ds = pydicom.dcmread(outputs["pdf"].path)
        assert ds.SOPClassUID == pydicom.uid.EncapsulatedPDFStorage
        assert ds.StudyInstanceUID == source.StudyInstanceUID and ds.Modality == "DOC"
        assert ds.MIMETypeOfEncapsulatedDocument == "application/pdf" and ds.BurnedInAnnotation == "YES"
        assert ds.SourceInstanceSequence[0].ReferencedSOPInstanceUID == source.SOPInstanceUID
        data = pdf_bytes(ds)
        assert data.startswith(b"%PDF-") and data.rstrip().endswith(b"%%EOF")
        text = PdfReader(io.BytesIO(data)).pages[0].extract_text()
        assert "CXR Reader" in text and "PID-987654" in text
        # no viewer made this page: it must not claim to show "as shown in the viewer"
        assert "default window, as stored" in " ".join(text.split()) and "shown in the viewer" not in text


class TestPresentationState:
    def test_annotations_and_window_reopen_over_the_film(self, outputs, identified_film, classified):
        image, _ = classified
        source = _source(identified_film)
        ds = pydicom.dcmread(outputs["gsps"].path)
        assert ds.SOPClassUID == pydicom.uid.GrayscaleSoftcopyPresentationStateStorage
        assert ds.StudyInstanceUID == source.StudyInstanceUID and ds.Modality == "PR" and ds.SeriesNumber == 9904
        referenced = ds.ReferencedSeriesSequence[0]
        assert referenced.SeriesInstanceUID == source.SeriesInstanceUID
        assert referenced.ReferencedImageSequence[0].ReferencedSOPInstanceUID == source.SOPInstanceUID
        annotation = ds.GraphicAnnotationSequence[0]
        graphics = [(g.GraphicType, [float(v) for v in g.GraphicData]) for g in annotation.GraphicObjectSequence]
        assert [kind for kind, _ in graphics] == ["POLYLINE", "POLYLINE", "ELLIPSE", "POLYLINE", "POLYLINE", "POLYLINE"]
        assert graphics[0][1] == [100, 100, 200, 150]  # the arrow's shaft; [1] is its head
        assert graphics[1][1][2:4] == [200, 150]
        assert graphics[2][1] == [210, 240, 300, 240, 255, 220, 255, 260]  # major axis, then minor
        assert graphics[3][1] == [10, 10, 40, 10, 40, 50, 10, 50, 10, 10]
        assert all(g.GraphicAnnotationUnits == "PIXEL" for g in annotation.GraphicObjectSequence)
        texts = [t.UnformattedTextValue for t in annotation.TextObjectSequence]
        spacing = image.spacing_mm
        ruler = f"{200 * spacing[1]:.1f} mm" if spacing else "200 px"
        assert texts == ["nodule?", ruler, "90.0°"]
        voi = ds.SoftcopyVOILUTSequence[0]
        assert (float(voi.WindowCenter), float(voi.WindowWidth)) == (1200.0, 800.0)
        assert source.PhotometricInterpretation == "MONOCHROME1" and ds.PresentationLUTShape == "INVERSE"

    def test_a_note_is_written_whole_and_a_longer_one_refused(self, tmp_path, classified, card):
        """Unformatted Text Value (0070,0006) is ST, up to 1024 characters (PS3.5 Table 6.2-1): notes were cut to
        64 without a word (tester finding). A note of 1024 characters, and a ruler's label as long, are kept whole;
        one of 1025 is refused with the limit named, and nothing is written."""
        image, heatmap_result = classified
        note = ("Opacity in the left lower zone, compare with the film of last week. " * 16)[:1024]
        marks = (Mark("text", ((50.0, 60.0),), note), Mark("ruler", ((100.0, 300.0), (300.0, 300.0)), note[::-1]))
        written = DicomOutputWriter(tmp_path / "whole", card, kinds=("gsps",)).write(image, heatmap_result, marks=marks)
        ds = pydicom.dcmread(written[0].path)
        texts = [t.UnformattedTextValue for t in ds.GraphicAnnotationSequence[0].TextObjectSequence]
        assert texts == [note, note[::-1]] and len(note) == 1024
        longer = (Mark("text", ((50.0, 60.0),), note + "!"),)
        with pytest.raises(DicomOutputError, match="a text note of 1025 characters is longer than the 1024 a "
                                                   r"presentation state's Unformatted Text Value \(0070,0006, ST"):
            DicomOutputWriter(tmp_path / "longer", card, kinds=("gsps",)).write(image, heatmap_result, marks=longer)
        assert not (tmp_path / "longer").exists() or not any((tmp_path / "longer").iterdir())

    def test_unknown_kinds_and_empty_marks(self):
        from cxr_engine.outputs.dicom_outputs.presentation_state import graphics

        with pytest.raises(ValueError, match="unknown annotation kind 'spline'"):
            graphics([Mark("spline", ((0, 0), (1, 1)))])
        assert graphics([Mark("ellipse", ((5, 5), (5, 9))), Mark("text", ((1, 1),), "")]) == ([], [])


def _narrow_film(identified_film: Path, out: Path, columns: int = 300, spacing=None, aspect_ratio=None) -> Path:
    """The identified film cropped to its first ``columns`` columns (not square, so a quarter turn shows),
    with the given Pixel Spacing or Pixel Aspect Ratio (none by default)."""
    from pydicom.uid import ExplicitVRLittleEndian

    ds = pydicom.dcmread(identified_film, force=True)
    pixels = np.ascontiguousarray(ds.pixel_array[:, :columns])
    ds.Columns, ds.PixelData = columns, pixels.tobytes()
    for keyword in ("PixelSpacing", "ImagerPixelSpacing", "PixelAspectRatio"):
        if keyword in ds:
            delattr(ds, keyword)
    if spacing is not None:
        ds.PixelSpacing = spacing
    if aspect_ratio is not None:
        ds.PixelAspectRatio = aspect_ratio
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    out.parent.mkdir(parents=True, exist_ok=True)
    ds.save_as(out, enforce_file_format=True)
    return out


def _pgm(path: Path) -> np.ndarray:
    import re

    data = path.read_bytes()
    header = re.match(rb"P5\s+(\d+)\s+(\d+)\s+(\d+)\s", data)
    width, height, top = (int(v) for v in header.groups())
    return np.frombuffer(data[header.end():], dtype=np.uint8 if top < 256 else ">u2").reshape(height, width)


class TestSpatialTransformation:
    """A film shown turned or flipped: the presentation state says so (PS3.3 C.10.6), so that it reopens
    as the reader saw it; it was always written upright."""

    VIEWS = {  # what the app composes: quarter turns counter-clockwise (a correction), mirrors, its own turns
        "none": lambda a: a, "turned back": lambda a: np.rot90(a), "mirrored": lambda a: a[:, ::-1],
        "flipped": lambda a: a[::-1], "turned back, mirrored": lambda a: np.rot90(a)[:, ::-1],
        "turned clockwise, flipped": lambda a: np.rot90(a, k=-1)[::-1],
        "turned twice, mirrored, flipped": lambda a: np.rot90(a, k=2)[:, ::-1][::-1],
        "mirrored, turned back thrice": lambda a: np.rot90(a[:, ::-1], k=3),
    }

    @pytest.mark.parametrize("name", VIEWS)
    def test_every_view_is_one_rotation_and_flip(self, name):
        from cxr_engine.outputs.dicom_outputs.presentation_state import SpatialTransformation

        view = self.VIEWS[name]
        film = np.arange(15).reshape(3, 5)  # not square: a quarter turn cannot pass for a mirror
        transformation = SpatialTransformation.of(view)
        assert np.array_equal(transformation.apply(film), view(film))
        top_left, bottom_right = transformation.displayed_area(3, 5)
        shown = view(film)
        # The corners are the stored pixels (column, row), from 1, that the view puts top left and bottom right.
        assert film[top_left[1] - 1, top_left[0] - 1] == shown[0, 0]
        assert film[bottom_right[1] - 1, bottom_right[0] - 1] == shown[-1, -1]

    def test_anything_else_is_refused(self):
        from cxr_engine.outputs.dicom_outputs.presentation_state import SpatialTransformation

        assert SpatialTransformation.of(lambda a: a.T) == SpatialTransformation(90, True)  # a diagonal mirror
        with pytest.raises(ValueError, match="quarter turns and mirrors"):
            SpatialTransformation.of(lambda a: a * 2)
        with pytest.raises(ValueError, match="0, 90, 180 or 270"):
            SpatialTransformation(45)

    @pytest.mark.skipif(shutil.which("dcmp2pgm") is None, reason="dcmtk is not installed (Debian: apt-get install dcmtk)")
    @pytest.mark.parametrize("rotation", (0, 90, 180, 270))
    @pytest.mark.parametrize("flip", (False, True))
    def test_dcmtk_shows_the_film_as_the_reader_saw_it(self, tmp_path, identified_film, classified, card, rotation,
                                                         flip):
        """dcmtk's presentation-state renderer (dcmp2pgm) applies the written state to the stored film: what it
        shows is the view, and no other of the eight."""
        from cxr_engine.outputs.dicom_outputs.presentation_state import SpatialTransformation

        film = _narrow_film(identified_film, tmp_path / "films" / "narrow.dcm")
        view = SpatialTransformation(rotation, flip)
        (gsps,) = DicomOutputWriter(tmp_path / "out", card, kinds=("gsps",)).write(
            read_image(film), classified[1], marks=MARKS[:1], inverted=True, spatial_transformation=view)
        ds = pydicom.dcmread(gsps.path)
        # written only for a view that is not the stored film's own
        assert (int(ds.get("ImageRotation", 0)), ds.get("ImageHorizontalFlip", "N")) == (rotation, "Y" if flip else "N")
        assert ("ImageRotation" in ds) == (view != SpatialTransformation())
        subprocess.run(["dcmp2pgm", str(film), str(tmp_path / "plain.pgm")], check=True, capture_output=True)
        subprocess.run(["dcmp2pgm", "-p", str(gsps.path), str(film), str(tmp_path / "state.pgm")], check=True,
                       capture_output=True)
        plain, shown = _pgm(tmp_path / "plain.pgm").astype(float), _pgm(tmp_path / "state.pgm").astype(float)

        def likeness(candidate):
            other = candidate.apply(plain)
            return np.corrcoef(other.ravel(), shown.ravel())[0, 1] if other.shape == shown.shape else -1.0

        assert likeness(view) > 0.99
        others = [SpatialTransformation(r, f) for r in (0, 90, 180, 270) for f in (False, True)]
        assert max(likeness(other) for other in others if other != view) < 0.95

    @pytest.mark.skipif(shutil.which("dcmp2pgm") is None, reason="dcmtk is not installed (Debian: apt-get install dcmtk)")
    @pytest.mark.parametrize("slope, intercept", [(1, -1000), (0.5, 20)])
    def test_a_film_with_a_rescale_reopens_in_the_window_shown(self, tmp_path, identified_film, classified, card,
                                                               slope, intercept):
        """The window is in modality units, and a presentation state replaces the film's own modality LUT: the
        state restates the rescale (found by a tester: a Rescale Intercept of -1000 reopened black)."""
        from cxr_engine.pixels.rendering import render
        from cxr_engine.pixels.windowing import Window

        film = _narrow_film(identified_film, tmp_path / "films" / "rescaled.dcm")
        ds = pydicom.dcmread(film)
        ds.RescaleSlope, ds.RescaleIntercept = slope, intercept
        ds.save_as(film, enforce_file_format=True)
        image = read_image(film)
        stored = pydicom.dcmread(film).pixel_array
        window = Window(float(np.median(stored)) * slope + intercept, 400.0 * slope)
        (gsps,) = DicomOutputWriter(tmp_path / "out", card, kinds=("gsps",)).write(
            image, classified[1], marks=MARKS[:1], window=(window.center, window.width), inverted=image.invert)
        subprocess.run(["dcmp2pgm", "-p", str(gsps.path), str(film), str(tmp_path / "state.pgm")], check=True,
                       capture_output=True)
        shown, expected = _pgm(tmp_path / "state.pgm").astype(float), render(image, window).astype(float)
        assert shown.std() > 20  # not one flat grey (or black)
        assert np.corrcoef(shown.ravel(), expected.ravel())[0, 1] > 0.99
        state = pydicom.dcmread(gsps.path)
        assert (float(state.RescaleSlope), float(state.RescaleIntercept)) == (slope, intercept)

    def test_a_film_with_non_square_pixels_keeps_its_aspect(self, tmp_path, identified_film, classified, card):
        """Presentation Pixel Aspect Ratio (C.10.4) from the stored film (highdicom writes 1\\1): a film whose
        rows lie twice as far apart as its columns is not shown squashed where the state is honoured."""
        cases = {"spacing": dict(spacing=[0.34, 0.17]), "ratio": dict(aspect_ratio=[1, 3]), "square": {}}
        expected = {"spacing": [2, 1], "ratio": [1, 3], "square": [1, 1]}
        for name, header in cases.items():
            film = _narrow_film(identified_film, tmp_path / "films" / f"{name}.dcm", **header)
            (gsps,) = DicomOutputWriter(tmp_path / name, card, kinds=("gsps",)).write(
                read_image(film), classified[1], marks=MARKS[:1])
            area = pydicom.dcmread(gsps.path).DisplayedAreaSelectionSequence[0]
            assert [int(v) for v in area.PresentationPixelAspectRatio] == expected[name], name
            assert "ImageRotation" not in pydicom.dcmread(gsps.path)  # shown as stored: no transformation written

    def test_a_ruler_on_a_film_shown_turned_measures_the_stored_pixels(self, tmp_path, identified_film, classified,
                                                                        card):
        """The app hands over the film as shown (turned back a quarter: its spacing swapped) and the marks on
        the stored film: a 200-pixel ruler along a stored row of 0.25 mm columns is 50.0 mm, not 100.0."""
        from cxr_engine.models.image_checks import reoriented
        from cxr_engine.outputs.dicom_outputs.presentation_state import SpatialTransformation

        film = _narrow_film(identified_film, tmp_path / "films" / "turned.dcm", spacing=[0.5, 0.25])  # 220 x 75 mm
        shown = reoriented(read_image(film), "rotated-90")
        assert shown.spacing_mm == (0.25, 0.5)
        (gsps,) = DicomOutputWriter(tmp_path / "out", card, kinds=("gsps",)).write(
            shown, classified[1], marks=[Mark("ruler", ((10.0, 10.0), (210.0, 10.0)))],
            spatial_transformation=SpatialTransformation(270))
        (text,) = pydicom.dcmread(gsps.path).GraphicAnnotationSequence[0].TextObjectSequence
        assert text.UnformattedTextValue == "50.0 mm"


class TestSeries:
    def test_one_series_per_kind_and_study(self, tmp_path, classified, card):
        image, heatmap_result = classified
        writer = DicomOutputWriter(tmp_path, card, kinds=("sc", "sr"))
        first = writer.write(image, heatmap_result, stem="a")
        second = writer.write(image, heatmap_result, stem="b", warnings=("another result",))
        assert [o.kind for o in first] == ["sc", "sr"]
        a, b = (pydicom.dcmread(o.path) for o in (first[0], second[0]))
        assert a.SeriesInstanceUID == b.SeriesInstanceUID and a.SeriesNumber == 9901
        assert a.SOPInstanceUID != b.SOPInstanceUID
        # Each output carries its film's Instance Number (16), not a count within the run: the same object (same
        # UID) written in a run of one film or of a whole folder had 1 in one and 2 in the other.
        assert a.InstanceNumber == b.InstanceNumber == 16
        alone = DicomOutputWriter(tmp_path / "alone", card, kinds=("sc",)).write(image, heatmap_result, stem="b",
                                                                                warnings=("another result",))
        again = pydicom.dcmread(alone[0].path)
        assert again.SOPInstanceUID == b.SOPInstanceUID and again.InstanceNumber == b.InstanceNumber

    def test_a_rerun_makes_the_same_uids_so_a_resend_duplicates_nothing(self, tmp_path, classified, card):
        """Two runs (two writers) on the same film and result: the same series and SOP Instance UIDs for
        every kind, annotations included; another result (a warning more) is a new instance of the same
        series; de-identified objects share nothing with the identified ones (tester finding 15)."""
        image, heatmap_result = classified

        def uids(folder, **options):
            writer = DicomOutputWriter(tmp_path / folder, card, deidentify=options.pop("deidentify", False))
            return {o.kind: (str(pydicom.dcmread(o.path).SeriesInstanceUID), o.sop_instance_uid)
                    for o in writer.write(image, heatmap_result, marks=MARKS, window=(1200.0, 800.0), **options)}

        first, again = uids("run1"), uids("run2")
        assert set(first) == {"sc", "sr", "pdf", "gsps"} and first == again
        other = uids("run3", warnings=("another result",))
        for kind in ("sc", "sr", "pdf"):
            assert other[kind][0] == first[kind][0] and other[kind][1] != first[kind][1], kind
        assert other["gsps"] == first["gsps"]  # the same marks on the same film
        anonymous = uids("deid", deidentify=True)
        assert not {u for pair in anonymous.values() for u in pair} & {u for pair in first.values() for u in pair}

    def test_a_film_corrected_to_another_patient_gets_new_instance_uids(self, tmp_path, identified_film, classified,
                                                                        card):
        """The same film (same UIDs, pixels and result) whose header was corrected to another patient: every object
        names the other patient, so each is a new instance (one UID, one object: PS3.3 C.12.1.1.1, PS3.5 9); they
        kept the UIDs (tester finding). A rerun on the corrected film makes its UIDs again."""
        image, heatmap_result = classified
        ds = pydicom.dcmread(identified_film, force=True)
        ds.PatientName, ds.PatientID, ds.PatientBirthDate = "ROE^RICHARD", "PID-123123", "19700101"
        corrected_path = tmp_path / "corrected" / "film.dcm"
        corrected_path.parent.mkdir()
        ds.save_as(corrected_path, enforce_file_format=True)
        corrected = read_image(corrected_path)

        def uids(folder, film):
            written = DicomOutputWriter(tmp_path / folder, card).write(film, heatmap_result, marks=MARKS,
                                                                      window=(1200.0, 800.0))
            return {o.kind: (str(pydicom.dcmread(o.path).SeriesInstanceUID), o.sop_instance_uid,
                             str(pydicom.dcmread(o.path).PatientID)) for o in written}

        first, other, again = uids("first", image), uids("other", corrected), uids("again", corrected)
        assert set(first) == set(other) == {"sc", "sr", "pdf", "gsps"}
        for kind in first:
            assert (first[kind][2], other[kind][2]) == ("PID-987654", "PID-123123"), kind
            assert other[kind][0] == first[kind][0] and other[kind][1] != first[kind][1], kind
        assert again == other

    def test_the_pdfs_uid_follows_what_it_prints(self, tmp_path, identified_film, classified, card):
        """The report prints the film's Series Description (not copied into the other objects): a film whose header
        says another gets another report, so another PDF instance; the objects that do not show it keep theirs. The
        PDF's UID came from the result alone (tester finding)."""
        image, heatmap_result = classified
        ds = pydicom.dcmread(identified_film, force=True)
        ds.SeriesDescription = "CHEST PA ERECT (CORRECTED)"
        path = tmp_path / "described" / "film.dcm"
        path.parent.mkdir()
        ds.save_as(path, enforce_file_format=True)
        described = read_image(path)
        assert described.metadata.series_description != image.metadata.series_description

        def uids(folder, film):
            return {o.kind: o.sop_instance_uid
                    for o in DicomOutputWriter(tmp_path / folder, card).write(film, heatmap_result)}

        first, other, again = uids("first", image), uids("other", described), uids("again", described)
        assert other["pdf"] != first["pdf"] and again == other
        assert (other["sc"], other["sr"]) == (first["sc"], first["sr"])

    def test_never_writes_into_a_source_folder(self, tmp_path, dicom_dir, classifier, card):
        film = tmp_path / "study" / "film.dcm"
        film.parent.mkdir()
        shutil.copy(dicom_dir / FILM, film)
        image = read_image(film)
        heatmap_result = classifier.predict_with_heatmap(image)
        with pytest.raises(DicomOutputError, match="holds the input .*film.dcm; source folders are never written"):
            DicomOutputWriter(film.parent, card).write(image, heatmap_result)
        with pytest.raises(DicomOutputError, match="lies in the folder of the input"):
            DicomOutputWriter(film.parent / "ai", card).write(image, heatmap_result)
        with pytest.raises(DicomOutputError, match="lies inside the input folder"):  # the session's other inputs
            DicomOutputWriter(tmp_path / "ai", card, inputs=(tmp_path,)).write(image, heatmap_result)
        assert sorted(p.name for p in tmp_path.rglob("*") if p.is_file()) == ["film.dcm"]
        written = DicomOutputWriter(tmp_path / "ai", card, kinds=("sr",)).write(image, heatmap_result)  # beside the study
        assert [w.path.parent for w in written] == [tmp_path / "ai"]

    def test_a_raster_image_has_no_study(self, tmp_path, classifier, card):
        import cv2

        png = tmp_path / "in" / "film.png"
        png.parent.mkdir()
        cv2.imwrite(str(png), np.tile(np.linspace(0, 255, 256, dtype=np.uint8), (256, 1)))
        image = read_image(png)
        with pytest.raises(DicomOutputError, match="not a readable DICOM file|no StudyInstanceUID"):
            DicomOutputWriter(tmp_path / "out", card).write(image, classifier.predict_with_heatmap(image))


def test_a_source_with_invalid_header_values(tmp_path, dicom_dir, classifier, card):
    """966_fixed.dcm stores a hash as Patient's Birth Date (DA): the outputs leave it empty."""
    image = read_image(dicom_dir / "966_fixed.dcm")
    written = DicomOutputWriter(tmp_path, card).write(image, classifier.predict_with_heatmap(image))
    assert [o.kind for o in written] == ["sc", "sr", "pdf"]
    for obj in written:
        ds = pydicom.dcmread(obj.path)
        assert ds.PatientBirthDate == "" and ds.PatientID == image.metadata.patient_id


def test_any_failure_names_the_film(tmp_path, classified, card, monkeypatch):
    from cxr_engine.outputs.dicom_outputs import secondary_capture

    image, heatmap_result = classified
    monkeypatch.setattr(secondary_capture.SCImage, "from_ref_dataset",
                        classmethod(lambda cls, *a, **k: (_ for _ in ()).throw(TypeError("library says no"))))
    with pytest.raises(DicomOutputError, match="could not be made: TypeError: library says no") as error:
        DicomOutputWriter(tmp_path, card).write(image, heatmap_result)
    assert error.value.path == Path(image.path)


class TestDeidentified:
    def _all_values(self, ds) -> list[str]:
        values = []
        for element in ds.iterall():
            if element.VR not in ("SQ", "OB", "OW", "UN"):
                values.append(str(element.value))
        return values

    def test_no_annex_e_identifier_survives(self, deidentified, identified_film):
        from pypdf import PdfReader
        import io

        source = _source(identified_film)
        secrets = [v for v in IDENTIFIED.values()] + ["DOE", "JANE", "HOUSE", "Elsewhere",
                   str(source.StudyInstanceUID), str(source.SeriesInstanceUID), str(source.SOPInstanceUID)]
        for kind, obj in deidentified.items():
            ds = pydicom.dcmread(obj.path)
            values = self._all_values(ds)
            joined = " | ".join(values)
            for secret in secrets:
                # Short values ("F") are compared whole; longer ones are searched inside every value.
                assert secret not in values and (len(secret) < 5 or secret not in joined), f"{kind}: {secret!r} survived"
            for keyword in ANNEX_E_EMPTY_OR_ABSENT:
                assert not str(ds.get(keyword, "") or ""), f"{kind}: {keyword} = {ds.get(keyword)!r}"
            assert ds.PatientIdentityRemoved == "YES"
            assert ds.DeidentificationMethodCodeSequence[0].CodeValue == "113100"
            assert str(ds.PatientID).startswith("ANON-") and str(ds.PatientName) == str(ds.PatientID)
            if kind == "pdf":
                text = PdfReader(io.BytesIO(pdf_bytes(ds))).pages[0].extract_text()
                for secret in ("DOE", "JANE", "PID-987654", "ACC-55512", "1961", "Elsewhere"):
                    assert secret not in text, f"the PDF shows {secret!r}"

    def test_one_study_stays_one_study(self, deidentified, identified_film):
        source = _source(identified_film)
        studies = {pydicom.dcmread(o.path).StudyInstanceUID for o in deidentified.values()}
        assert len(studies) == 1 and source.StudyInstanceUID not in studies
        sc = pydicom.dcmread(deidentified["sc"].path)
        referenced = sc.SourceImageSequence[0].ReferencedSOPInstanceUID
        assert referenced != source.SOPInstanceUID
        sr = highdicom.sr.srread(deidentified["sr"].path)
        assert sr.content.get_image_measurement_groups()[0].source_images[0].referenced_sop_instance_uid == referenced

    def test_two_patients_get_two_pseudonyms(self):
        from cxr_engine.outputs.dicom_outputs.source import Deidentifier

        deid = Deidentifier()
        assert deid.pseudonym("", "A^B", "") != deid.pseudonym("", "C^D", "")
        assert deid.pseudonym("1", "A^B", "") == deid.pseudonym("1", "A^B", "")
        assert Deidentifier().pseudonym("1", "A^B", "") != deid.pseudonym("1", "A^B", "")  # salted per session


@pytest.mark.skipif(shutil.which("dcmdump") is None, reason="dcmtk is not installed (Debian: apt-get install dcmtk)")
class TestDcmtk:
    """dcmtk's own parsers read every object; their warnings are the closing note's list."""

    @pytest.mark.parametrize("which", ["outputs", "deidentified"])
    def test_dcmdump_parses_every_object(self, which, request):
        for obj in request.getfixturevalue(which).values():
            run = subprocess.run(["dcmdump", str(obj.path)], capture_output=True, text=True)
            assert run.returncode == 0, run.stderr
            assert "E:" not in run.stderr and "W:" not in run.stderr, run.stderr

    @pytest.mark.parametrize("which", ["outputs", "deidentified"])
    def test_dsrdump_reads_the_report(self, which, request):
        sr = request.getfixturevalue(which)["sr"].path
        run = subprocess.run(["dsrdump", str(sr)], capture_output=True, text=True)
        assert run.returncode == 0, run.stderr
        assert "Comprehensive SR Document" in run.stdout
        assert "Probability of Normal" in run.stdout and "Probability of COVID-19" in run.stdout
        assert any(f"({code},SCT" in run.stdout for code in ("17621005", "233604007", "840539006"))
        # dcmtk's VR checker knows single-byte character sets only and says so for UTF-8; that note
        # is about dcmtk, not the file (the value itself must read, see the TEXT line below).
        problems = [line for line in run.stderr.splitlines() if line.startswith(("E:", "W:"))
                    and "VR checker does not support this Specific Character Set: ISO_IR 192" not in line]
        assert problems == [], problems
        if which == "outputs":
            assert 'TEXT:(,,"Suitability warning")="a test warning \u2013 turned 1' in run.stdout, run.stdout  # dsrdump cuts long text


def test_encapsulated_report_footer_names_the_app_once(outputs):
    """Finding 17: the PDF inside --dicom-out said "CXR Reader CXR Reader 0.1.0" in its footer."""
    pypdf = pytest.importorskip("pypdf")
    import io

    from cxr_engine import __version__

    reader = pypdf.PdfReader(io.BytesIO(pdf_bytes(pydicom.dcmread(outputs["pdf"].path))))
    text = " ".join(page.extract_text() for page in reader.pages)
    assert f"CXR Reader {__version__} ·" in text and "CXR Reader CXR Reader" not in text
    assert "contour" not in text  # the default film's heat-map is drawn in colour


class TestCharacterSet:
    """Finding 4: a source without Specific Character Set gave an SR with a raw 0xB0 for "°" and "?"
    for an en dash, no (0008,0005), and dsrdump failed on the TEXT item."""

    def test_outputs_with_non_ascii_text_are_utf8(self, outputs, identified_film):
        assert "SpecificCharacterSet" not in _source(identified_film)
        sr = pydicom.dcmread(outputs["sr"].path, stop_before_pixels=True)
        assert sr.SpecificCharacterSet == "ISO_IR 192"
        gsps = pydicom.dcmread(outputs["gsps"].path)  # the angle's label reads "90.0°"
        assert gsps.SpecificCharacterSet == "ISO_IR 192"
        assert any("\u00b0" in str(e.value) for e in gsps.iterall() if e.VR == "ST")

    def test_all_ascii_outputs_keep_the_default_repertoire(self, outputs, deidentified):
        for obj in [outputs["sc"], deidentified["sc"], deidentified["sr"], deidentified["pdf"]]:
            ds = pydicom.dcmread(obj.path, stop_before_pixels=True)
            assert [e for e in ds.iterall() if e.VR in ("PN", "LO", "SH", "UT", "ST", "LT") and not str(e.value).isascii()] == []
            assert "SpecificCharacterSet" not in ds, obj.kind

    def test_sr_text_reads_back_exactly(self, outputs, recwarn):
        ds = pydicom.dcmread(outputs["sr"].path)
        texts = []

        def walk(items):
            for item in items:
                if item.ValueType == "TEXT":
                    texts.append(item.TextValue)
                walk(item.get("ContentSequence", []))

        walk(ds.ContentSequence)
        assert NON_ASCII_WARNING in texts
        assert NON_ASCII_WARNING.encode("utf-8") in outputs["sr"].path.read_bytes()
        assert not [w for w in recwarn if "encode" in str(w.message).lower()]

    def test_non_ascii_patient_name_is_kept(self, tmp_path, dicom_dir, classifier, card):
        ds = pydicom.dcmread(dicom_dir / FILM, force=True)
        ds.SpecificCharacterSet = "ISO_IR 100"
        ds.PatientName = "M\u00fcller^J\u00f6rg"
        source = tmp_path / "study" / "latin1.dcm"
        source.parent.mkdir()
        ds.save_as(source, enforce_file_format=True)
        image = read_image(source)
        out = tmp_path / "out"
        out.mkdir()
        written = DicomOutputWriter(out, card, kinds=("sr",)).write(image, classifier.predict_with_heatmap(image),
                                                                     warnings=(NON_ASCII_WARNING,))
        sr = pydicom.dcmread(written[0].path)
        assert str(sr.PatientName) == "M\u00fcller^J\u00f6rg"
        run = subprocess.run(["dsrdump", str(written[0].path)], capture_output=True, text=True) \
            if shutil.which("dsrdump") else None
        if run is not None:
            assert run.returncode == 0, run.stderr


def test_cli_dicom_out_without_torch_and_offline(tmp_path, dicom_dir):
    """``cxr-classify --dicom-out`` as the lite bundle runs it: no torch, no network."""
    from test_without_torch import CLI

    study = tmp_path / "in"
    study.mkdir()
    shutil.copy(dicom_dir / FILM, study / FILM)
    shutil.copy(dicom_dir / "RG1_J2KI.dcm", study / "RG1_J2KI.dcm")
    out = tmp_path / "dicom"
    run = subprocess.run([sys.executable, "-c", "import json\n" + CLI, str(study), "--model", str(CARD),
                          "--backend", "onnx", "--dicom-out", str(out), "--csv", str(tmp_path / "r.csv"), "-q"],
                         capture_output=True, text=True, cwd=REPO, timeout=300)
    assert run.returncode == 0, run.stderr
    result = json.loads(run.stdout.strip().splitlines()[-1])
    assert result == {"code": 0, "torch_imported": False}
    written = sorted(p.name for p in out.iterdir())
    assert len(written) == 6 and all(name.endswith(("_sc.dcm", "_sr.dcm", "_pdf.dcm")) for name in written)
    for path in out.iterdir():
        ds = pydicom.dcmread(path)
        source = _source(study / (FILM if FILM.removesuffix(".dcm") in path.name else "RG1_J2KI.dcm"))
        assert ds.StudyInstanceUID == source.StudyInstanceUID


def test_cli_deidentified_outputs_are_named_by_number_only(tmp_path, dicom_dir):
    """A file name is often the patient's: de-identified outputs were named ``00000_DOE_JANE_1_sc.dcm``
    (privacy tester's finding 2)."""
    from cxr_engine.cli import main

    study = tmp_path / "DOE_JANE_PAT-4711"
    study.mkdir()
    shutil.copy(dicom_dir / FILM, study / "DOE_JANE_1.dcm")
    out = tmp_path / "dicom"
    assert main([str(study), "--model", str(CARD), "--backend", "onnx", "--dicom-out", str(out), "--deidentify",
                 "--csv", str(tmp_path / "r.csv"), "-q"]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["00000_pdf.dcm", "00000_sc.dcm", "00000_sr.dcm"]
    identified = tmp_path / "identified"
    assert main([str(study), "--model", str(CARD), "--backend", "onnx", "--dicom-out", str(identified),
                 "--csv", str(tmp_path / "r2.csv"), "-q"]) == 0
    assert sorted(p.name for p in identified.iterdir())[0] == "00000_DOE_JANE_1_pdf.dcm"  # not de-identified: kept


def test_cli_checks_dicom_options_before_any_work(tmp_path, capsys):
    from cxr_engine.cli import EXIT_USAGE, main

    afile = tmp_path / "afile"
    afile.write_text("x")
    code = main([str(tmp_path), "--dicom-out", str(afile / "sub"), "--send", "nonsense", "--deidentify"])
    assert code == EXIT_USAGE
    err = capsys.readouterr().err
    assert f"--dicom-out {afile / 'sub'}: {afile} is a file, not a folder" in err
    assert "--send 'nonsense': expected AE@HOST:PORT" in err


def test_a_capture_says_out_of_scope_only_when_the_csv_does(tmp_path, dicom_dir, classifier, card):
    """Tester (2026-11-30): every dicom_rsna file carries the "secondary capture" warning, and its SC said
    "OUTSIDE THE MODEL'S SCOPE" and its SR "out of scope: Yes" while the CSV, the app and the PDF kept it
    in scope. Now a warning is listed, and the heading and the flag follow ``out_of_scope``."""
    from cxr_engine.models.image_checks import scope_warning
    from cxr_engine.outputs.dicom_outputs.writer import band_warnings

    image = read_image(dicom_dir / "Fake_MONOHR1.dcm")
    heatmap_result = classifier.predict_with_heatmap(image)
    note = "secondary capture: a converted or digitised copy, not the original radiograph"
    rows, cols = image.display_shape
    height = line_height(cols)
    for folder, scope, flag in (("in", "", "373067005"), ("out", "inverted", "373066001")):
        written = DicomOutputWriter(tmp_path / folder, card, kinds=("sc", "sr")).write(
            image, heatmap_result, warnings=(note,), out_of_scope=scope)
        by_kind = {w.kind: w for w in written}
        band = pydicom.dcmread(by_kind["sc"].path).pixel_array[rows:]
        lines = 3 + len(band_warning_lines(band_warnings((note,), scope), bool(scope)))
        assert band.shape[0] == lines * height
        heading = band[2 * height:3 * height]  # the line after the two result lines
        red = heading[(heading[..., 0] > 200) & (heading[..., 1] < 120)]
        assert (len(red) > 50) == bool(scope)
        group = highdicom.sr.srread(by_kind["sr"].path).content.get_image_measurement_groups()[0]
        assert {q.name.meaning: q.value.value for q in group.get_qualitative_evaluations()} == {
            "Image outside the model's intended scope": flag}
    assert band_warnings((note,), "inverted")[0] == scope_warning("inverted")


def _band_heading_colour(band: np.ndarray, height: int) -> str:
    """The colour of the band's third line (the heading after the two result lines): red, amber, grey or none."""
    line = band[2 * height:3 * height].astype(int)
    lit = line[line.max(axis=2) > 180]
    if len(lit) < 50:
        return "none"
    r, g, b = np.median(lit, axis=0)
    if r > 200 and g < 120:
        return "red"
    if r > 200 and g > 150 and b < 120:
        return "amber"
    return "grey" if abs(r - g) < 25 and abs(g - b) < 25 else f"other {r, g, b}"


@pytest.mark.parametrize("scope, heading, colour, flag", [
    ("uncertain", "CLOSE CALL", "grey", "373067005"),  # No: a close call is no question of scope
    ("child-chest", "POSSIBLY OUTSIDE", "amber", "261665006"),  # Unknown: in scope if the patient is an adult
    ("child-chest;uncertain", "POSSIBLY OUTSIDE", "amber", "261665006"),
    ("inverted;uncertain", "OUTSIDE THE MODEL'S SCOPE", "red", "373066001"),  # Yes
])
def test_the_dicom_outputs_follow_the_apps_three_banners(tmp_path, dicom_dir, classifier, card, scope, heading,
                                                         colour, flag):
    """Tester: a close call's SC band said "OUTSIDE THE MODEL'S SCOPE - RESULT NOT RELIABLE" and its SR "Image
    outside the model's intended scope: Yes" while the app and the PDF showed it grey, as may be in scope. The
    band's heading and the SR's flag now follow ``image_checks.banner_kind``."""
    from cxr_engine.outputs.dicom_outputs.secondary_capture import scope_heading

    image = read_image(dicom_dir / FILM)
    heatmap_result = classifier.predict_with_heatmap(image)
    written = {w.kind: w for w in DicomOutputWriter(tmp_path, card, kinds=("sc", "sr")).write(
        image, heatmap_result, out_of_scope=scope)}
    rows, cols = image.display_shape
    band = pydicom.dcmread(written["sc"].path).pixel_array[rows:]
    assert _band_heading_colour(band, line_height(cols)) == colour
    from cxr_engine.models.image_checks import banner_kind

    text, _ = scope_heading(banner_kind(scope))
    assert text.startswith(heading) and (colour == "red") == ("NOT RELIABLE" in text)
    group = highdicom.sr.srread(written["sr"].path).content.get_image_measurement_groups()[0]
    assert [q.value.value for q in group.get_qualitative_evaluations()] == [flag]


def test_cli_dicom_outputs_of_a_real_close_call_say_close_call(tmp_path, shared_data):
    """The tester's film: ``cxr-classify 0004cfab….dcm --dicom-out`` (a close call: the app's grey banner) made a red
    "OUTSIDE THE MODEL'S SCOPE" band and an SR flag Yes."""
    import csv

    from cxr_engine.cli import main

    film = shared_data / "dicom_rsna" / RSNA_FILM
    if not film.exists():
        pytest.skip(f"not found: {film}")
    out = tmp_path / "dicom"
    assert main([str(film), "--backend", "onnx", "--device", "cpu", "--no-isolation", "-q", "--dicom-out", str(out),
                 "--csv", str(tmp_path / "r.csv")]) == 0
    with open(tmp_path / "r.csv", newline="", encoding="utf-8") as handle:
        row = next(csv.DictReader(handle))
    if row["out_of_scope"] != "uncertain":
        pytest.skip(f"the default model does not find {RSNA_FILM} a close call ({row['out_of_scope']!r})")
    sc = pydicom.dcmread(next(out.glob("*_sc.dcm")))
    band = sc.pixel_array[read_image(film).display_shape[0]:]  # the band under the film (1024 px: not shrunk)
    assert _band_heading_colour(band, line_height(sc.Columns)) == "grey"
    group = highdicom.sr.srread(next(out.glob("*_sr.dcm"))).content.get_image_measurement_groups()[0]
    assert {q.name.meaning: q.value.meaning for q in group.get_qualitative_evaluations()} == {
        "Image outside the model's intended scope": "No"}


def test_a_patients_age_that_is_not_an_age_string_is_left_out(shared_data, tmp_path):
    """The RSNA films store Patient's Age ``51`` (AS is three digits and D/W/M/Y, PS3.5 6.2): copied as it is,
    every output failed ``dcmpschk``; a valid one is copied."""
    from pydicom import dcmread

    from cxr_engine.outputs.dicom_outputs.source import read_source_header, reference_dataset

    rsna = sorted((shared_data / "dicom_rsna").glob("*.dcm"))[0]
    assert dcmread(rsna, stop_before_pixels=True).PatientAge == "51"
    assert "PatientAge" not in reference_dataset(read_source_header(rsna))
    valid = dcmread(rsna)
    valid.PatientAge = "051Y"
    valid.save_as(tmp_path / "valid_age.dcm")
    assert reference_dataset(read_source_header(tmp_path / "valid_age.dcm")).PatientAge == "051Y"
