"""Where a film's samples sit in their stored words: Bits Stored (0028,0101) and High Bit (0028,0102).

Today's PS3.5 8.1.1 asks for High Bit = Bits Stored − 1, the samples in the low bits of each word. Its older
editions let them sit anywhere in the word, High Bit naming the top one: Bits Stored 12 with High Bit 15 puts
the samples in bits 4–15 (some old CR and CT writers did so). Such a film reads right only shifted down by
High Bit + 1 − Bits Stored before the bits above Bits Stored are cleared (``dicom_io.mask_to_bits_stored``);
without the shift its 12 low bits are read, banded noise.

The shift applies to values as they sit in the stored words: native and deflated data, and RLE, whose
segments are the words' bytes (PS3.5 G.2). A JPEG, JPEG-LS or JPEG 2000 decoder gives samples of its code
stream's precision (pydicom's plugins, GDCM and Pillow alike): aligned at bit 0 when the stream holds Bits
Stored bits, the usual case, and laid out as in the words only when it holds them whole (precision High Bit
+ 1 or more). The shift applies only then.
"""
from __future__ import annotations

import logging

from .codestream import first_frame_header

logger = logging.getLogger(__name__)

#: Encapsulated syntaxes whose decoders give the words' bytes as stored: RLE Lossless (PS3.5 A.4.2, G.2).
_WORD_SYNTAXES = frozenset({"1.2.840.10008.1.2.5"})


def _bits(ds) -> tuple[int, int, int] | None:
    """(Bits Allocated, Bits Stored, High Bit) of ``ds`` when all three are integers, Bits Allocated above 1
    and Bits Stored within it; None otherwise (float or 1-bit data, a header the decode will judge)."""
    try:
        allocated, stored = int(ds.get("BitsAllocated", 0) or 0), int(ds.get("BitsStored", 0) or 0)
        high = ds.get("HighBit")
        high = stored - 1 if high is None or high == "" else int(high)
    except (TypeError, ValueError):
        return None
    if allocated <= 1 or not 0 < stored <= allocated:
        return None
    return allocated, stored, high


def high_bit_problem(ds) -> str | None:
    """Why the samples of ``ds`` cannot be found in their words, or None: a High Bit (0028,0102) at or above Bits
    Allocated, or below Bits Stored − 1, places them (partly) outside the word."""
    bits = _bits(ds)
    if bits is None:
        return None
    allocated, stored, high = bits
    if stored - 1 <= high < allocated:
        return None
    return (f"invalid High Bit (0028,0102) {high}: with Bits Allocated (0028,0100) {allocated} and Bits Stored "
            f"(0028,0101) {stored} it must lie between {stored - 1} and {allocated - 1} (PS3.5 8.1.1), so where the "
            "samples lie in each pixel's word is unknown")


def sample_shift(ds) -> int:
    """How many bits the decoded values of ``ds`` are shifted down before masking to Bits Stored: High Bit + 1 −
    Bits Stored where the decoder gives the words as stored (see the module's text), else 0 (the samples are at
    bit 0 already, or High Bit is Bits Stored − 1, absent or impossible: :func:`high_bit_problem`)."""
    bits = _bits(ds)
    if bits is None or high_bit_problem(ds):
        return 0
    _, stored, high = bits
    shift = high + 1 - stored
    if shift <= 0:
        return 0
    syntax = ds.file_meta.TransferSyntaxUID
    if _encapsulated(syntax) and syntax not in _WORD_SYNTAXES:
        precision = _code_stream_precision(ds)
        if precision is None or precision <= high:
            logger.info("High Bit %d with Bits Stored %d: the %s code stream holds %s-bit samples, read as decoded",
                        high, stored, syntax.name, precision if precision is not None else "an unknown number of")
            return 0
    return shift


def legacy_layout_warning(ds, shift: int) -> str:
    """The film's warning for values read shifted down by ``shift`` bits (:func:`sample_shift`); ``""`` for 0."""
    if not shift:
        return ""
    _, stored, high = _bits(ds)
    return (f"legacy pixel layout: High Bit (0028,0102) {high} with Bits Stored (0028,0101) {stored}, the samples "
            f"in bits {high + 1 - stored}–{high} of each word (as older editions of PS3.5 8.1.1 allowed): read "
            f"shifted down by {shift} bits")


def _encapsulated(syntax) -> bool:
    """Whether ``syntax`` is an encapsulated (compressed) one; an unknown UID counts as one (no shift)."""
    try:
        return bool(syntax.is_encapsulated)
    except ValueError:  # not a transfer syntax pydicom knows
        return True


def _code_stream_precision(ds) -> int | None:
    """The sample precision the first frame's JPEG, JPEG-LS or JPEG 2000 code stream declares; None for other
    syntaxes and for a stream whose header cannot be read (``codestream.first_frame_header``)."""
    header = first_frame_header(ds)
    return header.precision if header is not None else None
