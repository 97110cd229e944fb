"""The one image type of the engine: raw stored values, modality values, geometry, metadata, windows."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .windowing import VoiLut, Window, apply_voi_lut_table, apply_window, percentile_window


@dataclass(frozen=True)
class ImageMetadata:
    """Patient, study, series and acquisition attributes shown to the reader (empty string = absent)."""

    patient_name: str = ""
    patient_id: str = ""
    patient_birth_date: str = ""
    patient_sex: str = ""
    patient_age: str = ""
    study_instance_uid: str = ""
    study_date: str = ""
    study_time: str = ""
    study_description: str = ""
    accession_number: str = ""
    series_instance_uid: str = ""
    series_number: str = ""
    series_description: str = ""
    sop_instance_uid: str = ""
    instance_number: str = ""
    modality: str = ""
    body_part: str = ""
    view_position: str = ""
    manufacturer: str = ""
    institution_name: str = ""
    sop_class_uid: str = ""


@dataclass(frozen=True, eq=False)
class CxrImage:
    """A decoded greyscale radiograph.

    ``stored`` holds the decoded stored values untouched; ``modality`` the values after the
    modality LUT / rescale (PS3.3 C.11.1), in the file's units. ``invert`` is true when display
    needs a final inversion (MONOCHROME1, or a Presentation LUT Shape of INVERSE on a
    MONOCHROME2 image) so that every image is shown with air dark, like MONOCHROME2.
    ``spacing_mm`` is (row, column) spacing; ``spacing_source`` says which attribute gave it
    (``PixelSpacing`` is calibrated to the patient, ``ImagerPixelSpacing`` is at the detector).
    """

    path: Path
    stored: np.ndarray
    modality: np.ndarray
    photometric: str = "MONOCHROME2"
    invert: bool = False
    bits_stored: int = 8
    windows: tuple[Window, ...] = ()
    voi_luts: tuple[VoiLut, ...] = ()
    spacing_mm: tuple[float, float] | None = None
    spacing_source: str | None = None
    metadata: ImageMetadata = field(default_factory=ImageMetadata)
    source_format: str = "dicom"
    warnings: tuple[str, ...] = ()
    #: Set by the reader when the file's own VOI is unusable (e.g. its window misses every pixel).
    preferred_voi: Window | VoiLut | None = None

    @property
    def shape(self) -> tuple[int, int]:
        return self.modality.shape[:2]

    @property
    def value_range(self) -> tuple[float, float]:
        """Smallest and largest modality value present in the image."""
        return float(self.modality.min()), float(self.modality.max())

    def full_range_window(self) -> Window:
        """A window that spans every value present (what "full range" presets show)."""
        low, high = self.value_range
        return Window.from_range(low, high)

    def default_voi(self) -> Window | VoiLut:
        """The VOI shown first: the file's own (a VOI LUT before a window, as pydicom does),
        else full range for 8-bit images and an automatic percentile window for deeper ones."""
        if self.preferred_voi is not None:
            return self.preferred_voi
        if self.voi_luts:
            return self.voi_luts[0]
        if self.windows:
            return self.windows[0]
        if self.bits_stored <= 8:
            return self.full_range_window()
        return percentile_window(self.modality)

    def display(self, voi: Window | VoiLut | None = None) -> np.ndarray:
        """Float32 image in [0, 1] after VOI and inversion: the full-dynamic-range display image.

        This is what the model sees (through ``cxr_engine.preprocessing``) and what 8-bit
        rendering quantises.
        """
        voi = self.default_voi() if voi is None else voi
        if isinstance(voi, VoiLut):
            out = apply_voi_lut_table(self.modality, voi)
        else:
            out = apply_window(self.modality, voi)
        if self.invert:
            out = 1.0 - out
        return out
