"""The PDF report as an Encapsulated PDF instance (PS3.3 A.45.1).

highdicom has no class for this IOD, so it is built on ``highdicom.base.SOPClass`` (patient,
study, series and SOP common modules) with the Encapsulated Document module added here.
"""
from __future__ import annotations

from datetime import datetime

from highdicom.base import SOPClass
from pydicom.dataset import Dataset
from pydicom.uid import EncapsulatedPDFStorage, ExplicitVRLittleEndian

from . import codes as cxr_codes

DOCUMENT_TITLE = "CXR Reader AI summary (research use only)"


class PdfNotValid(ValueError):
    """The bytes given are not a PDF document."""


def build_encapsulated_pdf(reference: Dataset, pdf: bytes, *, series_instance_uid: str, series_number: int,
                           sop_instance_uid: str, instance_number: int, manufacturer: str,
                           software_version: str, title: str = DOCUMENT_TITLE) -> SOPClass:
    """An Encapsulated PDF instance holding ``pdf`` in ``reference``'s study (Modality DOC), Burned In
    Annotation YES (the report shows identifiers unless it was de-identified), the source image in
    Source Instance Sequence (0042,0013). Raises ``PdfNotValid`` when ``pdf`` does not start with
    ``%PDF-``."""
    if not pdf.startswith(b"%PDF-"):
        raise PdfNotValid("the encapsulated document is not a PDF (no %PDF- header)")
    now = datetime.now()
    doc = SOPClass(
        study_instance_uid=reference.StudyInstanceUID, series_instance_uid=series_instance_uid,
        series_number=series_number, sop_instance_uid=sop_instance_uid, sop_class_uid=EncapsulatedPDFStorage,
        instance_number=instance_number, modality="DOC", manufacturer=manufacturer,
        transfer_syntax_uid=ExplicitVRLittleEndian, patient_id=reference.PatientID,
        patient_name=reference.PatientName, patient_birth_date=reference.PatientBirthDate,
        patient_sex=reference.PatientSex, accession_number=reference.AccessionNumber,
        study_id=reference.StudyID, study_date=reference.StudyDate, study_time=reference.StudyTime,
        referring_physician_name=reference.ReferringPhysicianName,
        series_description="CXR Reader AI summary (research use only)", software_versions=software_version,
        content_date=now.date(), content_time=now.time(),
        specific_character_set=reference.get("SpecificCharacterSet"),
    )
    doc.copy_patient_and_study_information(reference)
    # SC Equipment module (PS3.3 C.8.6.1): a workstation made this document.
    doc.ConversionType = "WSD"
    # Encapsulated Document module (PS3.3 C.24.2).
    doc.InstanceNumber = instance_number
    doc.AcquisitionDateTime = now.strftime("%Y%m%d%H%M%S")
    doc.BurnedInAnnotation = "YES"
    doc.DocumentTitle = title[:64]
    concept = Dataset()
    concept.CodeValue = cxr_codes.DIAGNOSTIC_IMAGING_REPORT.value
    concept.CodingSchemeDesignator = cxr_codes.DIAGNOSTIC_IMAGING_REPORT.scheme_designator
    concept.CodeMeaning = cxr_codes.DIAGNOSTIC_IMAGING_REPORT.meaning
    doc.ConceptNameCodeSequence = [concept]
    doc.MIMETypeOfEncapsulatedDocument = "application/pdf"
    source = Dataset()
    source.ReferencedSOPClassUID = reference.SOPClassUID
    source.ReferencedSOPInstanceUID = reference.SOPInstanceUID
    doc.SourceInstanceSequence = [source]
    doc.EncapsulatedDocumentLength = len(pdf)
    doc.EncapsulatedDocument = pdf + (b"\x00" if len(pdf) % 2 else b"")  # OB values have even length
    for keyword in ("PatientIdentityRemoved", "DeidentificationMethod", "DeidentificationMethodCodeSequence"):
        if keyword in reference:
            setattr(doc, keyword, reference[keyword].value)
    return doc


def pdf_bytes(dataset: Dataset) -> bytes:
    """The PDF held by an Encapsulated PDF dataset, without the padding byte."""
    data = bytes(dataset.EncapsulatedDocument)
    length = dataset.get("EncapsulatedDocumentLength")
    return data[:int(length)] if length is not None else data
