"""Seeded, reproducible mutations of real DICOM, PNG and JPEG files for fuzzing the readers.

``generate_cases(seeds, n, seed)`` yields ``FuzzCase``s; case ``i`` depends only on ``seed`` and
``i``, so any case can be regenerated alone (``--only I`` in ``bench_fuzz``). Mutations: byte
level (truncation, bit flips, byte runs, element length fields), structural (absurd Rows /
Columns / BitsAllocated / samples / frames / photometric / rescale / window values, a transfer
syntax that lies about the encoding, missing pixel data, multi-frame, colour images, deep
sequence nesting) and whole-file (zero bytes, random bytes, text, wrong extension).

``fuzz_check`` is what the isolated worker runs per case: read, then every step the app and
the CLI take next (display, 8-bit render, model preprocessing), checking their invariants.
"""
from __future__ import annotations

import copy
import csv
import io
import random
import struct
import warnings
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

import numpy as np

DEFAULT_SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"

#: Transfer syntaxes a mutated file may claim, whatever its data really is.
LYING_SYNTAXES = (
    "1.2.840.10008.1.2", "1.2.840.10008.1.2.1", "1.2.840.10008.1.2.2", "1.2.840.10008.1.2.1.99",
    "1.2.840.10008.1.2.4.50", "1.2.840.10008.1.2.4.51", "1.2.840.10008.1.2.4.57", "1.2.840.10008.1.2.4.70",
    "1.2.840.10008.1.2.4.80", "1.2.840.10008.1.2.4.81", "1.2.840.10008.1.2.4.90", "1.2.840.10008.1.2.4.91",
    "1.2.840.10008.1.2.4.100", "1.2.840.10008.1.2.4.201", "1.2.840.10008.1.2.5", "1.2.3.4.5.6.7.8.9",
)

#: Attribute → values that a crafted or damaged header might carry.
ABSURD_VALUES = {
    "Rows": [0, 1, 2, 3, 7, 65535, 60000],
    "Columns": [0, 1, 3, 65535, 60000],
    "BitsAllocated": [0, 1, 7, 12, 24, 32, 33, 64],
    "BitsStored": [0, 1, 17, 32, 64],
    "HighBit": [0, 31, 63],
    "PixelRepresentation": [1, 2],
    "SamplesPerPixel": [0, 2, 3, 4],
    "PlanarConfiguration": [1, 2],
    "NumberOfFrames": ["0", "-1", "2", "1000", "abc", "99999999"],
    "PhotometricInterpretation": ["RGB", "YBR_FULL_422", "PALETTE COLOR", "CMYK", "", "MONOCHROME3"],
    "RescaleSlope": ["0", "-1", "1e300", "nan", "abc"],
    "RescaleIntercept": ["-1e300", "inf", "xyz"],
    "WindowCenter": ["nan", "1e308", "-5", "abc", "1\\2\\3"],
    "WindowWidth": ["0", "-5", "1e-300", "abc", "inf"],
    "PixelSpacing": ["0\\0", "abc", "-1\\-1", "1e308\\1e308", "0.1"],
    "ImagerPixelSpacing": ["nan\\nan", "0.1"],
    "PatientAge": ["999Y", "abc", "-12Y", ""],
    "ViewPosition": ["LL", "", "X" * 60],
    "BodyPartExamined": ["SKULL", "", "\x00\x01"],
}


@dataclass(frozen=True)
class FuzzCase:
    """One input file: its bytes, the file name suffix it is written with, and what was done."""

    index: int
    source: str
    mutation: str
    suffix: str
    data: bytes

    @property
    def file_name(self) -> str:
        stem = Path(self.source).stem[:24].replace(" ", "_")
        return f"case{self.index:05d}_{self.mutation}_{stem}{self.suffix}"


@dataclass
class SeedFile:
    name: str
    data: bytes
    kind: str  # "dicom" or "raster"
    dataset: object = None  # parsed pydicom dataset (DICOM seeds only)
    pixels: np.ndarray | None = None  # decoded stored values (DICOM seeds only)


def load_seeds(shared: Path = DEFAULT_SHARED, rasters: int = 3) -> list[SeedFile]:
    """The real DICOM files plus a few cxr3 JPEGs and PNGs (8-bit, 16-bit, colour) made from them."""
    import cv2
    import pydicom

    from cxr_engine.reading.read import read_image

    dicom_dir, cxr3 = shared / "dicom", shared / "cxr3"
    seeds = []
    for path in sorted(dicom_dir.glob("*.dcm")):
        data = path.read_bytes()
        seeds.append(SeedFile(path.name, data, "dicom", pydicom.dcmread(io.BytesIO(data), force=True),
                              read_image(path).stored))
    with open(cxr3 / "manifest.csv", newline="", encoding="utf-8") as handle:
        rows = sorted(csv.DictReader(handle), key=lambda r: r["id"])
    picked = [r for r in rows if r["file"].lower().endswith((".jpg", ".jpeg"))][:rasters]
    for row in picked:
        path = cxr3 / row["file"]
        data = path.read_bytes()
        seeds.append(SeedFile(path.name, data, "raster"))
        grey = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_GRAYSCALE)
        for label, image in (("grey8", grey), ("grey16", grey.astype(np.uint16) * 257),
                             ("rgb", cv2.merge([grey, (grey // 2), grey]))):
            ok, png = cv2.imencode(".png", image)
            assert ok
            seeds.append(SeedFile(f"{path.stem}_{label}.png", png.tobytes(), "raster"))
    if not seeds:
        raise FileNotFoundError(f"no seed files under {shared}")
    return seeds


# --------------------------------------------------------------------------- byte-level mutations

def truncate(data: bytes, rng: random.Random) -> bytes:
    # Half the cuts fall in the first 4 KiB, where headers and decoder set-up live.
    limit = min(len(data), 4096) if rng.random() < 0.5 else len(data)
    return data[:rng.randrange(0, max(1, limit))]


def flip_bits(data: bytes, rng: random.Random) -> bytes:
    out = bytearray(data)
    limit = min(len(out), 4096) if rng.random() < 0.5 else len(out)
    for _ in range(rng.choice((1, 2, 4, 16, 64))):
        position = rng.randrange(limit)
        out[position] ^= 1 << rng.randrange(8)
    return bytes(out)


def splat_bytes(data: bytes, rng: random.Random) -> bytes:
    out = bytearray(data)
    length = rng.choice((1, 4, 16, 64, 512))
    start = rng.randrange(max(1, len(out) - length))
    fill = rng.choice((b"\x00", b"\xff", None))
    run = fill * length if fill else bytes(rng.randrange(256) for _ in range(length))
    out[start:start + length] = run[:len(out) - start]
    return bytes(out)


def corrupt_length_field(data: bytes, rng: random.Random) -> bytes:
    """Give one DICOM element (found by its tag bytes) an absurd value length."""
    tags = [(0x0002, 0x0010), (0x0008, 0x0016), (0x0010, 0x0010), (0x0028, 0x0010), (0x0028, 0x0011),
            (0x0028, 0x0100), (0x0028, 0x1050), (0x7FE0, 0x0010), (0xFFFE, 0xE000)]
    rng.shuffle(tags)
    for group, element in tags:
        position = data.find(struct.pack("<HH", group, element), 132 if len(data) > 132 else 0)
        if position < 0:
            continue
        out = bytearray(data)
        vr = bytes(out[position + 4:position + 6])
        new_length = rng.choice((0, 1, 3, 0xFFFF, 0x7FFFFFFF, 0xFFFFFFFF, len(data) * 2))
        if vr.isalpha() and vr.isupper():
            if vr in (b"OB", b"OW", b"SQ", b"UN", b"UT", b"OF", b"OD", b"OL", b"UC", b"UR"):
                out[position + 8:position + 12] = struct.pack("<I", new_length & 0xFFFFFFFF)
            else:
                out[position + 6:position + 8] = struct.pack("<H", new_length & 0xFFFF)
        else:
            out[position + 4:position + 8] = struct.pack("<I", new_length & 0xFFFFFFFF)
        return bytes(out)
    return flip_bits(data, rng)


# --------------------------------------------------------------------------- structural DICOM mutations

def _write(ds, force_encoding: bool = False) -> bytes:
    from pydicom import dcmwrite

    buffer = io.BytesIO()
    implicit, little = ds.original_encoding
    if implicit is None:
        implicit, little = True, True
    dcmwrite(buffer, ds, implicit_vr=implicit, little_endian=little, enforce_file_format=False,
             force_encoding=force_encoding)
    return buffer.getvalue()


def absurd_header(seed: SeedFile, rng: random.Random) -> bytes:
    ds = copy.deepcopy(seed.dataset)
    for keyword in rng.sample(sorted(ABSURD_VALUES), rng.choice((1, 1, 2, 3))):
        value = rng.choice(ABSURD_VALUES[keyword])
        try:
            setattr(ds, keyword, value)
        except (ValueError, TypeError, OverflowError):
            continue
    return _write(ds, force_encoding=True)


def lying_transfer_syntax(seed: SeedFile, rng: random.Random) -> bytes:
    """The seed's data set, unchanged, behind file meta that names another transfer syntax."""
    from pydicom.dataset import FileMetaDataset
    from pydicom.filebase import DicomBytesIO
    from pydicom.filewriter import write_dataset, write_file_meta_info

    ds = copy.deepcopy(seed.dataset)
    meta = copy.deepcopy(getattr(ds, "file_meta", None) or FileMetaDataset())
    meta.TransferSyntaxUID = rng.choice(LYING_SYNTAXES)
    buffer = DicomBytesIO()
    buffer.write(b"\x00" * 128 + b"DICM")
    write_file_meta_info(buffer, meta, enforce_standard=False)
    implicit, little = ds.original_encoding
    buffer.is_implicit_VR = True if implicit is None else implicit
    buffer.is_little_endian = True if little is None else little
    write_dataset(buffer, ds)
    return buffer.getvalue()


def drop_pixel_data(seed: SeedFile, rng: random.Random) -> bytes:
    ds = copy.deepcopy(seed.dataset)
    del ds.PixelData
    return _write(ds)


def native_variant(seed: SeedFile, rng: random.Random, frames: int = 1, colour: str | None = None,
                   claimed_frames: int | None = None) -> bytes:
    """The seed re-encoded uncompressed: several frames, colour, or frames it does not hold."""
    from pydicom.uid import ExplicitVRLittleEndian

    from pydicom.dataset import FileMetaDataset

    ds = copy.deepcopy(seed.dataset)
    if getattr(ds, "file_meta", None) is None:
        ds.file_meta = FileMetaDataset()
    pixels = np.ascontiguousarray(seed.pixels[::4, ::4])  # keep cases small and fast
    if colour:
        grey8 = (pixels.astype(np.float64) / max(1, pixels.max()) * 255).astype(np.uint8)
        data = np.stack([grey8, grey8 // 2, grey8], axis=-1)
        ds.SamplesPerPixel, ds.PhotometricInterpretation, ds.PlanarConfiguration = 3, colour, 0
        ds.BitsAllocated = ds.BitsStored = 8
        ds.HighBit, ds.PixelRepresentation = 7, 0
    else:
        data = pixels
    if frames > 1:
        data = np.stack([data] * frames)
    ds.Rows, ds.Columns = pixels.shape
    if frames > 1 or claimed_frames:
        ds.NumberOfFrames = str(claimed_frames or frames)
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.PixelData = np.ascontiguousarray(data).tobytes()
    for keyword in ("LossyImageCompression", "ICCProfile"):
        if keyword in ds:
            delattr(ds, keyword)
    ds.is_implicit_VR, ds.is_little_endian = False, True
    buffer = io.BytesIO()
    from pydicom import dcmwrite

    dcmwrite(buffer, ds, implicit_vr=False, little_endian=True, enforce_file_format=True)
    return buffer.getvalue()


def nested_sequences(seed: SeedFile, rng: random.Random) -> bytes:
    """A header with sequences nested thousands deep (recursion bomb)."""
    from pydicom.dataset import Dataset
    from pydicom.sequence import Sequence

    ds = copy.deepcopy(seed.dataset)
    depth = rng.choice((100, 2000, 20000))
    inner = Dataset()
    inner.CodeValue = "X"
    for _ in range(depth):
        outer = Dataset()
        outer.ContentSequence = Sequence([inner])
        inner = outer
    ds.ContentSequence = Sequence([inner])
    try:
        return _write(ds)
    except RecursionError:
        return _nested_bytes(seed.data, depth)


def _nested_bytes(data: bytes, depth: int) -> bytes:
    """Undefined-length SQ items nested ``depth`` deep, spliced in before the pixel data."""
    position = data.find(struct.pack("<HH", 0x7FE0, 0x0010))
    position = position if position > 0 else len(data)
    opening = struct.pack("<HH", 0x0040, 0xA730) + b"SQ\x00\x00" + struct.pack("<I", 0xFFFFFFFF)
    item = struct.pack("<HHI", 0xFFFE, 0xE000, 0xFFFFFFFF)
    return data[:position] + (opening + item) * depth + data[position:]


# --------------------------------------------------------------------------- raster mutations

def _png_chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)


def png_absurd_size(data: bytes, rng: random.Random) -> bytes:
    """Rewrite the PNG header's width/height (with a valid CRC) to huge or mismatched values."""
    if not data.startswith(b"\x89PNG") or data[12:16] != b"IHDR":
        return truncate(data, rng)
    ihdr = bytearray(data[16:29])
    width, height = rng.choice(((100000, 100000), (2**31 - 1, 1), (1, 1), (50000, 3000), (0, 0)))
    ihdr[0:8] = struct.pack(">II", width, height)
    return data[:8] + _png_chunk(b"IHDR", bytes(ihdr)) + data[33:]


def jpeg_absurd_size(data: bytes, rng: random.Random) -> bytes:
    """Rewrite a baseline JPEG's frame header (SOF0) dimensions."""
    position = data.find(b"\xff\xc0")
    if position < 0:
        return truncate(data, rng)
    out = bytearray(data)
    height, width = rng.choice(((65535, 65535), (0, 0), (1, 65535), (16, 16)))
    out[position + 5:position + 9] = struct.pack(">HH", height, width)
    return bytes(out)


# --------------------------------------------------------------------------- case generation

BYTE_MUTATIONS: dict[str, Callable[[bytes, random.Random], bytes]] = {
    "truncate": truncate, "bitflip": flip_bits, "splat": splat_bytes,
}
DICOM_MUTATIONS: dict[str, Callable[[SeedFile, random.Random], bytes]] = {
    "length": lambda seed, rng: corrupt_length_field(seed.data, rng),
    "header": absurd_header,
    "syntax": lying_transfer_syntax,
    "nopixels": drop_pixel_data,
    "multiframe": lambda seed, rng: native_variant(seed, rng, frames=rng.choice((2, 3))),
    "lyingframes": lambda seed, rng: native_variant(seed, rng, claimed_frames=rng.choice((2, 50))),
    "colour": lambda seed, rng: native_variant(seed, rng, colour=rng.choice(("RGB", "YBR_FULL"))),
    "nested": nested_sequences,
}
RASTER_MUTATIONS: dict[str, Callable[[bytes, random.Random], bytes]] = {
    "pngsize": png_absurd_size, "jpegsize": jpeg_absurd_size,
}
WHOLE_FILE = ("empty", "random", "text", "preamble", "wrongsuffix")


def _whole_file(kind: str, seeds: list[SeedFile], rng: random.Random) -> tuple[bytes, str, str]:
    if kind == "empty":
        return b"", rng.choice((".dcm", ".png", ".jpg", "")), "none"
    if kind == "random":
        return bytes(rng.randrange(256) for _ in range(rng.choice((1, 16, 200, 5000)))), \
            rng.choice((".dcm", ".png", ".jpg", "")), "none"
    if kind == "text":
        return b"This is not an image.\n" * rng.randrange(1, 50), rng.choice((".dcm", ".png", ".txt")), "none"
    if kind == "preamble":
        return b"\x00" * 128 + b"DICM" + bytes(rng.randrange(256) for _ in range(rng.choice((0, 8, 300)))), \
            ".dcm", "none"
    seed = rng.choice(seeds)  # "wrongsuffix": real content behind another format's suffix
    return seed.data, ".png" if seed.kind == "dicom" else rng.choice((".dcm", ".jpg", ".png")), seed.name


def make_case(index: int, seeds: list[SeedFile], seed: int = 0) -> FuzzCase:
    """Case ``index`` of run ``seed`` (independent of every other case)."""
    with warnings.catch_warnings():  # pydicom warns about the invalid values written on purpose
        warnings.simplefilter("ignore")
        return _make_case(index, seeds, seed)


def _make_case(index: int, seeds: list[SeedFile], seed: int) -> FuzzCase:
    rng = random.Random(seed * 1_000_003 + index)
    roll = rng.random()
    if roll < 0.05:
        kind = rng.choice(WHOLE_FILE)
        data, suffix, source = _whole_file(kind, seeds, rng)
        return FuzzCase(index, source, kind, suffix, data)
    source = rng.choice(seeds)
    suffix = ".dcm" if source.kind == "dicom" else Path(source.name).suffix
    if source.kind == "dicom" and roll < 0.45:
        name = rng.choice(sorted(DICOM_MUTATIONS))
        return FuzzCase(index, source.name, name, suffix, DICOM_MUTATIONS[name](source, rng))
    if source.kind == "raster" and roll < 0.2:
        name = rng.choice(sorted(RASTER_MUTATIONS))
        return FuzzCase(index, source.name, name, suffix, RASTER_MUTATIONS[name](source.data, rng))
    name = rng.choice(sorted(BYTE_MUTATIONS))
    data = BYTE_MUTATIONS[name](source.data, rng)
    if rng.random() < 0.2:  # stack a second byte mutation now and then
        data = BYTE_MUTATIONS[rng.choice(sorted(BYTE_MUTATIONS))](data, rng)
    return FuzzCase(index, source.name, name, suffix, data)


def generate_cases(seeds: list[SeedFile], n: int, seed: int = 0, start: int = 0) -> Iterator[FuzzCase]:
    for index in range(start, start + n):
        yield make_case(index, seeds, seed)


# --------------------------------------------------------------------------- the per-case check

def fuzz_check(path: str) -> None:
    """Read ``path`` as the app does and push the result through display, render and preprocessing.

    Returns None when all is well; a reader error propagates (a clean, expected outcome); a
    broken invariant raises ``AssertionError`` (counted as a bug by the harness).
    """
    from cxr_engine.reading.read import read_image
    from cxr_engine.pixels.preprocessing import resize_and_stretch
    from cxr_engine.pixels.rendering import render

    image = read_image(path)
    assert image.modality.ndim == 2 and min(image.modality.shape) > 0, f"bad shape {image.modality.shape}"
    shown = image.display()
    assert shown.shape == image.modality.shape and np.isfinite(shown).all(), "display is not finite"
    assert 0.0 <= float(shown.min()) and float(shown.max()) <= 1.0, "display leaves [0, 1]"
    rgb = render(image)
    assert rgb.dtype == np.uint8 and rgb.shape[:2] == image.shape, "render has the wrong type or shape"
    model_input = resize_and_stretch(shown, 64)
    assert model_input.shape == (64, 64) and np.isfinite(model_input).all(), "preprocessing is not finite"
    return None
