"""Write a folder of synthetic-patient DICOM files built from real cxr3 chest X-rays.

Each file is an 8-bit MONOCHROME2 Secondary Capture image (Modality DX), explicit VR little
endian, with proper file meta. Patients, studies and series are synthetic
(``SYNTH^PATIENT^0007``; UIDs from ``pydicom.uid.generate_uid`` seeded by ``seed``), laid out
as ``<out>/P0007/ST01/SE02/IM0003.dcm``, plus a few junk files a scan must skip quietly. The
same arguments always give the same files.

    python -m benchmarks.make_dicom_folder OUT_DIR -n 200 --cxr3 /work/shared/data/cxr3
"""
from __future__ import annotations

import argparse
import csv
import datetime as dt
import json
import random
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, SecondaryCaptureImageStorage, generate_uid

DEFAULT_CXR3 = Path(__file__).resolve().parents[2] / "shared" / "data" / "cxr3"
JUNK_FILES = ("README.txt", "preview.png", "EMPTY", "P0000/.DS_Store", "P0000/Thumbs.db")


@dataclass(frozen=True)
class _Slot:
    """Where one file goes: indices of its patient, study, series and instance."""

    patient: int
    study: int
    series: int
    instance: int


def make_dicom_folder(
    out_dir: str | Path,
    n_files: int,
    *,
    cxr3_dir: str | Path = DEFAULT_CXR3,
    seed: int = 0,
    n_patients: int | None = None,
    studies_per_patient: int = 2,
    series_per_study: int = 2,
    junk: bool = True,
) -> dict:
    """Write ``n_files`` DICOM files (and junk unless ``junk=False``) under ``out_dir``.

    Files go round-robin over ``n_patients × studies_per_patient × series_per_study`` series
    (``n_patients`` defaults to one per 16 files), so a series gets no file only when
    ``n_files`` is smaller than the number of series. Returns a summary: ``n_files``,
    ``patients``/``studies``/``series`` (counts of non-empty groups), ``dicom_paths`` and
    ``junk_paths`` (str).
    """
    out = Path(out_dir)
    cxr3 = Path(cxr3_dir)
    if _is_within(out, cxr3.parent):
        raise ValueError(f"{out}: refusing to write inside the shared data folder {cxr3.parent}")
    n_patients = n_patients or max(1, n_files // 16)
    rng = random.Random(seed)
    images = _pick_images(cxr3, n_files, rng)
    slots = _slots(n_files, n_patients, studies_per_patient, series_per_study)
    dicom_paths = []
    for slot, (image_path, view) in zip(slots, images):
        path = out / f"P{slot.patient:04d}" / f"ST{slot.study + 1:02d}" / (
            f"SE{slot.series + 1:02d}"
        ) / f"IM{slot.instance + 1:04d}.dcm"
        path.parent.mkdir(parents=True, exist_ok=True)
        _dataset(slot, _load_grey(image_path), view, seed).save_as(path, enforce_file_format=True)
        dicom_paths.append(str(path))
    junk_paths = _write_junk(out) if junk else []
    return {
        "out_dir": str(out),
        "n_files": len(dicom_paths),
        "patients": len({s.patient for s in slots}),
        "studies": len({(s.patient, s.study) for s in slots}),
        "series": len({(s.patient, s.study, s.series) for s in slots}),
        "dicom_paths": dicom_paths,
        "junk_paths": junk_paths,
    }


def _is_within(path: Path, folder: Path) -> bool:
    return path.resolve().is_relative_to(folder.resolve())


def _pick_images(cxr3: Path, n: int, rng: random.Random) -> list[tuple[Path, str]]:
    """``n`` (image path, view) pairs from the cxr3 manifest; repeats only past its size."""
    with open(cxr3 / "manifest.csv", newline="") as fh:
        rows = [(cxr3 / row["file"], row["view"]) for row in csv.DictReader(fh)]
    picked = []
    while len(picked) < n:
        picked += rng.sample(rows, min(n - len(picked), len(rows)))
    return picked


def _slots(n_files: int, n_patients: int, n_studies: int, n_series: int) -> list[_Slot]:
    """Deal files round-robin over every series; number instances within each series."""
    per_series: dict[tuple[int, int, int], int] = {}
    slots = []
    total = n_patients * n_studies * n_series
    for i in range(n_files):
        k = i % total
        key = (k // (n_studies * n_series), (k // n_series) % n_studies, k % n_series)
        per_series[key] = per_series.get(key, 0) + 1
        slots.append(_Slot(*key, instance=per_series[key] - 1))
    return slots


def _load_grey(path: Path) -> np.ndarray:
    with Image.open(path) as img:
        return np.asarray(img.convert("L"), dtype=np.uint8)


def _uid(seed: int, *parts: object) -> str:
    return generate_uid(entropy_srcs=[f"cxr-synth:{seed}", *map(str, parts)])


def _dataset(slot: _Slot, pixels: np.ndarray, view: str, seed: int) -> Dataset:
    """A Secondary Capture dataset for one file of the synthetic tree."""
    p, st, se, im = slot.patient, slot.study, slot.series, slot.instance
    # Later study folders hold earlier studies, so a reader must sort by date, not by name.
    study_day = dt.date(2020, 6, 1) + dt.timedelta(days=97 * p - 31 * st)
    sop_uid = _uid(seed, "sop", p, st, se, im)

    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = SecondaryCaptureImageStorage
    meta.MediaStorageSOPInstanceUID = sop_uid
    meta.TransferSyntaxUID = ExplicitVRLittleEndian

    ds = Dataset()
    ds.file_meta = meta
    ds.SpecificCharacterSet = "ISO_IR 100"
    ds.SOPClassUID = SecondaryCaptureImageStorage
    ds.SOPInstanceUID = sop_uid
    ds.PatientName = f"SYNTH^PATIENT^{p:04d}"
    ds.PatientID = f"SYNTH{p:04d}"
    ds.PatientBirthDate = f"{1940 + p % 60:04d}0101"
    ds.PatientSex = "MF"[p % 2]
    ds.PatientIdentityRemoved = "YES"
    ds.StudyInstanceUID = _uid(seed, "study", p, st)
    ds.StudyDate = study_day.strftime("%Y%m%d")
    ds.StudyTime = f"{8 + st:02d}0000"
    ds.StudyDescription = "SYNTHETIC CHEST"
    ds.AccessionNumber = f"SYN{p:04d}{st:02d}"
    ds.StudyID = f"{st + 1}"
    ds.SeriesInstanceUID = _uid(seed, "series", p, st, se)
    ds.SeriesNumber = se + 1
    ds.SeriesTime = f"{8 + st:02d}{se * 5:02d}00"
    ds.SeriesDescription = f"synthetic series {se + 1}"
    ds.InstanceNumber = im + 1
    ds.Modality = "DX"
    ds.ConversionType = "WSD"
    ds.BodyPartExamined = "CHEST"
    ds.ViewPosition = view if view in ("AP", "PA", "LL") else "PA"
    ds.BurnedInAnnotation = "NO"
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.Rows, ds.Columns = pixels.shape
    ds.BitsAllocated = 8
    ds.BitsStored = 8
    ds.HighBit = 7
    ds.PixelRepresentation = 0
    ds.PixelData = pixels.tobytes()
    return ds


def _write_junk(out: Path) -> list[str]:
    """Files a scan should skip quietly: text, a PNG, an empty file, OS clutter."""
    out.joinpath("P0000").mkdir(parents=True, exist_ok=True)
    (out / "README.txt").write_text("Synthetic DICOM folder; not patient data.\n")
    Image.fromarray(np.zeros((8, 8), np.uint8)).save(out / "preview.png")
    (out / "EMPTY").write_bytes(b"")
    (out / "P0000" / ".DS_Store").write_bytes(b"\x00\x00\x00\x01Bud1" + bytes(64))
    (out / "P0000" / "Thumbs.db").write_bytes(b"\xd0\xcf\x11\xe0" + bytes(64))
    return [str(out / name) for name in JUNK_FILES]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out_dir", type=Path, help="folder to write (created if missing)")
    parser.add_argument("-n", "--n-files", type=int, default=40, help="DICOM files to write")
    parser.add_argument("--cxr3", type=Path, default=DEFAULT_CXR3, help="cxr3 data folder")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--patients", type=int, default=None, help="default: n_files // 16")
    parser.add_argument("--studies-per-patient", type=int, default=2)
    parser.add_argument("--series-per-study", type=int, default=2)
    parser.add_argument("--no-junk", action="store_true", help="write DICOM files only")
    args = parser.parse_args(argv)
    summary = make_dicom_folder(
        args.out_dir,
        args.n_files,
        cxr3_dir=args.cxr3,
        seed=args.seed,
        n_patients=args.patients,
        studies_per_patient=args.studies_per_patient,
        series_per_study=args.series_per_study,
        junk=not args.no_junk,
    )
    counts = {k: v for k, v in summary.items() if not k.endswith("_paths")}
    print(json.dumps(counts))


if __name__ == "__main__":
    main()
