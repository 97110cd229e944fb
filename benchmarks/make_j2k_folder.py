"""Write a folder of JPEG 2000 films for the app's benchmarks: real code streams, new identities.

Each file is a copy of one of the JPEG 2000 films given (by default every JPEG 2000 file in
``../shared/data/dicom``, taken in turn) whose encapsulated pixel data is kept byte for byte, with
a new patient (``BENCH^J2K^NN``, ``--patients`` of them), Study, Series and SOP Instance UIDs
(``pydicom.uid.generate_uid`` from the seed and the file's number, so the same arguments always
give the same files), one study of one series per patient, laid out as
``<out>/PNN/IMnnnn.dcm``. Nothing is merged or deduplicated by UID in the app, as it would be with
plain copies.

    python -m benchmarks.make_j2k_folder /tmp/cxr-bench-folders/j2k_uids_100 -n 100
    python -m benchmarks.make_j2k_folder /tmp/cxr-bench-folders/j2k966_uids_100 -n 100 --films 966_fixed.dcm
"""
from __future__ import annotations

import argparse
import shutil
from pathlib import Path

DICOM = Path(__file__).resolve().parents[2] / "shared" / "data" / "dicom"


def jpeg2000_films(folder: Path) -> list[Path]:
    """The files of ``folder`` stored as JPEG 2000 (any of its transfer syntaxes), by name."""
    import pydicom
    from pydicom.uid import JPEG2000TransferSyntaxes

    found = []
    for path in sorted(folder.glob("*.dcm")):
        meta = pydicom.dcmread(path, stop_before_pixels=True, force=True).get("file_meta")
        if meta is not None and meta.get("TransferSyntaxUID") in JPEG2000TransferSyntaxes:
            found.append(path)
    return found


def make_j2k_folder(out: Path, n_files: int, films: list[Path], patients: int = 10, seed: int = 0) -> list[Path]:
    """Write ``n_files`` films into ``out`` (built in ``out.partial`` and renamed when complete);
    returns the files. ``ValueError`` when ``films`` is empty or ``out`` exists."""
    import pydicom
    from pydicom.uid import generate_uid

    if not films:
        raise ValueError("no JPEG 2000 film to copy")
    if out.exists():
        raise ValueError(f"{out} exists; remove it or choose another folder")
    partial = out.with_name(out.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    sources = [pydicom.dcmread(path) for path in films]
    written = []
    for number in range(n_files):
        ds = sources[number % len(sources)]
        patient = number % patients
        ds.PatientID = f"BENCHJ2K{patient:02d}"
        ds.PatientName = f"BENCH^J2K^{patient:02d}"
        ds.StudyInstanceUID = generate_uid(entropy_srcs=[str(seed), "study", str(patient)])
        ds.SeriesInstanceUID = generate_uid(entropy_srcs=[str(seed), "series", str(patient)])
        ds.SOPInstanceUID = generate_uid(entropy_srcs=[str(seed), "instance", str(number)])
        ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
        ds.InstanceNumber = number // patients + 1
        target = partial / f"P{patient:02d}" / f"IM{number:04d}.dcm"
        target.parent.mkdir(parents=True, exist_ok=True)
        ds.save_as(target, enforce_file_format=True)
        written.append(out / target.relative_to(partial))
    partial.rename(out)
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.make_j2k_folder", description=__doc__.split("\n\n")[0])
    parser.add_argument("out", type=Path, help="folder to write (must not exist)")
    parser.add_argument("-n", "--n-files", type=int, default=100)
    parser.add_argument("--films", nargs="+", metavar="NAME",
                        help=f"JPEG 2000 files in {DICOM} to copy (default: all of them)")
    parser.add_argument("--patients", type=int, default=10)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    films = [DICOM / name for name in args.films] if args.films else jpeg2000_films(DICOM)
    written = make_j2k_folder(args.out, args.n_files, films, args.patients, args.seed)
    print(f"{len(written)} films from {', '.join(p.name for p in films)} in {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
