"""Files this program wrote, recognised so that a scan does not take them for films: the PNGs of
``cxr-classify --heatmap-dir/--lung-mask-dir`` (``NNNNN_<stem>_cam.png``, ``_heatmap.png``, ``_lungs.png``,
as ``cxr_engine.batch.output_file_name`` names them, in the mode each is written in) and the DICOM
objects of ``cxr_engine.outputs.dicom_outputs`` (Secondary Capture, SR, Encapsulated PDF, presentation state:
Manufacturer (0008,0070) ``CXR Reader project`` and Software Versions (0018,1020) ``CXR Reader <version>``,
both kept by de-identification). A film from a modality never carries that manufacturer."""
from __future__ import annotations

import re
from pathlib import Path

from pydicom.dataset import Dataset

from ..reading.dicom_values import text_value

#: Manufacturer (0008,0070) of every DICOM object ``cxr_engine.outputs.dicom_outputs`` writes.
MANUFACTURER = "CXR Reader project"
#: How Software Versions (0018,1020) of those objects begins.
SOFTWARE_PREFIX = "CXR Reader"

_PNG_NAME = re.compile(r"^\d{5}_.*_(cam|heatmap|lungs)\.png$", re.IGNORECASE)
#: The Pillow mode each PNG kind is written in: the overlay in colour, the raw heat-map 16-bit, the mask 8-bit.
_PNG_MODES = {"cam": {"RGB", "RGBA"}, "heatmap": {"I;16", "I;16B", "I"}, "lungs": {"L"}}

DICOM_NOTE = "written by CXR Reader (an AI result series), not a film: skipped"
PNG_NOTE = "a heat-map or lung mask written by cxr-classify, not a film: skipped"


def png_kind(path: Path) -> str | None:
    """``cam``, ``heatmap`` or ``lungs`` when ``path`` is named as ``cxr-classify`` names that output."""
    match = _PNG_NAME.match(Path(path).name)
    return match.group(1).lower() if match else None


def is_own_png(path: Path, image) -> bool:
    """Whether the PNG at ``path``, opened as the Pillow ``image``, is one of ``cxr-classify``'s outputs:
    its name, the mode that kind is written in, and for a lung mask no value but 0 and 255 (so a
    greyscale film that happens to be named so is still read). Only a file so named is decoded."""
    kind = png_kind(path)
    if kind is None or image.mode not in _PNG_MODES[kind]:
        return False
    if kind == "lungs":
        colours = image.getcolors(2)
        return colours is not None and {value for _, value in colours} <= {0, 255}
    return True


def is_own_dicom(ds: Dataset) -> bool:
    """Whether ``ds`` (a header read with Manufacturer and Software Versions) was written by
    ``cxr_engine.outputs.dicom_outputs``."""
    return (text_value(ds, "Manufacturer") == MANUFACTURER
            and text_value(ds, "SoftwareVersions").startswith(SOFTWARE_PREFIX))
