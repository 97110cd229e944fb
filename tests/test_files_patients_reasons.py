"""Issue 15, files, patients and reasons (engine side; the app's side is in test_desktop_files.py).

A. DICOMDIR references that differ from the disk in case, ISO 9660 version or trailing dot are
   found; ``cxr-classify`` treats a DICOMDIR as the files it lists; the CLI and the app find the
   same files in a folder (one scan serves both).
B. Patients are grouped by Patient ID, issuer, name and birth date: two people are never merged
   because an attribute is empty.
C. Reasons say what is wrong: truncated pixel data (how many bytes of how many), a DICOMDIR, a
   report or a presentation state, Float Pixel Data; damaged UIDs escaped; the app and the CLI
   word each fault alike.

Every test here failed on the code before the fix. The bug case is read from
``../shared/bugcases`` (skipped with a reason when absent); the rest build their own files from
the real films in ``../shared/data/dicom``.
"""
from __future__ import annotations

import csv
import os
import shutil
from pathlib import Path

import numpy as np
import pydicom
import pytest
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.fileset import FileSet
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

from cxr_engine import find_images
from cxr_engine.errors import ImageReadError, UnsupportedImageError
from cxr_engine.reading.read import read_image
from cxr_engine.reading.isolation import read_image_isolated
from cxr_engine.messages import printable
from cxr_engine.reading.scanning import NO_PATIENT_ID, scan

from model_factory import BUNDLED_CARD

BUGCASES = Path(os.environ.get("CXR_BUGCASES", Path(__file__).resolve().parents[2] / "shared" / "bugcases"))
MONO1 = "CR-MONO1-10-chest.dcm"  # native (implicit VR), no file meta, no Patient ID
J2K16 = "JPEG2KLossless_1s_1f_u_16_16.dcm"  # JPEG 2000, no Patient ID
J2K_CR = "966_fixed.dcm"  # JPEG 2000 (encapsulated), with file meta
SIIM = "1.2.276.0.7230010.3.1.4.8323329.6904.1517875201.850819.dcm"  # CR, with file meta

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")


def bugcase(name: str) -> Path:
    path = BUGCASES / name
    if not path.exists():
        pytest.skip(f"bug case not found at {path} (set CXR_BUGCASES to the shared bugcases folder)")
    return path


def image_paths(result) -> set[Path]:
    return {inst.path for inst in result.all_instances() if inst.is_image}


# ======================================================================= A. DICOMDIR and discovery


def test_bugcase_dicomdir_with_lower_case_files_finds_its_image():
    dicomdir = bugcase("dicomdir-lowercase/DICOMDIR")
    image = dicomdir.parent / "pt000000" / "st000000" / "se000000" / "im000000"
    for target in (dicomdir, dicomdir.parent):
        result = scan(target)
        assert result.errors == (), result.errors
        assert image_paths(result) == {image}
    assert find_images([dicomdir]).files == [image]  # the CLI reads the image, not "not a DICOM file"
    assert find_images([dicomdir.parent]).files == [image]  # once, though the walk meets it too


@pytest.fixture
def fileset(tmp_path, dicom_dir) -> Path:
    """A DICOMDIR (written by pydicom's FileSet) listing three films, its folder renamed as a CD
    copied to Linux would show it."""
    fs = FileSet()
    staged = tmp_path / "staged"
    staged.mkdir()
    for number, name in enumerate((SIIM, J2K16, "Fake_MONOHR1.dcm"), 1):
        ds = pydicom.dcmread(dicom_dir / name)
        # The records a DICOMDIR needs (PS3.3 F.5), which the anonymised films lack.
        for keyword, value in (("PatientID", f"P{number}"), ("StudyID", "1"), ("StudyDate", "20260101"),
                               ("StudyTime", "101500"), ("SeriesNumber", 1), ("InstanceNumber", number),
                               ("Modality", "CR")):
            if not ds.get(keyword):
                setattr(ds, keyword, value)
        ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
        ds.save_as(staged / f"{number}.dcm")
        fs.add(staged / f"{number}.dcm")
    fs.write(tmp_path / "cd")
    shutil.rmtree(staged)
    return tmp_path / "cd"


def _rename_all(root: Path, rename) -> None:
    for path in sorted(root.rglob("*"), key=lambda p: len(p.parts), reverse=True):
        if path.name != "DICOMDIR":
            path.rename(path.with_name(rename(path.name)))


@pytest.mark.parametrize("disk_name", [str.lower, lambda n: n + ";1", lambda n: n.lower() + ".",
                                       lambda n: n.capitalize()])
def test_dicomdir_references_are_found_whatever_the_case_version_or_trailing_dot(fileset, disk_name):
    _rename_all(fileset, disk_name)
    result = scan(fileset / "DICOMDIR")
    assert result.errors == ()
    assert len(image_paths(result)) == 3
    assert all(p.is_file() for p in image_paths(result))
    assert len(find_images([fileset / "DICOMDIR"]).files) == 3


def test_references_written_with_iso9660_versions_find_plain_files(fileset):
    ds = pydicom.dcmread(fileset / "DICOMDIR")
    for record in ds.DirectoryRecordSequence:
        if "ReferencedFileID" in record:
            record.ReferencedFileID = [part.lower() + ";1" for part in record.ReferencedFileID]
    ds.save_as(fileset / "DICOMDIR")
    result = scan(fileset / "DICOMDIR")
    assert result.errors == () and len(image_paths(result)) == 3


def test_a_reference_that_is_missing_or_leaves_the_folder_is_an_error_and_the_rest_are_read(fileset):
    ds = pydicom.dcmread(fileset / "DICOMDIR")
    refs = [r for r in ds.DirectoryRecordSequence if "ReferencedFileID" in r]
    refs[0].ReferencedFileID = ["..", "..", "etc", "passwd"]
    refs[1].ReferencedFileID = ["NOSUCH", "IM999"]
    ds.save_as(fileset / "DICOMDIR")
    result = scan(fileset / "DICOMDIR")
    reasons = sorted(e.reason for e in result.errors)
    assert len(image_paths(result)) == 1
    assert "outside its folder" in reasons[1] and "not found" in reasons[0]


@pytest.fixture
def mixed_folder(tmp_path, dicom_dir, cxr3_dir, fileset) -> Path:
    """Files both products must find: DICOM by suffix (``.ima``), by content (UID-named without
    a suffix), a DICOMDIR with lower-case files, PNG and JPEG; and files neither may take."""
    import cv2

    folder = tmp_path / "mixed"
    folder.mkdir()
    shutil.copy(dicom_dir / "Fake_MONOHR1.dcm", folder / "IM0001.ima")
    shutil.copy(dicom_dir / MONO1, folder / "1.2.392.200036.9125.0.19950720112207")  # no prefix, no suffix
    jpeg = next((cxr3_dir / "images" / "normal").glob("*.jpg"))
    shutil.copy(jpeg, folder / "film.jpg")
    cv2.imwrite(str(folder / "film.png"), np.full((300, 300), 128, np.uint8))
    shutil.copytree(fileset, folder / "cd")
    _rename_all(folder / "cd", str.lower)
    (folder / "notes.txt").write_text("not an image")
    (folder / ".DS_Store").write_bytes(b"\0" * 100)
    (folder / "README").write_text("no extension, not DICOM either")
    return folder


def test_cli_and_desktop_find_the_same_files(mixed_folder):
    from cxr_desktop.scan_job import scan_paths

    cli = find_images([mixed_folder]).files
    (desktop,) = scan_paths([mixed_folder], progress=lambda value: None, should_cancel=lambda: False)
    names = sorted(p.relative_to(mixed_folder).as_posix().lower() for p in cli)
    assert len(names) == 7, names  # IM0001.ima, the UID-named file, film.jpg, film.png, 3 in cd/
    assert {"im0001.ima", "1.2.392.200036.9125.0.19950720112207", "film.jpg", "film.png"} <= set(names)
    assert len(cli) == len(set(cli)), "each file once"
    assert set(cli) == image_paths(desktop)
    assert desktop.errors == ()


# ======================================================================= B. patients kept apart


def _person(src: Path, out: Path, **attributes) -> Path:
    """A copy of ``src`` with new study/series/instance UIDs and the given patient attributes
    (``None`` deletes one)."""
    ds = pydicom.dcmread(src, force=True)
    ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.SOPInstanceUID = generate_uid(), generate_uid(), generate_uid()
    for keyword in ("PatientID", "PatientName", "PatientBirthDate", "IssuerOfPatientID"):
        if keyword in ds:
            delattr(ds, keyword)
    for keyword, value in attributes.items():
        if keyword.startswith("same_study_as"):
            continue
        setattr(ds, keyword, value)
    if "same_study_as" in attributes:
        ds.StudyInstanceUID = pydicom.dcmread(attributes["same_study_as"], stop_before_pixels=True,
                                              force=True).StudyInstanceUID
    ds.save_as(out)
    return out


def test_several_people_without_patient_id_are_never_merged(tmp_path, dicom_dir):
    src = dicom_dir / MONO1
    f = tmp_path / "people"
    f.mkdir()
    files = {
        "anna": _person(src, f / "anna.dcm", PatientName="DOE^ANNA"),
        "bert": _person(src, f / "bert.dcm", PatientName="ROE^BERT"),
        "anon1": _person(src, f / "anon1.dcm"),
        "anon2": _person(src, f / "anon2.dcm"),
        "born1": _person(src, f / "born1.dcm", PatientBirthDate="19500101"),
        "born2": _person(src, f / "born2.dcm", PatientBirthDate="19500101"),
        "cara_a": _person(src, f / "cara_a.dcm", PatientName="Poe^Cara", PatientBirthDate="19600202"),
        "cara_b": _person(src, f / "cara_b.dcm", PatientName="POE^CARA^^", PatientBirthDate="19600202"),
    }
    files["anna_2"] = _person(src, f / "anna_2.dcm", PatientName="DOE^ANNA", same_study_as=files["anna"])
    shutil.copy(dicom_dir / J2K16, f / "j2k.dcm")  # the pair from the issue: another study, no ID
    shutil.copy(src, f / "mono1.dcm")
    result = scan(f)
    groups = sorted(sorted(i.path.stem for s in p.studies for se in s.series for i in se.instances)
                    for p in result.patients)
    assert groups == sorted([["anna", "anna_2"], ["bert"], ["anon1"], ["anon2"], ["born1"], ["born2"],
                             ["cara_a", "cara_b"], ["j2k"], ["mono1"]])
    assert all(p.patient_id == NO_PATIENT_ID for p in result.patients)
    assert len({p.key for p in result.patients}) == len(result.patients)


def test_same_patient_id_with_another_name_birth_date_or_issuer_is_another_person(tmp_path, dicom_dir):
    src = dicom_dir / MONO1
    f = tmp_path / "ids"
    f.mkdir()
    _person(src, f / "a1.dcm", PatientID="123", PatientName="DOE^ANNA", PatientBirthDate="19700101")
    _person(src, f / "a2.dcm", PatientID="123", PatientName="doe^anna", PatientBirthDate="19700101")
    _person(src, f / "other_name.dcm", PatientID="123", PatientName="ROE^BERT", PatientBirthDate="19700101")
    _person(src, f / "other_birth.dcm", PatientID="123", PatientName="DOE^ANNA", PatientBirthDate="19800101")
    _person(src, f / "other_issuer.dcm", PatientID="123", PatientName="DOE^ANNA", PatientBirthDate="19700101",
            IssuerOfPatientID="OTHER-HOSPITAL")
    _person(src, f / "no_name.dcm", PatientID="123")
    result = scan(f)
    groups = sorted(sorted(i.path.stem for s in p.studies for se in s.series for i in se.instances)
                    for p in result.patients)
    assert groups == [["a1", "a2"], ["no_name"], ["other_birth"], ["other_issuer"], ["other_name"]]
    assert {p.issuer for p in result.patients} == {"", "OTHER-HOSPITAL"}


def test_patient_keys_agree_between_scans_of_single_files(tmp_path, dicom_dir):
    """Files opened one by one are merged by key in the app: equal people, equal keys."""
    src = dicom_dir / MONO1
    a = _person(src, tmp_path / "a.dcm", PatientID="9", PatientName="DOE^ANNA")
    b = _person(src, tmp_path / "b.dcm", PatientID="9", PatientName="DOE^ANNA")
    c = _person(src, tmp_path / "c.dcm")
    d = _person(src, tmp_path / "d.dcm")
    keys = [scan(p).patients[0].key for p in (a, b, c, d)]
    assert keys[0] == keys[1] and keys[2] != keys[3]


# ======================================================================= C. reasons


def _both_readers(path: Path):
    """The reason from ``read_image`` and from the decoding worker (the CLI and the app use it)."""
    reasons = []
    for reader in (read_image, read_image_isolated):
        with pytest.raises(ImageReadError) as info:
            reader(path)
        assert info.value.path == path
        reasons.append(info.value.reason)
    assert reasons[0] == reasons[1]
    return reasons[0]


@pytest.mark.parametrize("name, encapsulated", [(J2K_CR, True), (MONO1, False)])
def test_file_cut_inside_its_pixel_data_says_how_many_bytes_of_how_many(tmp_path, dicom_dir, name, encapsulated):
    data = (dicom_dir / name).read_bytes()
    path = tmp_path / "cut.dcm"
    path.write_bytes(data[: len(data) // 2])
    reason = _both_readers(path)
    assert reason.startswith("pixel data truncated: the file holds "), reason
    assert "not a DICOM file" not in reason
    ds = pydicom.dcmread(dicom_dir / name, stop_before_pixels=True, force=True)
    if encapsulated:
        assert "compressed" in reason and "of at least" in reason
    else:
        total = ds.Rows * ds.Columns * ds.BitsAllocated // 8
        present = len(data) // 2 - (len(data) - total)
        assert f"holds {present:,} of the {total:,} bytes" in reason
    assert scan(path).errors == ()  # the header is whole: the scan lists it, the reader says why


def test_dicomdir_read_as_an_image_says_it_is_a_dicomdir(fileset):
    reason = _both_readers(fileset / "DICOMDIR")
    assert reason.startswith("a DICOMDIR") and "3 file(s)" in reason


def _non_image(path: Path, sop_class: str, **attributes) -> Path:
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.file_meta.MediaStorageSOPClassUID = sop_class
    ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
    ds.SOPClassUID, ds.SOPInstanceUID = sop_class, ds.file_meta.MediaStorageSOPInstanceUID
    ds.StudyInstanceUID, ds.SeriesInstanceUID = generate_uid(), generate_uid()
    ds.PatientName, ds.PatientID = "DOE^ANNA", "42"
    for keyword, value in attributes.items():
        setattr(ds, keyword, value)
    ds.save_as(path, enforce_file_format=True)
    return path


@pytest.mark.parametrize("sop_class, kind", [
    ("1.2.840.10008.5.1.4.1.1.88.11", "Basic Text SR"),
    ("1.2.840.10008.5.1.4.1.1.88.33", "Comprehensive SR"),
    ("1.2.840.10008.5.1.4.1.1.11.1", "Grayscale Softcopy Presentation State"),
    ("1.2.840.10008.5.1.4.1.1.104.1", "Encapsulated PDF"),
])
def test_dicom_object_without_an_image_says_what_it_is(tmp_path, sop_class, kind):
    path = _non_image(tmp_path / "object.dcm", sop_class, Modality="SR")
    with pytest.raises(UnsupportedImageError) as info:
        read_image(path)
    assert info.value.reason == f"a DICOM {kind} object, not an image: it holds no pixel data"
    assert "not a DICOM file" not in info.value.reason


@pytest.mark.parametrize("keyword, vr, dtype", [("FloatPixelData", "OF", np.float32),
                                                ("DoubleFloatPixelData", "OD", np.float64)])
def test_float_pixel_data_is_named(tmp_path, keyword, vr, dtype):
    path = _non_image(tmp_path / "float.dcm", "1.2.840.10008.5.1.4.1.1.30", Rows=4, Columns=4,
                      SamplesPerPixel=1, PhotometricInterpretation="MONOCHROME2", BitsAllocated=32 if vr == "OF" else 64)
    ds = pydicom.dcmread(path)
    setattr(ds, keyword, np.arange(16, dtype=dtype).tobytes())
    ds[keyword].VR = vr
    ds.save_as(path)
    with pytest.raises(UnsupportedImageError) as info:
        read_image(path)
    reason = info.value.reason
    assert ("Double Float Pixel Data" if vr == "OD" else "stored as Float Pixel Data") in reason
    assert "no pixel data" not in reason


def test_multi_frame_colour_file_is_read_or_refused_clearly(tmp_path):
    from pydicom.uid import ExplicitVRLittleEndian as evrle

    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = evrle
    ds.file_meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.7.4"
    ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
    ds.SOPClassUID, ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPClassUID, ds.file_meta.MediaStorageSOPInstanceUID
    ds.Rows = ds.Columns = 100
    ds.NumberOfFrames, ds.SamplesPerPixel, ds.PlanarConfiguration = 2, 3, 0
    ds.PhotometricInterpretation = "RGB"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 8, 8, 7, 0
    ds.PixelData = np.full((2, 100, 100, 3), 90, np.uint8).tobytes()
    path = tmp_path / "colour2.dcm"
    ds.save_as(path, enforce_file_format=True)
    try:
        image = read_image(path)
    except ImageReadError as exc:
        assert "unexpected pixel array shape" not in exc.reason
        assert "colour" in exc.reason or "frame" in exc.reason
    else:
        assert image.shape == (100, 100)
        assert any("multi-frame" in w for w in image.warnings) and any("colour" in w for w in image.warnings)


def test_undecodable_uids_are_printed_escaped(tmp_path, dicom_dir):
    assert printable("@\x9c2.840.10008.1.2.4.50") == "@\\x9c2.840.10008.1.2.4.50"
    data = bytearray((dicom_dir / J2K_CR).read_bytes())
    syntax = b"1.2.840.10008.1.2.4.90"
    at = data.index(syntax)
    data[at: at + 2] = b"@\x9c"  # a damaged Transfer Syntax UID, as a bit flip leaves it
    path = tmp_path / "bad_uid.dcm"
    path.write_bytes(bytes(data))
    with pytest.raises(ImageReadError) as info:
        read_image(path)
    reason = info.value.reason
    assert "\x9c" not in reason and "\x9c" not in str(info.value)
    assert all(ch.isprintable() for ch in reason), reason
    error = ImageReadError(path, "transfer syntax @\x9c2.840")
    assert error.reason == "transfer syntax @\\x9c2.840"


# ----------------------------------------------------------------------- one wording for app and CLI


#: The CLI's options in these tests: the bundled classifier on ONNX Runtime (the wording is tested,
#: not the model; no torch import, no model to build).
MODEL_ARGS = ["--model", str(BUNDLED_CARD), "--backend", "onnx", "--device", "cpu"]


def test_app_and_cli_word_each_fault_alike(tmp_path, dicom_dir):
    """The app shows a scan error, or, for a file the scan lists, the decoding worker's reason;
    the CLI writes a reason per row. For every fault they are the same words."""
    from cxr_engine.cli import main

    folder = tmp_path / "faults"
    folder.mkdir()
    j2k, mono = (dicom_dir / J2K_CR).read_bytes(), (dicom_dir / MONO1).read_bytes()
    (folder / "cut_pixels.dcm").write_bytes(j2k[: len(j2k) // 2])
    (folder / "cut_native.dcm").write_bytes(mono[: len(mono) // 2])
    (folder / "cut_header.dcm").write_bytes(j2k[:1200])
    (folder / "text.dcm").write_bytes(b"this is not a DICOM file\n" * 20)
    (folder / "empty.dcm").write_bytes(b"")
    (folder / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 40)
    _non_image(folder / "report.dcm", "1.2.840.10008.5.1.4.1.1.88.11")
    shutil.copy(dicom_dir / MONO1, folder / "good.dcm")

    result = scan(folder, include_raster=True)
    app = {e.path.name: e.reason for e in result.errors}
    for path in result.image_files():
        try:
            read_image_isolated(path)
        except ImageReadError as exc:
            app[path.name] = exc.reason

    out = tmp_path / "rows.csv"
    assert main([str(folder), *MODEL_ARGS, "--csv", str(out)]) == 1
    with open(out, newline="") as handle:
        cli = {Path(row["path"]).name: row["message"] for row in csv.DictReader(handle) if row["status"] == "error"}
    assert set(cli) == {"cut_pixels.dcm", "cut_native.dcm", "cut_header.dcm", "text.dcm", "empty.dcm", "broken.png"}
    assert cli == app
    assert cli["cut_pixels.dcm"].startswith("pixel data truncated")
    # Named directly (not found by a scan), a file reads with the same words as well.
    for name in ("cut_header.dcm", "text.dcm", "empty.dcm", "broken.png"):
        with pytest.raises(ImageReadError) as info:
            read_image(folder / name)
        assert info.value.reason == app[name]
    assert find_images([folder / "report.dcm"]).files == [folder / "report.dcm"]


def test_cli_classifies_the_image_a_dicomdir_lists(capsys):
    from cxr_engine.cli import main

    dicomdir = bugcase("dicomdir-lowercase/DICOMDIR")
    assert main([str(dicomdir), *MODEL_ARGS]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 2 and "im000000,ok," in lines[1]
