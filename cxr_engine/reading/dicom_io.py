"""Read a DICOM file into a ``CxrImage``: decode, modality LUT, windows, spacing, metadata."""
from __future__ import annotations

import logging
import struct
import zlib
from pathlib import Path

import numpy as np

from .. import messages
from ..errors import ImageReadError, UnsupportedImageError
from ..pixels.image import CxrImage, ImageMetadata
from .calibration import calibrated_spacing, raw_spacing
from .display_shutter import not_image_data, read_shutter
from .header_checks import header_text_warnings, multi_values, spacing_warnings, valid_rescale_slope
from .high_bit import high_bit_problem, legacy_layout_warning, sample_shift
from .reduced_decode import FULL, DecodeRequest
from ..pixels.windowing import LINEAR, VOI_FUNCTIONS, VoiLut, Window, percentile_window, window_fits

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
    "burned_in_annotation": "BurnedInAnnotation",
    "presentation_intent_type": "PresentationIntentType",
}


#: What pydicom and the struct module raise on damaged or crafted headers, either while parsing
#: or later, when an element's raw bytes are first converted (e.g. an unknown VR after a bit flip).
_MALFORMED_DATA_ERRORS = (ValueError, KeyError, TypeError, IndexError, AttributeError, OverflowError,
                          NotImplementedError, RecursionError, struct.error, zlib.error, UnicodeError, EOFError)


def read_dicom(path: str | Path, request: DecodeRequest = FULL) -> CxrImage:
    """Decode ``path`` (with or without a preamble and file meta) into a ``CxrImage``.

    ``request`` says what the image is for: full resolution by default; with ``min_side``, a
    reduced decode where the syntax stores one (``cxr_engine.reading.reduced_decode``; the image's
    ``reduction`` says by how much, its spacing is that of the decoded pixels). Every later
    step (Bits Stored masking, padding, modality LUT, windows, MONOCHROME1) is the same.
    Raises ``ImageReadError`` naming the file and the reason for anything it cannot read.
    """
    path = Path(path)
    try:
        return _read_dicom(path, request)
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


def _read_dicom(path: Path, request: DecodeRequest = FULL) -> CxrImage:
    import pydicom
    from pydicom.errors import InvalidDicomError

    from .pixel_layout import deflated_problem
    from .scanning import check_pixel_data, no_image_error

    deflated = deflated_problem(path)  # before pydicom inflates a deflated data set whole, unbounded
    if deflated:
        raise ImageReadError(path, deflated)
    try:
        # Deferring large values keeps pixel data on disk until the size check has passed.
        ds = pydicom.dcmread(path, force=True, defer_size="512 KB")
    except (InvalidDicomError, OSError) as exc:
        raise ImageReadError(path, f"not a readable DICOM file ({exc})") from exc
    except _malformed_data_errors() as exc:
        raise ImageReadError(path, f"not a readable DICOM file ({_describe(exc, str(exc))})") from exc
    if "PixelData" not in ds:  # why, in the scanner's words (a cut file, a DICOMDIR, a report…)
        raise no_image_error(path, ds)
    _assume_transfer_syntax(ds, path)
    _check_size(ds, path)
    check_pixel_data(path)  # cut short: say how many bytes of how many before a decoder guesses
    layout_problem = high_bit_problem(ds)
    if layout_problem:
        raise ImageReadError(path, layout_problem)
    shift = sample_shift(ds)
    stored, reduction = _decode_for(request, ds, path, shift)
    warnings = [*filter(None, [legacy_layout_warning(ds, shift)])]
    samples = int(ds.get("SamplesPerPixel", 1) or 1)
    if int(ds.get("NumberOfFrames", 1) or 1) > 1 and stored.ndim == (3 if samples == 1 else 4):
        frame, frame_warning = representative_frame(ds, stored.shape[0])
        warnings.append(frame_warning)
        stored = stored[frame]
    photometric = str(ds.get("PhotometricInterpretation", "MONOCHROME2")).strip().upper()
    padding = _padding_mask(stored, ds) if stored.ndim == 2 else None
    if photometric == "PALETTE COLOR" and stored.ndim == 2:
        stored = _palette_to_rgb(stored, ds)
    if stored.ndim == 3:
        stored = to_grey(stored)
        warnings.append(f"colour image ({photometric}) converted to greyscale")
        photometric = "MONOCHROME2"
    if stored.ndim != 2:
        raise UnsupportedImageError(path, f"unexpected pixel array shape {stored.shape}")
    if photometric not in ("MONOCHROME1", "MONOCHROME2"):
        raise UnsupportedImageError(path, f"Photometric Interpretation {photometric!r} is not supported")
    shutter, shutter_warnings = read_shutter(ds, stored.shape, reduction, stored_pixel_aspect(ds))
    padding = not_image_data(padding, shutter)  # outside the shutter is not image data, as padding is not
    warnings += shutter_warnings
    slope, slope_warning = valid_rescale_slope(ds)
    modality = _modality_values(stored, ds, slope if slope_warning else None)
    spacing, spacing_source, spacing_set_aside = calibrated_spacing(ds)
    warnings += [*filter(None, [slope_warning]), *spacing_warnings(ds, raw_spacing(ds)[1]),
                 *filter(None, [spacing_set_aside])]
    aspect_ratio = _pixel_aspect_ratio(ds)
    if spacing_set_aside and aspect_ratio is None:
        aspect_ratio = raw_spacing(ds)[0]  # the spacing's ratio still says the pixels' shape
    if spacing is not None and reduction > 1:
        spacing = (spacing[0] * reduction, spacing[1] * reduction)
    voi_luts, lut_warnings = _voi_luts(ds)
    windows, window_warnings = _windows(ds, has_voi_lut=bool(voi_luts))
    warnings += window_warnings + lut_warnings
    preferred = None
    sample = modality[::4, ::4] if padding is None else modality[::4, ::4][~padding[::4, ::4]]
    if not windows and not voi_luts and _values_given(ds.get("WindowWidth")):  # the file's windows were all invalid
        preferred = percentile_window(sample)
    elif windows and not voi_luts and not any(window_fits(sample, w) for w in windows):
        preferred = percentile_window(sample)
        warnings.append(window_outside_warning(windows[0], sample))
    warnings += header_text_warnings(ds)  # after the pixels' warnings: those change what is seen
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
        padding=padding,
        shutter=None if shutter is None else shutter.mask,
        shutter_value=0 if shutter is None else shutter.presentation_value,
        pixel_aspect_ratio=aspect_ratio,
        reduction=reduction,
    )


def window_outside_warning(window: Window, sample: np.ndarray) -> str:
    """The warning for a file's ``window`` that holds almost none of the modality values (``window_fits``
    false on ``sample``): the window's own range (PS3.3 C.11.2.1.2) and on which side of it the film's
    values lie (their median), never their minimum or maximum, which a reduced-resolution decode
    (``reduced_decode``: the model's, a thumbnail's) gives slightly differently from the viewer's full
    decode, so the CSV, the app and the PDF say the same words for one file."""
    median = float(np.median(sample)) if np.size(sample) else window.center
    side = "above" if median > window.high else "below" if median < window.low else "on both sides of"
    return (f"the file's window {window.center:g}/{window.width:g} (values {window.low:g}–{window.high:g}) lies "
            f"outside the pixel values, which lie {side} it (under 1 % inside); showing an automatic window instead")


def representative_frame(ds, frames: int) -> tuple[int, str]:
    """(index of the frame shown, the film's warning) for a multi-frame image of ``frames`` decoded frames: the
    Representative Frame Number (0028,6010) when it names one of them (1..frames; PS3.3 C.7.6.1), else the
    first, the warning saying why."""
    shown = f"multi-frame image ({frames} frames): showing"
    value = ds.get("RepresentativeFrameNumber")
    if value is None or value == "":
        return 0, f"{shown} the first frame"
    try:
        number = int(value)
    except (TypeError, ValueError):
        number = None
    if number is None or not 1 <= number <= frames:
        return 0, (f"{shown} the first frame: Representative Frame Number (0028,6010) "
                   f"{messages.printable(str(value))!r} is not one of its frames")
    return number - 1, f"{shown} frame {number}, its Representative Frame Number (0028,6010)"


def read_metadata(ds) -> ImageMetadata:
    """The attributes in ``ImageMetadata`` from a dataset, as stripped strings, control characters
    as U+FFFD (``display_text.printable``: the values are shown in the viewer and the reports). A data set
    without SOP Class UID (0008,0016) takes the file meta's Media Storage SOP Class UID (0002,0002), as the
    scan (``scanning._header_from``) and the layout check (``pixel_layout.expects_pixels``) do: a film for
    processing known only there is still one (``suitability.is_for_processing``). The lossy compression facts
    come from the header and the transfer syntax (``lossy_compression.header_facts``)."""
    from ..display_text import printable
    from .dicom_values import file_meta, text_value
    from .lossy_compression import header_facts

    values = {}
    for field_name, keyword in _METADATA_KEYWORDS.items():
        value = ds.get(keyword, "")
        values[field_name] = "" if value is None else printable(str(value).strip())
    values["sop_class_uid"] = values["sop_class_uid"] or text_value(file_meta(ds), "MediaStorageSOPClassUID")
    values["burned_in_annotation"] = values["burned_in_annotation"].upper()
    values["presentation_intent_type"] = values["presentation_intent_type"].upper()
    (values["lossy_image_compression"], values["lossy_compression_ratio"],
     values["lossy_compression_method"]) = header_facts(ds)
    return ImageMetadata(**values)


def burned_in_annotation(source) -> str:
    """The source's Burned In Annotation (0028,0301), upper case (``YES``, ``NO``), ``""`` when absent or
    unreadable. ``source`` is a dataset or the path of a DICOM file (its header alone is read). A decoded film has
    it already (``ImageMetadata.burned_in_annotation``, filled by ``read_metadata``): this is for a header read
    alone (the DICOM outputs' source header)."""
    try:
        if not hasattr(source, "get"):
            from pydicom import dcmread

            source = dcmread(source, stop_before_pixels=True, force=True, specific_tags=[(0x0028, 0x0301)])
        value = source.get("BurnedInAnnotation", "")
    except Exception:  # not a DICOM file, unreadable: nothing said
        return ""
    return str(value or "").strip().upper()


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
    except AttributeError as exc:
        missing = " and ".join(k for k in ("Rows", "Columns") if k not in ds) or "Rows or Columns"
        raise ImageReadError(path, f"damaged DICOM image: the header has no {missing}, so the pixels "
                                   "cannot be laid out") from exc
    except (TypeError, ValueError) as exc:
        raise ImageReadError(path, f"damaged DICOM image: invalid Rows/Columns ({exc})") from exc
    if rows <= 0 or cols <= 0:
        raise ImageReadError(path, f"invalid image size {rows}×{cols}")
    if rows * cols * frames * samples > MAX_PIXELS:
        raise UnsupportedImageError(
            path, f"image too large: {rows}×{cols}×{frames} frames exceeds {MAX_PIXELS:,} pixels"
        )


def _decode_for(request: DecodeRequest, ds, path: Path, shift: int = 0) -> tuple[np.ndarray, int]:
    """(stored values masked to Bits Stored, subsampling factor): reduced when ``request`` allows
    and the syntax offers it, else :func:`_decode`'s full decode (factor 1). ``shift``: as for
    :func:`mask_to_bits_stored` (``high_bit.sample_shift``)."""
    from .reduced_decode import decode_reduced

    if not request.full:
        reduced = decode_reduced(ds, request.min_side)
        if reduced is not None:
            values, factor = reduced
            return mask_to_bits_stored(values, ds, shift), factor
    return _decode(ds, path, shift), 1


def _decode(ds, path: Path, shift: int = 0) -> np.ndarray:
    """Every frame's stored values, in native byte order, masked to Bits Stored.

    Tries the decoding plugins for the syntax in ``_PLUGIN_PREFERENCE`` order, then
    ``imagecodecs`` for greyscale JPEG that no plugin decodes (12-bit JPEG Extended, Process 2 & 4).
    Integer results are reduced to Bits Stored whatever the decoder returned (PS3.5 8.1.1: the
    bits above it are not pixel data; some JPEG 2000 files carry an overlay there): masked when
    Pixel Representation is 0, sign-extended when it is 1. A legacy layout (``shift`` > 0: High Bit
    above Bits Stored − 1, ``high_bit``) is shifted down first; pydicom is then asked for the words as
    decoded, since its own clearing of the bits above Bits Stored would drop the samples' top bits.
    """
    return mask_to_bits_stored(native_byte_order(_decode_raw(ds, path, shift)), ds, shift)


def _decode_raw(ds, path: Path, shift: int = 0) -> np.ndarray:
    from pydicom.pixels import pixel_array

    syntax = ds.file_meta.TransferSyntaxUID
    options = {"correct_unused_bits": False} if shift else {}
    error: Exception | None = None
    for plugin in _plugins_for(syntax) or [""]:
        try:
            return pixel_array(ds, decoding_plugin=plugin, **options)
        except NotImplementedError as exc:
            raise UnsupportedImageError(path, messages.no_decoder(syntax, str(exc))) from exc
        except Exception as exc:  # decoders raise many types for damaged data
            error = exc
    if syntax in _IMAGECODECS_JPEG and int(ds.get("SamplesPerPixel", 1) or 1) == 1:
        return _decode_jpeg_imagecodecs(ds, path)
    raise ImageReadError(path, f"pixel data could not be decoded ({syntax.name}): {error}") from error


#: JPEG syntaxes whose greyscale frames ``imagecodecs`` (BSD; libjpeg-turbo, which reads 12-bit
#: samples) decodes when pydicom's plugins cannot: Pillow and pydicom's GDCM plugin refuse 12-bit
#: JPEG Extended. Colour frames are left to the plugins: without an Adobe marker imagecodecs
#: guesses the colour transform differently from pydicom and DCMTK.
_IMAGECODECS_JPEG = ("1.2.840.10008.1.2.4.50", "1.2.840.10008.1.2.4.51")


def _decode_jpeg_imagecodecs(ds, path: Path) -> np.ndarray:
    """(frames, rows, columns) or (rows, columns) stored values of a greyscale JPEG Baseline /
    Extended file, decoded by ``imagecodecs.jpeg8_decode``; ``ImageReadError`` when it cannot."""
    from pydicom.encaps import generate_frames

    syntax = ds.file_meta.TransferSyntaxUID
    try:
        import imagecodecs
    except ImportError as exc:
        raise UnsupportedImageError(
            path, f"no decoder for {syntax.name} with {ds.get('BitsStored', '?')}-bit samples: Pillow and GDCM "
            "decode 8-bit JPEG only, and the imagecodecs package that decodes 12-bit JPEG is not installed") from exc
    rows, cols, frames = int(ds.Rows), int(ds.Columns), int(ds.get("NumberOfFrames", 1) or 1)
    dtype = np.dtype(("i" if int(ds.get("PixelRepresentation", 0) or 0) else "u") + str(int(ds.BitsAllocated) // 8))
    decoded = []
    try:
        for frame in generate_frames(ds.PixelData, number_of_frames=frames):
            values = np.asarray(imagecodecs.jpeg8_decode(frame))
            if values.shape != (rows, cols):
                raise ValueError(f"a frame decodes to {values.shape}, the header says {(rows, cols)}")
            # A signed file's samples come back unsigned: keep the bits, ``mask_to_bits_stored`` sign-extends.
            decoded.append(values.astype(f"u{dtype.itemsize}").view(dtype))
            if len(decoded) == frames:
                break
    except Exception as exc:  # imagecodecs raises its own error types on damaged streams
        raise ImageReadError(path, f"pixel data could not be decoded ({syntax.name}, imagecodecs): {exc}") from exc
    if len(decoded) != frames:
        raise ImageReadError(path, f"pixel data could not be decoded ({syntax.name}): "
                                   f"{len(decoded)} of {frames} frames present")
    return decoded[0] if frames == 1 else np.stack(decoded)


def native_byte_order(values: np.ndarray) -> np.ndarray:
    """``values`` in the machine's byte order (pydicom returns big-endian files' arrays as ``>u2`` etc.).

    Same values and shape; a copy only when the byte order changes.
    """
    if values.dtype.byteorder not in ("=", "|") and not values.dtype.isnative:
        return values.astype(values.dtype.newbyteorder("="))
    return values


def mask_to_bits_stored(values: np.ndarray, ds, shift: int = 0) -> np.ndarray:
    """Integer ``values`` reduced to (0028,0101) Bits Stored, per PS3.5 8.1.1.

    The bits above Bits Stored are not pixel data (overlays, garbage): they are cleared when
    Pixel Representation (0028,0103) is 0 and replaced by the sign bit when it is 1, so a
    12-bit signed value 0xF830 reads -2000. ``shift`` > 0 reads samples whose top bit is High Bit
    = Bits Stored − 1 + ``shift`` (the legacy layout of ``high_bit``): they are shifted down by it
    first, the bits below them dropped. Any shape (frames, samples); same dtype. Float, 1-bit and
    already-exact arrays are returned unchanged.
    """
    if values.dtype.kind not in "iu" or int(ds.get("BitsAllocated", 0) or 0) == 1:
        return values
    try:
        bits = int(ds.get("BitsStored", 0) or 0)
    except (TypeError, ValueError):
        return values
    width = values.dtype.itemsize * 8
    if not 0 < bits < width:
        return values
    if not 0 <= shift <= width - bits:
        shift = 0
    signed = int(ds.get("PixelRepresentation", 0) or 0) == 1
    above = width - bits - shift  # the bits above the samples' High Bit
    view_type = np.dtype(("i" if signed else "u") + str(values.dtype.itemsize))
    out = np.array(values, copy=True).view(view_type)
    np.left_shift(out, above, out=out)
    np.right_shift(out, width - bits, out=out)  # arithmetic for signed types: sign extension
    return out.view(values.dtype) if values.dtype.kind == view_type.kind else out


#: Decoding plugins in order of preference. GDCM is used only for syntaxes nothing else decodes
#: (JPEG Lossless): on inconsistent headers it aborts the whole process with an uncaught C++
#: exception instead of raising (found by ``benchmarks.bench_fuzz``; the decoding worker of
#: ``cxr_engine.reading.isolation`` contains such crashes either way).
_PLUGIN_PREFERENCE = ("pylibjpeg", "pyjpegls", "pillow", "pydicom")


def _plugins_for(syntax) -> list[str]:
    """Available plugins for a compressed ``syntax`` in preference order ([] when native or unknown)."""
    from pydicom.pixels import get_decoder

    try:
        available = get_decoder(syntax).available_plugins
    except NotImplementedError:
        return []
    return [name for name in _PLUGIN_PREFERENCE if name in available] or list(available)


#: ITU-R BT.601 luma weights (R, G, B) used to turn colour images into greyscale.
LUMA_WEIGHTS = (0.299, 0.587, 0.114)


def to_grey(rgb: np.ndarray) -> np.ndarray:
    """(..., 3+) colour samples → (...) greyscale of the same integer dtype, by BT.601 luma.

    Computed in float64 (exact for 32-bit samples) and clipped to the dtype's range, so white
    stays white at every bit depth (a float32 sum rounded 4,294,967,295 up to 2**32, which wrapped
    to 0 in uint32). Float input stays float64.
    """
    grey = rgb[..., :3].astype(np.float64) @ np.array(LUMA_WEIGHTS, dtype=np.float64)
    if rgb.dtype.kind not in "iu":
        return grey
    info = np.iinfo(rgb.dtype)
    return np.clip(np.rint(grey), info.min, info.max).astype(rgb.dtype)


def _palette_to_rgb(stored: np.ndarray, ds) -> np.ndarray:
    """PALETTE COLOR indices → (rows, columns, 3) RGB through the file's palette (PS3.3 C.7.6.3.1.5).

    Palette data is decoded in the dataset's byte order: pydicom 3.0's ``apply_color_lut`` reads
    non-segmented palettes in the machine's order (wrong for Explicit VR Big Endian files), so
    only segmented palettes (C.7.9.2), which it reads right, are left to it. uint16 for 16-bit
    entries, else uint8.
    """
    from pydicom.pixels import apply_color_lut

    if "RedPaletteColorLookupTableData" not in ds:
        return native_byte_order(np.asarray(apply_color_lut(stored, ds)))
    channels, bits = [], 8
    for colour in ("Red", "Green", "Blue"):
        n_entries, first_mapped, entry_bits = (int(v) for v in ds[f"{colour}PaletteColorLookupTableDescriptor"].value)
        n_entries = n_entries or 65536
        if int(ds.get("PixelRepresentation", 0) or 0) == 1 and first_mapped >= 2**15:
            first_mapped -= 2**16
        table = _lut_entries(ds[f"{colour}PaletteColorLookupTableData"].value, n_entries, entry_bits, ds)
        bits = max(bits, entry_bits, int(table.max()).bit_length())
        channels.append(table[np.clip(stored.astype(np.int64) - first_mapped, 0, table.size - 1)])
    return np.stack(channels, axis=-1).astype(np.uint16 if bits > 8 else np.uint8)


def _little_endian(ds) -> bool:
    """Whether ``ds``'s values were encoded little endian: how it was parsed, else its syntax.

    Raw OW/OB values (LUT Data) are kept as bytes by pydicom, so they must be decoded in this
    order (only Explicit VR Big Endian is big endian; every compressed syntax is little endian).
    """
    little = getattr(ds, "original_encoding", (None, None))[1]
    if little is None:
        syntax = getattr(getattr(ds, "file_meta", None), "TransferSyntaxUID", None)
        little = syntax != "1.2.840.10008.1.2.2"
    return bool(little)


def lut_from_item(item, ds, inputs: tuple[float, float] | None = None) -> tuple[int, np.ndarray, int]:
    """(first mapped value, table, bits per entry) of a Modality / VOI / Presentation LUT item.

    Reads (0028,3002) LUT Descriptor and (0028,3006) LUT Data (PS3.3 C.11.1.1.1, C.11.2.1.1):
    the table is int64, one entry per LUT entry (descriptor's first value, 0 meaning 65,536).
    LUT Data held as raw OW bytes is decoded in the dataset's byte order; 8-bit entries are
    read whether stored one per 16-bit word or two per word.

    The first mapped value's sign follows what the LUT maps. A VOI LUT maps the modality output:
    ``inputs`` is the range of those values (:func:`modality_range`), and the value is read as
    :func:`first_mapped_value` reads it. Without ``inputs`` (a Modality LUT, which maps stored values;
    a range the header does not give) a value written unsigned for signed pixel data (Pixel
    Representation 1) is read as signed (C.11.1.1.1).
    Raises ``ValueError`` / ``AttributeError`` for a missing or empty table.
    """
    n_entries, first_mapped, bits = (int(v) for v in item.LUTDescriptor)
    n_entries = n_entries or 65536
    if inputs is not None:
        first_mapped = first_mapped_value(first_mapped, n_entries, inputs)
    elif int(ds.get("PixelRepresentation", 0) or 0) == 1 and first_mapped >= 2**15:
        first_mapped -= 2**16
    return first_mapped, _lut_entries(item.LUTData, n_entries, bits, ds), bits


def first_mapped_value(value: int, n_entries: int, inputs: tuple[float, float]) -> int:
    """A VOI LUT Descriptor's first mapped value (PS3.3 C.11.2.1.1) for input values in ``inputs`` (low, high).

    The descriptor holds 16 bits, US or SS, and says nothing of which: the standard ties its sign to
    the range of the values mapped, which for a VOI LUT is the modality output, not Pixel Representation
    (a rescale with a negative intercept gives unsigned pixels negative values; a large positive one gives
    signed pixels only positive ones). Read as US, a value of 2**15 or more is negative (its two's complement)
    when the inputs can be negative, else positive, as dcmtk reads it; but a reading that would map none of the
    inputs gives way to the other when that one maps some: a value that only makes sense unsigned stays
    unsigned, and an SS value below 0 written for inputs that cannot be negative stays negative.
    """
    unsigned = int(value) % 2**16
    if unsigned < 2**15:
        return unsigned
    signed = unsigned - 2**16
    low, high = inputs
    preferred, other = (signed, unsigned) if low < 0 else (unsigned, signed)

    def maps_some(first: int) -> bool:
        return first <= high and first + n_entries - 1 >= low

    return other if not maps_some(preferred) and maps_some(other) else preferred


def modality_range(ds) -> tuple[float, float] | None:
    """(lowest, highest) modality value the film ``ds`` describes can hold: the stored range (Bits Stored,
    Pixel Representation) through the rescale this reader applies (:func:`applied_rescale`), or the Modality
    LUT's entries; None when the header does not say (no integer Bits Stored or Bits Allocated)."""
    if ds.get("ModalityLUTSequence"):
        try:
            table = lut_from_item(ds.ModalityLUTSequence[0], ds)[1]
        except (AttributeError, IndexError, TypeError, ValueError):
            return None
        return float(table.min()), float(table.max())
    try:
        bits = int(ds.get("BitsStored", 0) or 0) or int(ds.get("BitsAllocated", 0) or 0)
    except (TypeError, ValueError):
        return None
    if not 0 < bits <= 64:
        return None
    signed = int(ds.get("PixelRepresentation", 0) or 0) == 1
    low, high = (-(2 ** (bits - 1)), 2 ** (bits - 1) - 1) if signed else (0, 2**bits - 1)
    try:
        slope, intercept = applied_rescale(ds) or (1.0, 0.0)
    except (TypeError, ValueError):  # a rescale that is no number: the modality values say what is wrong
        return None
    ends = (low * slope + intercept, high * slope + intercept)
    return min(ends), max(ends)


def _lut_entries(data, n_entries: int, bits: int, ds) -> np.ndarray:
    """The first ``n_entries`` LUT entries (int64) from LUT Data: a list of numbers (US), or raw
    OW/OB bytes decoded in the dataset's byte order, 8-bit entries one per 16-bit word or two per
    word (the first in the low byte). Raises ``ValueError`` when there are none."""
    if isinstance(data, (bytes, bytearray)):
        words = np.frombuffer(bytes(data[: len(data) // 2 * 2]), dtype="<u2" if _little_endian(ds) else ">u2")
        if bits > 8 or words.size >= n_entries:
            table = words.astype(np.int64)
        else:  # 8-bit entries packed two per word, the first in the low byte
            table = np.stack([words & 0xFF, words >> 8], axis=-1).reshape(-1).astype(np.int64)
    else:
        table = np.asarray(multi_values(data), dtype=np.int64).reshape(-1)
    table = table[:n_entries]
    if table.size == 0:
        raise ValueError("empty LUT Data")
    return table


def applied_rescale(ds) -> tuple[float, float] | None:
    """(slope, intercept) of the rescale this reader applies to the film ``ds`` describes (PS3.3 C.11.1; as
    :func:`_modality_values` does: both attributes present, or an invalid slope taken as 1), None when it
    applies none or a Modality LUT Sequence instead: what a presentation state of the film must restate,
    since its window is in these modality units."""
    if ds.get("ModalityLUTSequence"):
        return None
    slope, slope_warning = valid_rescale_slope(ds)
    if slope_warning:
        return 1.0, _finite(ds.get("RescaleIntercept", 0))
    if "RescaleSlope" in ds and "RescaleIntercept" in ds:
        return float(ds.RescaleSlope), float(ds.RescaleIntercept)
    return None


def _modality_values(stored: np.ndarray, ds, slope: float | None = None) -> np.ndarray:
    """Modality LUT or rescale (PS3.3 C.11.1); integers stay integers when exact. ``slope`` replaces
    an invalid Rescale Slope (``header_checks.valid_rescale_slope``).

    Rescale is pydicom's ``apply_modality_lut`` (float64, so exact for 32-bit values). A Modality
    LUT Sequence is read here instead: pydicom's builds a ``uint{bits}`` type from the descriptor
    (no such type for 10–15 bits) and indexes in the pixels' type. Results that are whole numbers
    are returned as int32, or int64 past its range; others as float32, or float64 past 2**24.
    """
    from pydicom.pixels import apply_modality_lut

    if ds.get("ModalityLUTSequence"):
        first_mapped, table, _ = lut_from_item(ds.ModalityLUTSequence[0], ds)
        out = table[np.clip(stored.astype(np.int64) - first_mapped, 0, table.size - 1)]
    elif slope is not None:
        intercept = _finite(ds.get("RescaleIntercept", 0))
        out = stored.astype(np.float64) * slope + intercept
    else:
        out = apply_modality_lut(stored, ds)
    if out.dtype.kind == "f" and np.all(np.isfinite(out)):
        rounded = np.rint(out)
        if np.array_equal(rounded, out) and rounded.size:
            if rounded.min() >= -(2**31) and rounded.max() < 2**31:
                return rounded.astype(np.int32)
            if rounded.min() >= -(2**63) and rounded.max() < 2**63:
                return rounded.astype(np.int64)
        return out.astype(np.float32 if np.abs(out).max(initial=0) < 2**24 else np.float64)
    if out.dtype.kind in "iu" and out.dtype.itemsize == 8:
        if out.size and out.min() >= -(2**31) and out.max() < 2**31:
            return out.astype(np.int32)
    return out


def _finite(value) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return 0.0
    return number if np.isfinite(number) else 0.0


def _padding_mask(stored: np.ndarray, ds) -> np.ndarray | None:
    """True where a pixel is padding, not image data (PS3.3 C.7.5.1.1.2); None when there is none.

    Padding is the stored value (0028,0120) Pixel Padding Value, or every stored value between
    it and (0028,0121) Pixel Padding Range Limit inclusive. Values are compared as stored (before
    the modality LUT), so the mask is the same for MONOCHROME1 and MONOCHROME2. A value
    written unsigned for signed pixel data is read as signed. A mask that covers every pixel is
    ignored (the attribute cannot be right), as is one that covers none.
    """
    if "PixelPaddingValue" not in ds or stored.dtype.kind not in "iu":
        return None
    try:
        limits = [_stored_value(ds.PixelPaddingValue, ds)]
        if ds.get("PixelPaddingRangeLimit") is not None and ds.PixelPaddingRangeLimit != "":
            limits.append(_stored_value(ds.PixelPaddingRangeLimit, ds))
    except (TypeError, ValueError) as exc:
        logger.warning("ignoring an unreadable Pixel Padding Value: %s", exc)
        return None
    low, high = min(limits), max(limits)
    mask = (stored >= low) & (stored <= high)
    if not mask.any() or mask.all():
        return None
    return mask


def _stored_value(value, ds) -> int:
    """A US/SS attribute holding a stored pixel value, as the pixels' own signed or unsigned value."""
    number = int(multi_values(value)[0])
    allocated = int(ds.get("BitsAllocated", 16) or 16)
    if int(ds.get("PixelRepresentation", 0) or 0) == 1 and number >= 2 ** (allocated - 1):
        number -= 2**allocated
    return number


def _needs_inversion(photometric: str, ds) -> bool:
    """MONOCHROME1 is always shown inverted. A Presentation LUT Shape (2050,0020) of INVERSE
    on a MONOCHROME1 image only restates that (PS3.3 C.8.11.6.1.2: DX images must use INVERSE
    for MONOCHROME1), so it does not invert twice; on MONOCHROME2 it inverts."""
    shape = str(ds.get("PresentationLUTShape", "")).strip().upper()
    if photometric == "MONOCHROME1":
        return True
    return shape == "INVERSE"


def _windows(ds, has_voi_lut: bool = False) -> tuple[tuple[Window, ...], list[str]]:
    """Every valid window the file offers (0028,1050/1051), with its explanation and VOI function, and
    a film warning for each one left out.

    A Window Width below 1 (LINEAR) or not above 0 (LINEAR_EXACT, SIGMOID) is invalid (PS3.3
    C.11.2.1.2), as is a value that is not a number: such a window is left out, and when none is left
    (and ``has_voi_lut`` is false) the reader shows the automatic percentile window. A pair with an empty
    centre or width (``550\\`` and ``1024\\``: a trailing empty value some modalities write) is no window and
    is skipped without a warning. An unknown VOI LUT Function (0028,1056) is read as LINEAR, its default.
    These go to the image's warnings (the CSV's warnings column, the app's panel), not to the log, so a batch
    run with ``--quiet`` stays quiet."""
    centers = multi_values(ds.get("WindowCenter"))
    widths = multi_values(ds.get("WindowWidth"))
    explanations = multi_values(ds.get("WindowCenterWidthExplanation"))
    function = str(ds.get("VOILUTFunction", LINEAR) or LINEAR).strip().upper()
    warnings = []
    if function not in VOI_FUNCTIONS:
        warnings.append(f"unknown VOI LUT Function (0028,1056) {messages.printable(function)!r}: windows read as LINEAR")
        function = LINEAR
    windows, invalid = [], []
    for i, (center, width) in enumerate(zip(centers, widths)):
        if _empty(center) or _empty(width):
            continue
        explanation = str(explanations[i]) if i < len(explanations) else ""
        try:
            windows.append(Window(float(center), float(width), function, explanation))
        except (TypeError, ValueError):
            invalid.append(f"{_number_text(center)}/{_number_text(width)}")
    if invalid:
        rule = "at least 1" if function == LINEAR else "above 0"
        instead = "left out" if windows or has_voi_lut else "showing an automatic window instead"
        warnings.append(f"invalid window {', '.join(invalid)} (centre/width) in the file: Window Width (0028,1051) "
                        f"must be {rule} for {function} (PS3.3 C.11.2.1.2); {instead}")
    return tuple(windows), warnings


def _empty(value) -> bool:
    """Whether one value of a multi-valued attribute is empty (``550\\`` holds 550 and an empty value)."""
    return value is None or str(value).strip() == ""


def _values_given(value) -> bool:
    """Whether a multi-valued attribute holds at least one value that is not empty."""
    return any(not _empty(item) for item in multi_values(value))


def _number_text(value) -> str:
    """A DS value as a short number (``550``, ``-5``), or its text when it is not a number."""
    try:
        return f"{float(value):g}"
    except (TypeError, ValueError):
        return messages.printable(value)


def _voi_luts(ds) -> tuple[tuple[VoiLut, ...], list[str]]:
    """The file's VOI LUTs (0028,3010) and a warning for each whose range was taken from its data."""
    luts, warnings = [], []
    for number, item in enumerate(ds.get("VOILUTSequence", []) or [], start=1):
        try:
            lut, warning = _voi_lut(item, ds)
        except (AttributeError, IndexError, TypeError, ValueError) as exc:
            logger.warning("ignoring an unreadable VOI LUT Sequence item: %s", exc)
            continue
        luts.append(lut)
        if warning:
            warnings.append(f"VOI LUT {number}: {warning}")
    return tuple(luts), warnings


#: The fewest output bits a VOI LUT is narrowed to when its entries cannot fill the declared range.
MIN_VOI_LUT_BITS = 8


def _voi_lut(item, ds) -> tuple[VoiLut, str]:
    """One VOI LUT (PS3.3 C.11.2.1.1) and a warning ("" when none). Its first mapped value is
    read for the modality output's range (:func:`first_mapped_value`), not for Pixel Representation.

    The output range is 0..2**bits - 1 with bits from the LUT Descriptor, except where the
    entries cannot fill it: some writers declare 16-bit entries for a 12-bit table, which would
    show near-black (near-white for MONOCHROME1). Then the bits the largest entry needs (at
    least ``MIN_VOI_LUT_BITS``) are used, with a warning. The converse (12-bit entries under an
    8-bit descriptor) is handled by ``VoiLut.output_max``.
    """
    first_mapped, table, bits = lut_from_item(item, ds, modality_range(ds))
    needed = max(int(table.max()).bit_length(), MIN_VOI_LUT_BITS)
    warning = ""
    if needed < bits:
        warning = (f"its descriptor declares {bits}-bit entries but they reach only {int(table.max())}; "
                   f"its output range was taken from the data ({needed} bits)")
        bits = needed
    return VoiLut(first_mapped, table, bits, str(item.get("LUTExplanation", ""))), warning


def _pixel_aspect_ratio(ds) -> tuple[float, float] | None:
    """(0028,0034) Pixel Aspect Ratio as (vertical, horizontal) when it holds two positive numbers."""
    values = multi_values(ds.get("PixelAspectRatio"))
    try:
        vertical, horizontal = (float(v) for v in values[:2]) if len(values) >= 2 else (None, None)
    except (TypeError, ValueError):
        return None
    if vertical is None or not (vertical > 0 and horizontal > 0 and np.isfinite(vertical) and np.isfinite(horizontal)):
        return None
    return vertical, horizontal


def stored_spacing(ds) -> tuple[float, float] | None:
    """(row, column) spacing in mm of the stored pixels of the film ``ds`` describes, as ``CxrImage.spacing_mm``
    has it for a full decode shown as stored (``calibration.calibrated_spacing``); None when lengths are in
    pixels."""
    return calibrated_spacing(ds)[0]


def stored_pixel_aspect(ds) -> float:
    """Physical height / width of one stored pixel of the film ``ds`` describes, as ``CxrImage.pixel_aspect``
    gives it: row / column spacing (Pixel Spacing, else Imager Pixel Spacing, even one set aside for lengths),
    else Pixel Aspect Ratio (PS3.3 C.7.6.3.1.7), else 1.0."""
    spacing = raw_spacing(ds)[0]
    if spacing:
        return float(spacing[0]) / float(spacing[1])
    ratio = _pixel_aspect_ratio(ds)
    return ratio[0] / ratio[1] if ratio else 1.0
