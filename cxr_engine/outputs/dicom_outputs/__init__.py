"""DICOM outputs of a classification, built with highdicom: a Secondary Capture image, a
Comprehensive SR and the PDF report as an Encapsulated PDF, in the source film's study, optionally
de-identified (PS3.15 Annex E). Qt-free; ``docs/dicom_outputs.md`` describes the objects."""
from .writer import KINDS, DicomOutputError, DicomOutputWriter, WrittenObject

__all__ = ["KINDS", "DicomOutputError", "DicomOutputWriter", "WrittenObject"]
