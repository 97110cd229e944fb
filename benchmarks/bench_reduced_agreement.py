"""Does a reduced decode give the model's call of the full decode? Agreement on real and re-encoded films.

Classifies each film twice with the bundled model, once from the full decode and once from the
reduced decode the CLI uses (``DecodeRequest.for_model``: at least twice the model's input size
on the short side), and reports top-class agreement, the largest difference of any class
probability, and the reduction factors seen. A third input is derived from the full decode, area-averaged
(``cv2.INTER_AREA``) onto the reduced decode's grid: its largest difference from the reduced decode's
probabilities says whether one full decode could serve both the model and the outputs drawn on the
full-resolution film (heat-maps, DICOM objects) without changing a number (it cannot where it is not 0):

- every DICOM file in ``--dicom`` folders (the real films of ``../shared/data``);
- DICOM re-encodings of test-split images (generated once into ``--work``, reused after):
  each image is enlarged (bicubic) to ``--long-side`` pixels on its long side, like a CR/DX film,
  then stored as 12-bit JPEG 2000 lossless (MONOCHROME2, values ×4095/255) and as 8-bit JPEG
  baseline (quality 90). cxr3's images are at most 256 px, so without the enlargement no
  reduction would happen; an enlarged image is smoother than a real film, which the real files
  above are there to balance.

    python -m benchmarks.bench_reduced_agreement --manifest training/work/curated/split_manifest.csv -n 300
"""
from __future__ import annotations

import argparse
import io
import logging
import time
from pathlib import Path

import numpy as np

from .agreement import add_film_arguments, compare_groups, sample_test_split, source_file, write_rows



def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.bench_reduced_agreement", description=__doc__.split("\n\n")[0])
    parser.add_argument("-n", type=int, default=300, help="test-split images to re-encode (same number per class; seeded)")
    parser.add_argument("--long-side", type=int, default=2048, help="long side of the re-encoded films, pixels")
    parser.add_argument("--work", type=Path, default=Path("/tmp/cxr-reduced-agreement"), help="where the re-encodings go")
    add_film_arguments(parser)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)

    from cxr_engine.models.backends import create_classifier
    from cxr_engine.models.model_card import default_card, find_card

    card = find_card(args.model) if args.model else default_card()
    classifier = create_classifier(card, backend="onnx")
    classifier.load()
    groups: dict[str, list[Path]] = {}
    for folder in args.dicom:
        if folder.exists():
            groups[f"real DICOM ({folder.name})"] = sorted(p for p in folder.rglob("*.dcm"))
    if args.n > 0:
        j2k, jpeg = make_reencodings(args.manifest, args.n, args.long_side, args.work, args.seed)
        groups[f"test split as 12-bit J2K lossless, {args.long_side} px"] = j2k
        groups[f"test split as 8-bit JPEG q90, {args.long_side} px"] = jpeg
    rows, _ = compare_groups(groups, lambda path: compare(path, classifier), summarise)
    if args.out:
        write_rows(args.out, rows)
    return 0


def compare(path: Path, classifier) -> dict:
    from cxr_engine.reading.read import read_image
    from cxr_engine.reading.reduced_decode import DecodeRequest

    started = time.perf_counter()
    full = read_image(path)
    full_s = time.perf_counter() - started
    started = time.perf_counter()
    reduced = read_image(path, DecodeRequest.for_model(classifier.card.input_size, classifier.card.preprocessing_version))
    reduced_s = time.perf_counter() - started
    a, b, c = classifier.predict([full, reduced, area_reduced(full, reduced)])
    return {"path": str(path), "reduction": reduced.reduction, "full": a.label, "reduced": b.label,
            "max_probability_difference": float(np.max(np.abs(np.subtract(a.probabilities, b.probabilities)))),
            "derived_max_probability_difference": float(np.max(np.abs(np.subtract(c.probabilities, b.probabilities)))),
            "full_decode_s": round(full_s, 4), "reduced_decode_s": round(reduced_s, 4)}


def area_reduced(full, reduced):
    """``full`` (a ``CxrImage``) area-averaged onto ``reduced``'s pixel grid (stored and modality values as
    float32, padding where at least half the area is padding); ``full`` itself when the grids are equal."""
    from dataclasses import replace

    from cxr_engine.pixels.resampling import resize_area

    if full.shape == reduced.shape:
        return full
    rows, cols = reduced.shape

    def shrink(values):
        return resize_area(np.asarray(values, dtype=np.float32), rows, cols)

    padding = None if full.padding is None else shrink(full.padding) >= 0.5
    return replace(full, stored=shrink(full.stored), modality=shrink(full.modality), padding=padding,
                   spacing_mm=reduced.spacing_mm, reduction=reduced.reduction)


def summarise(results: list[dict]) -> dict:
    if not results:
        return {"films": 0}
    agree = sum(r["full"] == r["reduced"] for r in results)
    reductions: dict[int, int] = {}
    for r in results:
        reductions[r["reduction"]] = reductions.get(r["reduction"], 0) + 1
    return {"films": len(results), "top_class_agreement": round(agree / len(results), 4), "disagreements": len(results) - agree,
            "largest_probability_difference": round(max(r["max_probability_difference"] for r in results), 4),
            "median_probability_difference": round(float(np.median([r["max_probability_difference"] for r in results])), 5),
            "largest_derived_difference": round(max(r["derived_max_probability_difference"] for r in results), 4),
            "reduced_films_derived_identical": sum(r["derived_max_probability_difference"] == 0.0 for r in results if r["reduction"] > 1),
            "reductions": {str(k): v for k, v in sorted(reductions.items())},
            "median_decode_ms_full_vs_reduced": [round(1000 * float(np.median([r[k] for r in results])), 1)
                                                 for k in ("full_decode_s", "reduced_decode_s")]}


def make_reencodings(manifest: Path, n: int, long_side: int, work: Path, seed: int) -> tuple[list[Path], list[Path]]:
    """(J2K files, JPEG files) for ``n`` seeded test-split images, written once into ``work``."""
    chosen = sample_test_split(manifest, n, seed)
    j2k_dir, jpeg_dir = work / f"j2k_{long_side}", work / f"jpeg_{long_side}"
    j2k_dir.mkdir(parents=True, exist_ok=True)
    jpeg_dir.mkdir(parents=True, exist_ok=True)
    j2k, jpeg = [], []
    for row in chosen:
        source = source_file(row)
        j2k.append(j2k_dir / f"{row['label']}_{row['id']}.dcm")
        jpeg.append(jpeg_dir / f"{row['label']}_{row['id']}.dcm")
        if not (j2k[-1].exists() and jpeg[-1].exists()):
            grey = enlarged(source, long_side)
            write_j2k(grey, j2k[-1])
            write_jpeg(grey, jpeg[-1])
    return j2k, jpeg


def enlarged(source: Path, long_side: int) -> np.ndarray:
    """float32 [0, 1] greyscale of ``source`` scaled (bicubic) to ``long_side`` on its long side."""
    import cv2

    grey = cv2.imread(str(source), cv2.IMREAD_GRAYSCALE).astype(np.float32) / 255.0
    height, width = grey.shape
    scale = long_side / max(height, width)
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    return np.clip(cv2.resize(grey, size, interpolation=cv2.INTER_CUBIC), 0.0, 1.0)


def _dataset(rows: int, cols: int, bits: int):
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import SecondaryCaptureImageStorage, generate_uid

    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.MediaStorageSOPClassUID = SecondaryCaptureImageStorage
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID = generate_uid()
    ds.SOPClassUID = SecondaryCaptureImageStorage
    ds.Modality, ds.PatientID, ds.StudyInstanceUID, ds.SeriesInstanceUID = "DX", "BENCH", generate_uid(), generate_uid()
    ds.Rows, ds.Columns, ds.SamplesPerPixel, ds.PhotometricInterpretation = rows, cols, 1, "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = (16 if bits > 8 else 8), bits, bits - 1, 0
    return ds


def write_j2k(grey: np.ndarray, path: Path) -> None:
    from pydicom.uid import JPEG2000Lossless, ExplicitVRLittleEndian

    values = np.rint(grey * 4095).astype(np.uint16)
    ds = _dataset(*values.shape, bits=12)
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.PixelData = values.tobytes()
    ds.compress(JPEG2000Lossless, encoding_plugin="pylibjpeg")
    ds.save_as(path, enforce_file_format=True)


def write_jpeg(grey: np.ndarray, path: Path) -> None:
    from PIL import Image
    from pydicom.encaps import encapsulate
    from pydicom.uid import JPEGBaseline8Bit

    values = np.rint(grey * 255).astype(np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(values).save(buffer, format="JPEG", quality=90)
    ds = _dataset(*values.shape, bits=8)
    ds.file_meta.TransferSyntaxUID = JPEGBaseline8Bit
    ds.PixelData = encapsulate([buffer.getvalue()])
    ds["PixelData"].VR = "OB"
    ds.save_as(path, enforce_file_format=True)


if __name__ == "__main__":
    raise SystemExit(main())
