"""Coded concepts of the DICOM outputs: SNOMED CT and DICOM codes where they exist, else the
project's private coding scheme, declared in every SR (Coding Scheme Identification Sequence,
PS3.3 C.12.1.1.4) and in ``docs/dicom_outputs.md``.
"""
from __future__ import annotations

from highdicom.coding_schemes import CodingSchemeIdentificationItem
from highdicom.sr import CodedConcept

#: The private coding scheme (PS3.16 8.2: a designator starting "99" is a local scheme).
PRIVATE_SCHEME = "99CXRREADER"
PRIVATE_SCHEME_NAME = "CXR Reader private codes"

#: Each class the bundled models know, as the finding it stands for (SNOMED CT).
CLASS_FINDINGS: dict[str, CodedConcept] = {
    "normal": CodedConcept("17621005", "SCT", "Normal"),
    "pneumonia": CodedConcept("233604007", "SCT", "Pneumonia"),
    "covid": CodedConcept("840539006", "SCT", "COVID-19"),
}

PLAIN_CHEST_XRAY = CodedConcept("399208008", "SCT", "Plain chest X-ray")
YES = CodedConcept("373066001", "SCT", "Yes")
NO = CodedConcept("373067005", "SCT", "No")
#: The out-of-scope flag of a film only possibly outside the model's scope (``image_checks.MAYBE``).
UNKNOWN = CodedConcept("261665006", "SCT", "Unknown")
NO_UNITS = CodedConcept("1", "UCUM", "no units")

#: Named in the Encapsulated PDF's Concept Name Code Sequence (the document's kind; LOINC).
DIAGNOSTIC_IMAGING_REPORT = CodedConcept("18748-4", "LN", "Diagnostic imaging report")

OUT_OF_SCOPE = CodedConcept("CXR0001", PRIVATE_SCHEME, "Image outside the model's intended scope")
SUITABILITY_WARNING = CodedConcept("CXR0002", PRIVATE_SCHEME, "Suitability warning")
#: The TEXT that replaces the coded Finding of a film outside the model's scope (``structured_report``).
NOT_A_FINDING = CodedConcept("CXR0003", PRIVATE_SCHEME, "AI result not recorded as a finding")
#: The TEXT of a de-identified SR that says what de-identification leaves (``deidentify.pixel_text_note``).
DEIDENTIFICATION_NOTE = CodedConcept("CXR0004", PRIVATE_SCHEME, "De-identification note")


def probability_concept(cls: str) -> CodedConcept:
    """The private concept "Probability of <class>" for a model class (``normal`` → CXR-P-normal)."""
    from ...models.model_card import CLASS_DISPLAY_NAMES

    return CodedConcept(f"CXR-P-{cls}"[:16], PRIVATE_SCHEME, f"Probability of {CLASS_DISPLAY_NAMES.get(cls, cls)}")


def finding_concept(cls: str) -> CodedConcept:
    """The SNOMED CT concept of a class; a private one for a class SNOMED CT has no code for here."""
    from ...models.model_card import CLASS_DISPLAY_NAMES

    return CLASS_FINDINGS.get(cls) or CodedConcept(f"CXR-C-{cls}"[:16], PRIVATE_SCHEME,
                                                   CLASS_DISPLAY_NAMES.get(cls, cls))


def private_scheme_item() -> CodingSchemeIdentificationItem:
    return CodingSchemeIdentificationItem(designator=PRIVATE_SCHEME, name=PRIVATE_SCHEME_NAME,
                                          responsible_organization="CXR Reader project")
