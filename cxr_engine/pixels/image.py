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
    #: Burned In Annotation (0028,0301), upper case (``YES``, ``NO``; ``""`` absent): not the patient's, but whether
    #: the pixels may carry text such as a name, which de-identification does not clean
    #: (``outputs.deidentify.pixel_text_note``).
    burned_in_annotation: str = ""
    #: Presentation Intent Type (0008,0068), upper case (``FOR PRESENTATION``, ``FOR PROCESSING``; ``""`` absent).
    presentation_intent_type: str = ""
    #: Lossy Image Compression (0028,2110): ``01`` when the pixels have been lossy compressed, by the attribute or
    #: by the transfer syntax they were stored in (PS3.3 C.7.6.1.1.5; ``reading.lossy_compression``), else the
    #: attribute's value (``00``; ``""`` absent). Shown to the reader (``lossy_compression.lossy_compression_text``).
    lossy_image_compression: str = ""
    #: Lossy Image Compression Ratio (0028,2112), its values as stored joined by ``\`` (``10``; ``""`` absent).
    lossy_compression_ratio: str = ""
    #: Lossy Image Compression Method (0028,2114) (``ISO_10918_1``...), its values joined by ``\``; for pixels lossy
    #: by their transfer syntax alone, that syntax's method.
    lossy_compression_method: str = ""


@dataclass(frozen=True, eq=False)
class CxrImage:
    """A decoded greyscale radiograph.

    ``stored`` holds the decoded stored values untouched; ``modality`` the values after the
    modality LUT / rescale (PS3.3 C.11.1), in the file's units. ``invert`` is true when display
    needs a final inversion (MONOCHROME1, or a Presentation LUT Shape of INVERSE on a
    MONOCHROME2 image) so that every image is shown with air dark, like MONOCHROME2.
    ``spacing_mm`` is (row, column) spacing; ``spacing_source`` says which attribute gave it
    (``PixelSpacing`` is calibrated to the patient, ``ImagerPixelSpacing`` is at the detector).
    ``pixel_aspect_ratio`` is (0028,0034) Pixel Aspect Ratio (vertical, horizontal), used for the
    physical aspect when there is no spacing (see ``pixel_aspect``).
    ``padding`` is None or a bool (rows, columns) mask, True where a pixel is not image data: padding
    (Pixel Padding Value / Range Limit, PS3.3 C.7.5.1.1.2) or outside the display shutter: the automatic
    window, the full range, the value statistics and the model input's contrast stretch ignore it.
    ``shutter`` is None or a bool (rows, columns) mask, True outside the Display Shutter's opening (PS3.3
    C.7.6.11; ``cxr_engine.reading.display_shutter``), every such pixel also in ``padding``: rendering shows
    them at ``shutter_value``, a P-value (0 black … 0xFFFF white) whatever the VOI and the inversion.
    :meth:`display` leaves them as they are (the model leaves them out with the padding).
    ``reduction`` is 1 for a full-resolution decode, else the factor each way by which the file's
    pixel grid was subsampled at decode time (JPEG 2000 resolution levels, JPEG DCT scaling:
    ``cxr_engine.reading.reduced_decode``); ``spacing_mm`` is then that of the decoded pixels.
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
    padding: np.ndarray | None = None
    shutter: np.ndarray | None = None
    shutter_value: int = 0
    pixel_aspect_ratio: tuple[float, float] | None = None
    reduction: int = 1

    @property
    def shape(self) -> tuple[int, int]:
        return self.modality.shape[:2]

    @property
    def pixel_aspect(self) -> float:
        """Physical height / width of one pixel: row / column spacing (PS3.3 10.7.1.3), else
        Pixel Aspect Ratio (C.7.6.3.1.7), else 1.0. 2.0 means rows lie twice as far apart as
        columns, so the image must be shown twice as tall as its pixel count."""
        if self.spacing_mm:
            return float(self.spacing_mm[0]) / float(self.spacing_mm[1])
        if self.pixel_aspect_ratio:
            return float(self.pixel_aspect_ratio[0]) / float(self.pixel_aspect_ratio[1])
        return 1.0

    @property
    def display_shape(self) -> tuple[int, int]:
        """(rows, columns) of the image resampled to square pixels at its physical aspect, the
        coarser axis stretched so that no detail is lost. Equal to ``shape`` for square pixels."""
        rows, cols = self.shape
        aspect = self.pixel_aspect
        if aspect >= 1.0:
            return max(1, round(rows * aspect)), cols
        return rows, max(1, round(cols / aspect))

    def image_values(self, step: int = 1) -> np.ndarray:
        """Modality values of every ``step``-th pixel each way that is image data, not padding.

        1-D when the image has padding, else the 2-D subsampled array (same dtype either way).
        Every statistic of the image (ranges, percentiles, presets) should use these values.
        """
        values = self.modality[::step, ::step]
        if self.padding is None:
            return values
        kept = values[~self.padding[::step, ::step]]
        return kept if kept.size else values

    @property
    def value_range(self) -> tuple[float, float]:
        """Smallest and largest modality value present in the image (padding excluded)."""
        values = self.image_values()
        return float(values.min()), float(values.max())

    def auto_window(self) -> Window:
        """The automatic percentile window (``percentile_window``) over the image data, padding excluded."""
        if self.padding is None:
            return percentile_window(self.modality)
        return percentile_window(self.image_values(4))

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
        return self.auto_window()

    def display(self, voi: Window | VoiLut | None = None, step: int = 1) -> np.ndarray:
        """The presentation values: float32 in [0, 1], the modality values after the VOI (``voi``, default
        :meth:`default_voi`) and the final inversion (``invert``), at full dynamic range (not 8-bit).

        DICOM's grayscale pipeline (PS3.3 C.11): modality LUT -> VOI LUT -> Presentation LUT -> P-Values;
        here the Presentation LUT is IDENTITY or INVERSE and the P-Values are scaled to [0, 1]. This is
        what the model sees (through ``cxr_engine.pixels.preprocessing``) and what 8-bit
        rendering quantises. ``step`` > 1 gives every ``step``-th pixel each way (the same VOI),
        for statistics that need no full-size image.
        """
        voi = self.default_voi() if voi is None else voi
        values = self.modality[::step, ::step]
        if isinstance(voi, VoiLut):
            out = apply_voi_lut_table(values, voi)
        else:
            out = apply_window(values, voi)
        if self.invert:
            out = 1.0 - out
        return out

    def display_sample(self, side: int = 256) -> tuple[np.ndarray, np.ndarray | None]:
        """The presentation values (:meth:`display`) subsampled to about ``side`` px on its short side (every
        ``max(1, min(shape) // side)``-th pixel each way) and its padding mask subsampled alike
        (None without padding): for checks that need no full-size image."""
        step = max(1, min(self.shape) // side)
        padding = None if self.padding is None else self.padding[::step, ::step]
        return self.display(step=step), padding
