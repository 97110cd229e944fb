"""The Comprehensive SR of one classification: a TID 1500 Measurement Report (highdicom) whose one
measurement group (TID 1501) names the algorithm (TID 4019: model name and version), holds each
class's probability, the most probable class as the group's Finding (SNOMED CT), the out-of-scope
flag (the CSV's and the app's out-of-scope verdict) with each suitability warning, and references the
source image.

The flag follows the app's three banners (``image_checks.banner_kind``): Yes for a film outside the model's
scope, Unknown for one possibly outside (a child's chest in a file without an age), No in scope and for a close
call (the model unsure between its classes: no question of scope).

A flagged film (``scope_score.out_of_scope``: inverted, lateral, a child's chest, a close call, ...) gets
no coded Finding: TID 1501's Finding row (121071, DCM) is user-optional, and a PACS or a registry that reads
coded findings would take "Finding = COVID-19" for a finding whatever the flag beside it says. The
probabilities stay (they are what the model computed), and a TEXT "AI result not recorded as a finding" names
the reasons (or the close call) and the class that was not recorded.
"""
from __future__ import annotations

from typing import Sequence

from highdicom.sr import (
    AlgorithmIdentification,
    ComprehensiveSR,
    DeviceObserverIdentifyingAttributes,
    Measurement,
    MeasurementReport,
    MeasurementsAndQualitativeEvaluations,
    ObservationContext,
    ObserverContext,
    QualitativeEvaluation,
    RelationshipTypeValues,
    SourceImageForMeasurementGroup,
    TextContentItem,
    TrackingIdentifier,
)
from pydicom.dataset import Dataset
from pydicom.sr.codedict import codes

from ...models.classifier import Prediction
from . import codes as cxr_codes

TRACKING_LABEL = "CXR Reader classification"


def algorithm_identification(model_name: str, model_version: str, parameters: Sequence[str] = ()) -> AlgorithmIdentification:
    """TID 4019 for a model: ``model_version`` is e.g. the weights' SHA-256 prefix (LO: 64 characters)."""
    return AlgorithmIdentification(name=model_name[:64], version=model_version[:64],
                                   parameters=[p[:64] for p in parameters] or None)


def build_structured_report(reference: Dataset, prediction: Prediction, *, model_version: str,
                            warnings: Sequence[str], series_instance_uid: str, series_number: int,
                            sop_instance_uid: str, instance_number: int, manufacturer: str,
                            device_uid: str, software_version: str, parameters: Sequence[str] = (),
                            out_of_scope: str = "", deidentification_note: str = "",
                            referenced_frame: int | None = None) -> ComprehensiveSR:
    """The Comprehensive SR (PS3.3 A.35.3) for ``prediction`` of the image ``reference`` describes.

    ``reference`` (``source.reference_dataset``) gives the patient, study and the source image,
    which is the SR's evidence and the measurement group's source image. Probabilities are
    measurements in UCUM unit "1" (0–1), one per class, named by the private concepts
    "Probability of <class>" (``codes.probability_concept``). ``warnings`` become one TEXT item each
    (the film's whole warnings, as the CSV's: the scope note, the averaged networks' disagreement, a secondary
    capture, a missing header value). ``out_of_scope`` (the image checks', the header's, the scope heads' and the
    uncertainty reasons, ``""`` in scope: the verdict the CSV and the app give) sets the out-of-scope flag by the
    app's banner kind (:func:`scope_flag`: Yes, Unknown for possibly, No for a close call) and replaces the coded
    Finding by a TEXT (module docstring). ``deidentification_note`` (a de-identified SR's
    ``deidentify.pixel_text_note``) is one TEXT "De-identification note". ``referenced_frame`` is the number of the
    frame classified of a multi-frame film (1 for the first), the source image's Referenced Frame Number (PS3.3
    C.18.4 Image Reference Macro, Table 10-3: Type 1C, required when the reference is not to every frame); None for
    a single-frame film.
    """
    algorithm = algorithm_identification(prediction.model_name, model_version, parameters)
    device = ObserverContext(
        observer_type=codes.DCM.Device,
        observer_identifying_attributes=DeviceObserverIdentifyingAttributes(
            uid=device_uid, name="CXR Reader", manufacturer_name=manufacturer, model_name=prediction.model_name[:64]),
    )
    measurements = [
        Measurement(name=cxr_codes.probability_concept(cls), value=float(p), unit=cxr_codes.NO_UNITS)
        for cls, p in zip(prediction.classes, prediction.probabilities)
    ]
    evaluations = [QualitativeEvaluation(name=cxr_codes.OUT_OF_SCOPE, value=scope_flag(out_of_scope))]
    group = MeasurementsAndQualitativeEvaluations(
        tracking_identifier=TrackingIdentifier(identifier=TRACKING_LABEL),
        algorithm_id=algorithm,
        # TID 1501 (121071, DCM, "Finding"): the most probable class, only for a film in the model's scope.
        finding_type=None if out_of_scope else cxr_codes.finding_concept(prediction.label),
        measurements=measurements,
        qualitative_evaluations=evaluations,
        source_images=[SourceImageForMeasurementGroup(
            reference.SOPClassUID, reference.SOPInstanceUID,
            referenced_frame_numbers=None if referenced_frame is None else [referenced_frame])],
    )
    container = group[0]
    if out_of_scope:
        container.ContentSequence.append(TextContentItem(
            name=cxr_codes.NOT_A_FINDING, value=not_a_finding_text(prediction, out_of_scope)[:1024],
            relationship_type=RelationshipTypeValues.CONTAINS))
    for warning in warnings:
        container.ContentSequence.append(TextContentItem(
            name=cxr_codes.SUITABILITY_WARNING, value=warning[:1024],
            relationship_type=RelationshipTypeValues.CONTAINS))
    if deidentification_note:  # a de-identified SR: what de-identification leaves (text burned into the film)
        container.ContentSequence.append(TextContentItem(
            name=cxr_codes.DEIDENTIFICATION_NOTE, value=deidentification_note[:1024],
            relationship_type=RelationshipTypeValues.CONTAINS))
    report = MeasurementReport(
        observation_context=ObservationContext(observer_device_context=device),
        procedure_reported=cxr_codes.PLAIN_CHEST_XRAY,
        imaging_measurements=[group],
    )
    sr = ComprehensiveSR(
        evidence=[reference], content=report[0], series_instance_uid=series_instance_uid,
        series_number=series_number, sop_instance_uid=sop_instance_uid, instance_number=instance_number,
        manufacturer=manufacturer, is_complete=True, is_final=False, is_verified=False,
        series_description="CXR Reader AI result (research use only)",
        software_versions=software_version, coding_schemes=[cxr_codes.private_scheme_item()],
    )
    for keyword in ("PatientIdentityRemoved", "DeidentificationMethod", "DeidentificationMethodCodeSequence"):
        if keyword in reference:
            setattr(sr, keyword, reference[keyword].value)
    return sr


def scope_flag(out_of_scope: str):
    """The value of "Image outside the model's intended scope" for a film flagged with ``out_of_scope``, by the
    app's banner (``image_checks.banner_kind``): Yes only outside the scope (``FIRM``, the red banner), Unknown
    when possibly outside (``MAYBE``: a child's chest in a file without an age; in scope if the patient is an
    adult), No in scope and for a close call (``CLOSE_CALL``: the model unsure, no question of scope; it was Yes,
    while the app and the PDF showed the film grey as a close call)."""
    from ...models.image_checks import FIRM, MAYBE, banner_kind

    kind = banner_kind(out_of_scope)
    return cxr_codes.YES if kind == FIRM else cxr_codes.UNKNOWN if kind == MAYBE else cxr_codes.NO


def not_a_finding_text(prediction: Prediction, out_of_scope: str) -> str:
    """Why an out-of-scope film's most probable class is not coded as its Finding, e.g. ``Outside the
    model's intended scope (inverted): the most probable class, COVID-19 (80.8 %), is not reliable and is
    not recorded as a finding``."""
    from ...display_text import format_percent

    from ...models.image_checks import CLOSE_CALL, FIRM, banner_kind, reason_list

    probability = format_percent(prediction.probability(prediction.label))
    reasons = ", ".join(reason_list(out_of_scope))
    kind = banner_kind(out_of_scope)
    if kind == CLOSE_CALL:  # the banner's "close call": no question of scope
        return (f"A close call (the model is unsure between its classes): the most probable class, "
                f"{prediction.display_label} ({probability}), is not recorded as a finding")
    if kind != FIRM:  # worded as the app's and the PDF's milder banner; still not coded
        return (f"Possibly outside the model's intended scope ({reasons}): the most probable class, "
                f"{prediction.display_label} ({probability}), is a close call or may not apply, and is not recorded "
                "as a finding")
    return (f"Outside the model's intended scope ({reasons}): the most probable class, "
            f"{prediction.display_label} ({probability}), is not reliable and is not recorded as a finding")
