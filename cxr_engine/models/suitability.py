"""Is this image something the model was made for? Plain warnings shown next to every result.

The model was trained on frontal (PA/AP) chest radiographs of young children (1–5 years) and
adults. Warnings never quote identifying values (such as the age), so they are safe to print in
de-identified reports.
"""
from __future__ import annotations

from ..display_text import age_at_study, age_in_years, printable  # noqa: F401  (age_in_years: part of this module's API)
from ..pixels.content import is_nearly_uniform
from ..pixels.image import CxrImage
from ..reading.header_checks import FOR_PROCESSING_SOP_CLASSES

LATERAL_VIEWS = {"LL", "RL", "LAT", "LATERAL", "LLD", "RLD", "XTABLE"}
#: The out-of-scope reason (``cxr_engine.models.scope_score.out_of_scope``) of a film whose header records a lateral view.
LATERAL = "lateral"
#: Out-of-scope reasons from other header facts (``header_scope_reasons``), worded in ``image_checks.REASON_WORDS``.
NOT_CHEST_BODY_PART = "body-part-not-chest"
NOT_RADIOGRAPH = "modality-not-radiograph"
AGE_OUTSIDE_TRAINING = "age-outside-training"
#: Raw detector data, "for processing" (PS3.3 C.8.11.1.1.1): the model was trained on processed films only.
FOR_PROCESSING = "for-processing"
HEADER_REASONS = (LATERAL, NOT_CHEST_BODY_PART, NOT_RADIOGRAPH, FOR_PROCESSING, AGE_OUTSIDE_TRAINING)
#: Parts of a Body Part Examined value that name the chest (CID 4031 ``CHEST``; ``THORAX`` and its
#: Romance spellings as some modalities write them).
CHEST_WORDS = ("CHEST", "THORA", "TORAX", "TORACE", "LUNG", "TORSO")
CHEST_BODY_PARTS = {"CHEST", "THORAX", "LUNG", "LUNGS", "TORSO", "PORT CHEST", "CHEST_LAT", "CHEST PA"}
RADIOGRAPH_MODALITIES = {"CR", "DX", "RG", "DR", "OT", ""}
#: Its children are Kermany's (1–5 years, one hospital) but for a few dozen NIH and RSNA children of unknown
#: ages: an age of 6–17 is outside *most* of the training data, not all (a reading radiologist's finding: the
#: page of a 6-year-old said "outside the training data" beside the children's test accuracy).
TRAINING_AGES = "its children are nearly all 1–5 years old, from one hospital"
AGE_WARNING = f"patient age outside the training data but for a few films ({TRAINING_AGES})"
LATERAL_WARNING = "lateral view: the model is made for frontal (PA/AP) chest films"
#: The header reasons whose warning (:func:`assess`) says no more than the banner's words for the reason
#: (``image_checks.REASON_WORDS``), so that a display showing the banner leaves it out
#: (``image_checks.beside_banner``). The body part's and the modality's warnings name the file's value, which
#: the banner does not: they stay.
BANNER_SAYS = {LATERAL: LATERAL_WARNING, AGE_OUTSIDE_TRAINING: AGE_WARNING}
NO_CONTENT_WARNING = "the image is nearly uniform (no visible film): no class can mean anything"
#: Secondary Capture storage SOP classes (PS3.4 B.5): converted, digitised or screen-captured images.
SECONDARY_CAPTURE_PREFIX = "1.2.840.10008.5.1.4.1.1.7"


def patient_age_years(meta) -> float | None:
    """The patient's age in years at the study, from ``meta`` (an ``ImageMetadata``): ``display_text.age_at_study``."""
    return age_at_study(getattr(meta, "patient_age", ""), getattr(meta, "patient_birth_date", ""),
                        getattr(meta, "study_date", ""))


def is_training_age(years: float | None) -> bool:
    """Whether an age (years; ``None``: unknown) is one the model was trained on or unknown:
    children aged 1–5 years (under 6) and adults (18 and over)."""
    return years is None or 1 <= years < 6 or years >= 18


def is_chest_body_part(body_part: str) -> bool:
    """Whether Body Part Examined (0018,0015) may be the chest: empty (not said), or a value holding
    one of :data:`CHEST_WORDS` (``CHEST``, ``PORT CHEST``, ``CHEST_LAT``, ``THORAX``, ...)."""
    value = (body_part or "").strip().upper()
    return not value or value in CHEST_BODY_PARTS or any(word in value for word in CHEST_WORDS)


def is_radiograph_modality(modality: str) -> bool:
    """Whether Modality (0008,0060) may be a projection radiograph: CR, DX, DR, RG, OT (other, as many
    converted films are) or empty."""
    return (modality or "").strip().upper() in RADIOGRAPH_MODALITIES


def is_lateral(view_position: str) -> bool:
    """Whether a View Position (0018,5101) value names a lateral (or cross-table / decubitus) view."""
    view = (view_position or "").strip().upper()
    return view in LATERAL_VIEWS or "LAT" in view


def is_for_processing(sop_class_uid: str, presentation_intent_type: str = "") -> bool:
    """Whether SOP Class UID (0008,0016) is a "For Processing" storage class (PS3.4 B.5; DX, mammography,
    intra-oral, breast projection) or Presentation Intent Type (0008,0068) says ``FOR PROCESSING``: raw detector
    data (the reader's warning names which: ``header_checks.presentation_intent_warning``)."""
    return ((sop_class_uid or "").strip() in FOR_PROCESSING_SOP_CLASSES
            or (presentation_intent_type or "").strip().upper() == "FOR PROCESSING")


def header_scope_reasons(header) -> str:
    """The out-of-scope reasons the header alone gives, ``;``-joined in this order (``""``: none):
    :data:`LATERAL` for a lateral View Position (the image checks cannot tell a lateral film),
    :data:`NOT_CHEST_BODY_PART` when Body Part Examined names another part, :data:`NOT_RADIOGRAPH` when
    Modality is not a projection radiograph, :data:`FOR_PROCESSING` for an image for processing (its SOP class or
    Presentation Intent Type, :func:`is_for_processing`), :data:`AGE_OUTSIDE_TRAINING` when the patient's age
    (:func:`patient_age_years`) is under 1 or 6–17 years. ``header`` is an ``ImageMetadata``; a string is
    taken as a View Position alone."""
    if isinstance(header, str) or header is None:
        return LATERAL if is_lateral(header or "") else ""
    reasons = (
        LATERAL if is_lateral(header.view_position) else "",
        "" if is_chest_body_part(header.body_part) else NOT_CHEST_BODY_PART,
        "" if is_radiograph_modality(header.modality) else NOT_RADIOGRAPH,
        FOR_PROCESSING if is_for_processing(header.sop_class_uid, header.presentation_intent_type) else "",
        "" if is_training_age(patient_age_years(header)) else AGE_OUTSIDE_TRAINING,
    )
    return ";".join(reason for reason in reasons if reason)


def assess(image: CxrImage, input_size: int | None = None) -> tuple[str, ...]:
    """Warnings about view, body part, modality, age and size (empty when nothing is off)."""
    meta = image.metadata
    warnings = []
    if is_lateral(meta.view_position):
        warnings.append(LATERAL_WARNING)
    if not is_chest_body_part(meta.body_part):
        warnings.append(f"body part {printable(meta.body_part.strip().upper())}: the model is made for chest films")
    if not is_radiograph_modality(meta.modality):
        warnings.append(f"modality {printable(meta.modality.strip().upper())} is not a projection radiograph")
    if meta.sop_class_uid == SECONDARY_CAPTURE_PREFIX or meta.sop_class_uid.startswith(SECONDARY_CAPTURE_PREFIX + "."):
        warnings.append("secondary capture: a converted or digitised copy, not the original radiograph")
    if not is_training_age(patient_age_years(meta)):
        warnings.append(AGE_WARNING)
    if is_nearly_uniform(image):
        warnings.append(NO_CONTENT_WARNING)
    # The physical extent at square pixels: a 220×440 image with rows twice as far apart is 440×440.
    if input_size and min(image.display_shape) < input_size:
        warnings.append(f"image smaller than the model input ({input_size} px): detail is missing")
    return tuple(warnings)


#: Modalities of projection radiographs (PS3.3 C.7.3.1.1.1): the lung outline and the CTR are drawn on these.
PROJECTION_MODALITIES = {"CR", "DX", "DR", "RG"}


def lung_fields_refusal(image: CxrImage, image_check_reasons: str = "") -> str:
    """Why the lung outline and the cardiothoracic ratio are not offered on ``image`` as shown; ``""`` when
    they are. Offered on projection radiographs only, a DICOM with Modality CR, DX, DR or RG, or a PNG/JPEG
    (no header to say otherwise); never on CT, MR, US, NM, PT, RT, SEG, … where the lung model would
    outline whatever looks like a lung (e.g. around a vertebra on an axial CT slice). Nor on a film the
    image checks find inverted or turned (``image_check_reasons``: ``ImageCheck.scope_reasons`` of
    ``image`` as shown, the banner's reasons; ``inverted``, ``rotated-90/180/270``, ``mirrored``): the lung model and
    the heart borders (``cardiothoracic.heart_borders``) expect an upright positive: on a negative or an
    upside-down film they give a confident outline and a ratio that measures nothing (``Fake_MONOHR1.dcm``
    stored as a negative; ``python -m training.ctr_checks``). On the film shown corrected
    (``image_checks.reoriented``), whose checks no longer find the fault, they are offered."""
    if image.source_format == "dicom":
        modality = image.metadata.modality.strip().upper()
        if modality not in PROJECTION_MODALITIES:
            what = f"this is {modality}" if modality else "this DICOM file records no modality"
            return f"lung fields are drawn on chest radiographs only ({what})"
    return _orientation_refusal(image_check_reasons)


def _orientation_refusal(image_check_reasons: str) -> str:
    # image_checks imports this module for its reason names, so it is imported here, not at the top.
    from .image_checks import INVERTED, MIRRORED, ROTATIONS, describe, reason_list

    faults = ";".join(part for part in reason_list(image_check_reasons)
                      if part in (INVERTED, MIRRORED) or part in ROTATIONS)
    if not faults:
        return ""
    return f"the film looks {describe(faults)}: view it corrected to draw the lung fields and the cardiothoracic ratio"


def image_warnings(image: CxrImage, input_size: int | None = None) -> tuple[str, ...]:
    """The reader's warnings (decoding, windows, colour) followed by the suitability ones."""
    return tuple(image.warnings) + assess(image, input_size)


def age_group_of(metadata) -> str:
    """The model card's age group whose figures speak for the patient of ``metadata`` (an ``ImageMetadata``;
    None counts as not known), by the header's age (``patient_age_years``): ``adult`` from 18 years, ``pediatric``
    for the training children's ages (1–5 years); ``""`` when the header does not say, and for any other age (a
    6-year-old was given the figures of the 1–5-year-olds)."""
    years = patient_age_years(metadata)
    if years is None or not is_training_age(years):
        return ""
    return "adult" if years >= 18 else "pediatric"
