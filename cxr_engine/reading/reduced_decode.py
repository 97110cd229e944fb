"""Decode a DICOM image at a reduced resolution where its transfer syntax stores one.

A JPEG 2000 code stream (ISO/IEC 15444-1 Annex B, also High-Throughput JPEG 2000, 15444-15) holds
its wavelet resolution levels: decoding only the first ``NL - r`` levels gives the image subsampled
by ``2**r`` each way at a fraction of the full decode's cost (OpenJPEG through Pillow's ``reduce``).
A JPEG (ISO/IEC 10918-1) decoder can scale the inverse DCT by 1/2, 1/4 or 1/8 (libjpeg's
``scale_denom``; Pillow's ``draft``). Every other syntax has no cheaper path than the full decode.

The reduction is chosen by a :class:`DecodeRequest`: the largest factor that leaves at least
``min_side`` pixels on the short side. The arrays returned here are stored values, like the
full decoders' (same dtype, same bits), so ``cxr_engine.reading.dicom_io`` runs the same pipeline on them
(Bits Stored masking, padding, modality LUT, VOI, MONOCHROME1).
"""
from __future__ import annotations

import io
import logging
import math
from dataclasses import dataclass

import numpy as np

from .codestream import first_frame as _first_frame, j2k_header

logger = logging.getLogger(__name__)

#: How many times the model's input size a reduced decode for the model keeps on its short side:
#: the model input is then an INTER_AREA average of at least 2×2 decoded pixels, as it is from
#: the full decode (see ``benchmarks/bench_reduced_decode.py`` for the agreement it gives).
MODEL_DECODE_FACTOR = 2

#: JPEG 2000 (lossless, lossy) and HTJ2K (lossless, RPCL lossless, lossy) transfer syntaxes (PS3.5 A.4.4, A.4.6).
J2K_SYNTAXES = frozenset({"1.2.840.10008.1.2.4.90", "1.2.840.10008.1.2.4.91",
                          "1.2.840.10008.1.2.4.201", "1.2.840.10008.1.2.4.202", "1.2.840.10008.1.2.4.203"})
#: JPEG Baseline (Process 1) and Extended (Process 2 & 4); only 8-bit samples are reduced (Pillow's libjpeg).
JPEG_SYNTAXES = frozenset({"1.2.840.10008.1.2.4.50", "1.2.840.10008.1.2.4.51"})
#: libjpeg's DCT scaling: 1/1, 1/2, 1/4, 1/8.
JPEG_SCALES = (1, 2, 4, 8)


@dataclass(frozen=True)
class DecodeRequest:
    """What a decode is for.

    ``min_side`` None: full resolution (the viewer, the PDF, heat-maps at the image's pixel grid).
    Otherwise the smallest resolution the file stores (see the module's text) whose short side
    still holds at least ``min_side`` pixels; a full decode where the syntax has no cheaper path.
    """

    min_side: int | None = None

    def __post_init__(self):
        if self.min_side is not None and self.min_side < 1:
            raise ValueError(f"min_side must be a positive number of pixels, got {self.min_side}")

    @property
    def full(self) -> bool:
        return self.min_side is None

    @classmethod
    def for_model(cls, input_size: int, preprocessing_version: str | None = None) -> "DecodeRequest":
        """What the model input needs: ``MODEL_DECODE_FACTOR`` × ``input_size`` pixels on the short side.

        Full resolution for a preprocessing that crops the image before resizing it (cxr-pre-2's and
        cxr-pre-3's lung box): the crop's size is known only after segmentation, and the agreement of reduced
        decodes was measured for the whole-image preprocessing (cxr-pre-1) only.
        """
        from ..pixels.preprocessing import is_lung_box

        if is_lung_box(preprocessing_version):
            return cls()
        return cls(MODEL_DECODE_FACTOR * int(input_size))

    @classmethod
    def thumbnail(cls, size: int) -> "DecodeRequest":
        """What a ``size``-pixel thumbnail needs (``size`` on the short side)."""
        return cls(int(size))


FULL = DecodeRequest()


def reduction_factor(rows: int, columns: int, min_side: int, factors) -> int:
    """The largest of ``factors`` (ascending, starting at 1) for which ceil(rows / f) and
    ceil(columns / f) are both at least ``min_side``; 1 when none is."""
    best = 1
    for factor in factors:
        if min(math.ceil(rows / factor), math.ceil(columns / factor)) >= min_side:
            best = factor
    return best


def decode_reduced(ds, min_side: int) -> tuple[np.ndarray, int] | None:
    """(stored values, subsampling factor) of a single-frame greyscale ``ds`` decoded at the
    largest reduction that keeps ``min_side`` pixels on the short side, or None where there is
    no cheaper path than the full decode (other syntaxes, colour, multi-frame, a factor of 1,
    a code stream this does not understand, a decoder error: the full decode then says what is wrong).

    The array is (ceil(Rows / f), ceil(Columns / f)) in the dtype the full decode gives
    (``u``/``i`` by Pixel Representation, Bits Allocated wide), before Bits Stored masking.
    """
    syntax = str(ds.file_meta.TransferSyntaxUID)
    if syntax not in J2K_SYNTAXES and syntax not in JPEG_SYNTAXES:
        return None
    if int(ds.get("NumberOfFrames", 1) or 1) != 1 or int(ds.get("SamplesPerPixel", 1) or 1) != 1:
        return None
    rows, columns = int(ds.Rows), int(ds.Columns)
    try:
        frame = _first_frame(ds)
        if syntax in J2K_SYNTAXES:
            return _decode_j2k(frame, ds, rows, columns, min_side)
        return _decode_jpeg(frame, ds, rows, columns, min_side)
    except Exception as exc:  # damaged streams raise many types; the full decode reports them
        logger.debug("no reduced decode (%s: %s); decoding in full", type(exc).__name__, exc)
        return None


def _decode_j2k(stream: bytes, ds, rows: int, columns: int, min_side: int) -> tuple[np.ndarray, int] | None:
    """Pillow returns samples of precision p shifted left to fill 8 (mode L) or 16 bits (I;16),
    signed samples offset by 2**(p-1) (its ``j2ku_gray_*`` unpackers); undone here so the values are
    the stored ones."""
    from PIL import Image

    header = j2k_header(stream)
    if (header.width, header.height, header.components) != (columns, rows, 1) or header.precision > 16:
        return None
    if header.signed != (int(ds.get("PixelRepresentation", 0) or 0) == 1):
        return None  # pydicom's plugins reconcile these; the full decode keeps that logic in one place
    factors = [2**level for level in range(header.levels + 1) if _pillow_sizes_level(rows, columns, level)]
    factor = reduction_factor(rows, columns, min_side, factors)
    if factor == 1:
        return None
    with Image.open(io.BytesIO(without_fragment_padding(stream))) as image:
        image.reduce = int(math.log2(factor))
        image.load()
        values = np.asarray(image)
    expected = (math.ceil(rows / factor), math.ceil(columns / factor))
    if values.shape != expected:
        raise ValueError(f"reduced decode gave {values.shape}, expected {expected}")
    shift = (8 if values.dtype == np.uint8 else 16) - header.precision
    unsigned = values.astype(np.int32) >> shift
    if header.signed:
        unsigned -= 1 << (header.precision - 1)
    return unsigned.astype(_stored_dtype(ds)), factor


def without_fragment_padding(stream: bytes) -> bytes:
    """A JPEG 2000 code stream without the zero bytes after its EOC marker (0xFFD9, ISO/IEC 15444-1 A.4.4).

    DICOM pads an odd-length frame's last fragment with one zero byte (PS3.5 A.4: each fragment has an
    even length); OpenJPEG through Pillow refuses a stream with anything after EOC ("broken data
    stream": ``JPEG2KLossless_1s_1f_u_16_16.dcm``), where pylibjpeg-openjpeg's full decode ignores it.
    ``stream`` itself when it ends with EOC, or when anything but zero bytes follows its last 0xFFD9.
    """
    end = stream.rfind(b"\xff\xd9")
    if end < 0 or end + 2 == len(stream) or stream[end + 2:].strip(b"\x00"):
        return stream
    return stream[:end + 2]


def _pillow_sizes_level(rows: int, columns: int, level: int) -> bool:
    """Whether Pillow (13.0) allocates the size OpenJPEG decodes at resolution ``level``.

    OpenJPEG gives ceil(n / 2**level) samples (15444-1 B.5); Pillow's plugin sizes the image as
    round(n / 2**level), half up, and fails ("broken data stream") where the two differ, e.g.
    1841 columns at level 2 (461 against 460). Such levels are skipped.
    """
    power = 1 << level
    return all((n + (power >> 1)) // power == math.ceil(n / power) for n in (rows, columns))


def _decode_jpeg(stream: bytes, ds, rows: int, columns: int, min_side: int) -> tuple[np.ndarray, int] | None:
    from PIL import Image

    if int(ds.get("BitsAllocated", 8) or 8) != 8:
        return None
    factor = reduction_factor(rows, columns, min_side, JPEG_SCALES)
    if factor == 1:
        return None
    with Image.open(io.BytesIO(stream)) as image:
        if image.mode != "L" or image.size != (columns, rows):
            return None
        image.draft("L", (math.ceil(columns / factor), math.ceil(rows / factor)))
        values = np.asarray(image)
    expected = (math.ceil(rows / factor), math.ceil(columns / factor))
    if values.shape != expected:
        raise ValueError(f"scaled JPEG decode gave {values.shape}, expected {expected}")
    return values.astype(_stored_dtype(ds)), factor


def _stored_dtype(ds) -> np.dtype:
    signed = int(ds.get("PixelRepresentation", 0) or 0) == 1
    return np.dtype(("i" if signed else "u") + str(max(1, int(ds.get("BitsAllocated", 8) or 8) // 8)))
