"""Read a DICOM file into a ``CxrImage``: decode, modality LUT, windows, spacing, metadata."""
from __future__ import annotations

import logging
import struct
import zlib
from pathlib import Path

import numpy as np

from .errors import ImageReadError, UnsupportedImageError
from .image import CxrImage, ImageMetadata
from .windowing import LINEAR, VOI_FUNCTIONS, VoiLut, Window, percentile_window, window_fits

logger = logging.getLogger(__name__)

#: Images with more pixels than this are refused before decoding (memory safety).
MAX_PIXELS = 100_000_000

_METADATA_KEYWORDS = {
    "patient_name": "PatientName",
    "patient_id": "PatientID",
    "patient_birth_date": "PatientBirthDate",
    "patient_sex": "PatientSex",
    "patient_age": "PatientAge",
    "study_instance_uid": "StudyInstanceUID",
    "study_date": "StudyDate",
    "study_time": "StudyTime",
    "study_description": "StudyDescription",
    "accession_number": "AccessionNumber",
    "series_instance_uid": "SeriesInstanceUID",
    "series_number": "SeriesNumber",
    "series_description": "SeriesDescription",
    "sop_instance_uid": "SOPInstanceUID",
    "instance_number": "InstanceNumber",
    "modality": "Modality",
    "body_part": "BodyPartExamined",
    "view_position": "ViewPosition",
    "manufacturer": "Manufacturer",
    "institution_name": "InstitutionName",
    "sop_class_uid": "SOPClassUID",
}


#: What pydicom and the struct module raise on damaged or crafted headers, either while parsing
#: or later, when an element's raw bytes are first converted (e.g. an unknown VR after a bit flip).
_MALFORMED_DATA_ERRORS = (ValueError, KeyError, TypeError, IndexError, AttributeError, OverflowError,
                          NotImplementedError, RecursionError, struct.error, zlib.error, UnicodeError, EOFError)


def read_dicom(path: str | Path) -> CxrImage:
    """Decode ``path`` (with or without a preamble and file meta) into a ``CxrImage``.

    Raises ``ImageReadError`` naming the file and the reason for anything it cannot read.
    """
    path = Path(path)
    try:
        return _read_dicom(path)
    except ImageReadError:
        raise
    except MemoryError as exc:
        raise ImageReadError(path, "not enough memory to read this file (damaged or crafted header?)") from exc
    except _malformed_data_errors() as exc:
        detail = _describe(exc, f"{type(exc).__name__}: {exc}")
        raise ImageReadError(path, f"damaged or malformed DICOM data ({detail})") from exc


def _malformed_data_errors() -> tuple[type[Exception], ...]:
    """``_MALFORMED_DATA_ERRORS`` plus pydicom's own (imported late: the engine imports pydicom lazily)."""
    from pydicom.errors import BytesLengthException

    return _MALFORMED_DATA_ERRORS + (BytesLengthException,)


def _describe(exc: BaseException, detail: str) -> str:
    """``detail``, except for a recursion error, whose own text says nothing useful."""
    return "sequences nested too deeply" if isinstance(exc, RecursionError) else detail


def _read_dicom(path: Path) -> CxrImage:
    import pydicom
    from pydicom.errors import InvalidDicomError

    try:
        # Deferring large values keeps pixel data on disk until the size check has passed.
        ds = pydicom.dcmread(path, force=True, defer_size="512 KB")
    except (InvalidDicomError, OSError) as exc:
        raise ImageReadError(path, f"not a readable DICOM file ({exc})") from exc
    except _malformed_data_errors() as exc:
        raise ImageReadError(path, f"not a readable DICOM file ({_describe(exc, str(exc))})") from exc
    if "PixelData" not in ds and "FloatPixelData" not in ds:
        if len(ds) == 0 or "SOPClassUID" not in ds and "Rows" not in ds:
            raise ImageReadError(path, "not a DICOM file (no DICOM attributes found)")
        raise UnsupportedImageError(path, "DICOM file holds no pixel data (not an image)")
    _assume_transfer_syntax(ds, path)
    _check_size(ds, path)
    stored = _decode(ds, path)
    warnings = []
    if stored.ndim == 3 and int(ds.get("NumberOfFrames", 1) or 1) > 1:
        warnings.append(f"multi-frame image ({stored.shape[0]} frames): showing the first frame")
        stored = stored[0]
    photometric = str(ds.get("PhotometricInterpretation", "MONOCHROME2")).strip().upper()
    if stored.ndim == 3:
        stored = _to_grey(stored)
        warnings.append(f"colour image ({photometric}) converted to greyscale")
        photometric = "MONOCHROME2"
    if stored.ndim != 2:
        raise UnsupportedImageError(path, f"unexpected pixel array shape {stored.shape}")
    if photometric not in ("MONOCHROME1", "MONOCHROME2"):
        raise UnsupportedImageError(path, f"Photometric Interpretation {photometric!r} is not supported")
    modality = _modality_values(stored, ds)
    spacing, spacing_source = _spacing(ds)
    windows, voi_luts = _windows(ds), _voi_luts(ds)
    preferred = None
    if windows and not voi_luts and not any(window_fits(modality, w) for w in windows):
        preferred = percentile_window(modality)
        warnings.append(
            f"the file's window {windows[0].center:g}/{windows[0].width:g} lies outside the pixel "
            f"values ({modality.min()}–{modality.max()}); showing an automatic window instead"
        )
    return CxrImage(
        path=path,
        stored=stored,
        modality=modality,
        photometric=photometric,
        invert=_needs_inversion(photometric, ds),
        bits_stored=int(ds.get("BitsStored", stored.dtype.itemsize * 8) or 8),
        windows=windows,
        voi_luts=voi_luts,
        spacing_mm=spacing,
        spacing_source=spacing_source,
        metadata=read_metadata(ds),
        source_format="dicom",
        warnings=tuple(warnings),
        preferred_voi=preferred,
    )


def read_metadata(ds) -> ImageMetadata:
    """The attributes in ``ImageMetadata`` from a dataset, as stripped strings."""
    values = {}
    for field_name, keyword in _METADATA_KEYWORDS.items():
        value = ds.get(keyword, "")
        values[field_name] = "" if value is None else str(value).strip()
    return ImageMetadata(**values)


def _assume_transfer_syntax(ds, path: Path) -> None:
    """Give a file without file meta (old ACR-NEMA style) the syntax it was parsed with."""
    from pydicom.dataset import FileMetaDataset
    from pydicom.uid import ExplicitVRBigEndian, ExplicitVRLittleEndian, ImplicitVRLittleEndian

    meta = getattr(ds, "file_meta", None)
    if meta is not None and "TransferSyntaxUID" in meta:
        return
    implicit, little = ds.original_encoding
    if implicit is None:
        implicit, little = True, True
    syntax = ImplicitVRLittleEndian if implicit else (ExplicitVRLittleEndian if little else ExplicitVRBigEndian)
    logger.info("%s has no Transfer Syntax UID; assuming %s", path.name, syntax.name)
    if meta is None:
        ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = syntax


def _check_size(ds, path: Path) -> None:
    try:
        rows, cols = int(ds.Rows), int(ds.Columns)
        frames = int(ds.get("NumberOfFrames", 1) or 1)
        samples = int(ds.get("SamplesPerPixel", 1) or 1)
    except (AttributeError, TypeError, ValueError) as exc:
        raise ImageReadError(path, f"missing or invalid Rows/Columns ({exc})") from exc
    if rows <= 0 or cols <= 0:
        raise ImageReadError(path, f"invalid image size {rows}×{cols}")
    if rows * cols * frames * samples > MAX_PIXELS:
        raise UnsupportedImageError(
            path, f"image too large: {rows}×{cols}×{frames} frames exceeds {MAX_PIXELS:,} pixels"
        )


def _decode(ds, path: Path) -> np.ndarray:
    """Stored values, trying the decoding plugins for the syntax in ``_PLUGIN_PREFERENCE`` order."""
    from pydicom.pixels import pixel_array

    syntax = ds.file_meta.TransferSyntaxUID
    error: Exception | None = None
    for plugin in _plugins_for(syntax) or [""]:
        try:
            return pixel_array(ds, decoding_plugin=plugin)
        except NotImplementedError as exc:
            raise UnsupportedImageError(path, f"no decoder for transfer syntax {syntax.name} ({exc})") from exc
        except Exception as exc:  # decoders raise many types for damaged data
            error = exc
    raise ImageReadError(path, f"pixel data could not be decoded ({syntax.name}): {error}") from error


#: Decoding plugins in order of preference. GDCM is used only for syntaxes nothing else decodes
#: (JPEG Lossless): on inconsistent headers it aborts the whole process with an uncaught C++
#: exception instead of raising (found by ``benchmarks.bench_fuzz``; the decoding worker of
#: ``cxr_engine.isolation`` contains such crashes either way).
_PLUGIN_PREFERENCE = ("pylibjpeg", "pyjpegls", "pillow", "pydicom")


def _plugins_for(syntax) -> list[str]:
    """Available plugins for a compressed ``syntax`` in preference order ([] when native or unknown)."""
    from pydicom.pixels import get_decoder

    try:
        available = get_decoder(syntax).available_plugins
    except NotImplementedError:
        return []
    return [name for name in _PLUGIN_PREFERENCE if name in available] or list(available)


def _to_grey(rgb: np.ndarray) -> np.ndarray:
    weights = np.array([0.299, 0.587, 0.114], dtype=np.float32)
    return (rgb[..., :3].astype(np.float32) @ weights).round().astype(rgb.dtype)


def _modality_values(stored: np.ndarray, ds) -> np.ndarray:
    """Modality LUT or rescale (PS3.3 C.11.1), via pydicom; integers stay integers when exact."""
    from pydicom.pixels import apply_modality_lut

    out = apply_modality_lut(stored, ds)
    if out.dtype.kind == "f" and np.all(np.isfinite(out)):
        rounded = np.rint(out)
        if np.array_equal(rounded, out) and rounded.min() >= -(2**31) and rounded.max() < 2**31:
            return rounded.astype(np.int32)
        return out.astype(np.float32)
    return out


def _needs_inversion(photometric: str, ds) -> bool:
    """MONOCHROME1 is always shown inverted. A Presentation LUT Shape (2050,0020) of INVERSE
    on a MONOCHROME1 image only restates that (PS3.3 C.8.11.6.1.2: DX images must use INVERSE
    for MONOCHROME1), so it does not invert twice; on MONOCHROME2 it inverts."""
    shape = str(ds.get("PresentationLUTShape", "")).strip().upper()
    if photometric == "MONOCHROME1":
        return True
    return shape == "INVERSE"


def _multi(value) -> list:
    if value is None or value == "":
        return []
    try:
        return list(value)
    except TypeError:
        return [value]


def _windows(ds) -> tuple[Window, ...]:
    """Every window the file offers (0028,1050/1051), with its explanation and VOI function."""
    centers = _multi(ds.get("WindowCenter"))
    widths = _multi(ds.get("WindowWidth"))
    explanations = _multi(ds.get("WindowCenterWidthExplanation"))
    function = str(ds.get("VOILUTFunction", LINEAR) or LINEAR).strip().upper()
    if function not in VOI_FUNCTIONS:
        logger.warning("unknown VOI LUT Function %r; using LINEAR", function)
        function = LINEAR
    windows = []
    for i, (center, width) in enumerate(zip(centers, widths)):
        explanation = str(explanations[i]) if i < len(explanations) else ""
        try:
            windows.append(Window(float(center), float(width), function, explanation))
        except (TypeError, ValueError) as exc:
            logger.warning("ignoring window %s/%s: %s", center, width, exc)
    return tuple(windows)


def _voi_luts(ds) -> tuple[VoiLut, ...]:
    luts = []
    for item in ds.get("VOILUTSequence", []) or []:
        try:
            luts.append(_voi_lut(item))
        except (AttributeError, IndexError, TypeError, ValueError) as exc:
            logger.warning("ignoring an unreadable VOI LUT Sequence item: %s", exc)
    return tuple(luts)


def _voi_lut(item) -> VoiLut:
    n_entries, first_mapped, bits = (int(v) for v in item.LUTDescriptor)
    n_entries = n_entries or 65536
    data = item.LUTData
    if isinstance(data, (bytes, bytearray)):
        table = np.frombuffer(data, dtype="<u2" if bits > 8 or len(data) >= 2 * n_entries else "u1")
    else:
        table = np.asarray(_multi(data))
    table = table[:n_entries].astype(np.int64)
    if table.size == 0:
        raise ValueError("empty LUT Data")
    return VoiLut(first_mapped, table, bits, str(item.get("LUTExplanation", "")))


def _spacing(ds) -> tuple[tuple[float, float] | None, str | None]:
    """PixelSpacing when valid, else ImagerPixelSpacing; zeros and junk count as absent."""
    for keyword in ("PixelSpacing", "ImagerPixelSpacing"):
        values = _multi(ds.get(keyword))
        try:
            row, col = (float(v) for v in values[:2])
        except (TypeError, ValueError):
            continue
        if row > 0 and col > 0 and np.isfinite(row) and np.isfinite(col):
            return (row, col), keyword
    return None, None
