"""Copies of one SOP Instance (tester: a DICOM copied into two folders was listed, classified and exported
once per copy): found once as the file named first (else, all found in folders, the one whose path sorts
first), the others named; different objects with the same UID, different patients and excluded folders
are never folded. Real DICOM files copied into tmp
folders."""
from __future__ import annotations

import csv
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pydicom
import pytest

from cxr_engine import find_images
from cxr_engine.reading.copies import COPIES_NAMED, copies_line, copies_note

from model_factory import default_card_path

CR = "CR-MONO1-10-chest.dcm"
J2K = "JPEG2KLossless_1s_1f_u_16_16.dcm"
SIIM = "1.2.276.0.7230010.3.1.4.8323329.6904.1517875201.850819.dcm"
FAKE_MONO1 = "Fake_MONOHR1.dcm"  # the SIIM film's UID and pixels, relabelled MONOCHROME1: another object


@pytest.fixture()
def two_folders(tmp_path, dicom_dir) -> Path:
    """``b/CR``, ``a/CR``, ``a/copy_of_chest.dcm`` (three copies of one instance) and ``a/J2K``."""
    root = tmp_path / "study"
    for folder in ("a", "b"):
        (root / folder).mkdir(parents=True)
        shutil.copy(dicom_dir / CR, root / folder / CR)
    shutil.copy(dicom_dir / CR, root / "a" / "copy_of_chest.dcm")
    shutil.copy(dicom_dir / J2K, root / "a" / J2K)
    return root


def test_copies_are_found_once_as_the_first_path(two_folders):
    found = find_images([two_folders])
    assert found.files == [two_folders / "a" / CR, two_folders / "a" / J2K]
    assert found.copies == {two_folders / "a" / CR: (two_folders / "a" / "copy_of_chest.dcm", two_folders / "b" / CR)}
    [result] = found.scans
    assert len(result.all_instances()) == 2
    assert result.find_instance(two_folders / "a" / CR).copies == found.copies[two_folders / "a" / CR]


def test_copies_across_opened_paths_and_a_file_opened_twice(two_folders):
    found = find_images([two_folders / "b", two_folders / "a", two_folders / "a" / J2K])
    assert found.files == [two_folders / "a" / CR, two_folders / "a" / J2K]
    assert sum(len(result.all_instances()) for result in found.scans) == 2
    assert found.copies[two_folders / "a" / CR] == (two_folders / "a" / "copy_of_chest.dcm", two_folders / "b" / CR)


def test_the_same_uid_with_other_bytes_is_not_a_copy(tmp_path, dicom_dir):
    for name in (SIIM, FAKE_MONO1):
        shutil.copy(dicom_dir / name, tmp_path / name)
    found = find_images([tmp_path])
    assert sorted(p.name for p in found.files) == sorted([SIIM, FAKE_MONO1]) and found.copies == {}


def test_another_patient_is_never_merged(tmp_path, dicom_dir):
    """The same UID under another patient (a mislabelled or re-identified file) stays a file of its own."""
    shutil.copy(dicom_dir / CR, tmp_path / CR)
    ds = pydicom.dcmread(dicom_dir / CR, force=True)
    ds.PatientName, ds.PatientID = "OTHER^PERSON", "OTHER-1"
    ds.save_as(tmp_path / "other.dcm")
    found = find_images([tmp_path])
    assert len(found.files) == 2 and found.copies == {}
    assert len([p for r in found.scans for p in r.patients]) == 2


def test_a_copy_in_an_excluded_folder_never_stands_for_the_film(tmp_path, dicom_dir):
    (tmp_path / "A_out").mkdir()  # sorts before the film's own path
    shutil.copy(dicom_dir / CR, tmp_path / "A_out" / CR)
    shutil.copy(dicom_dir / CR, tmp_path / CR)
    found = find_images([tmp_path], exclude=[tmp_path / "A_out"])
    assert found.files == [tmp_path / CR] and found.copies == {}


def _cli(args) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "cxr_engine", *map(str, args), "--model", str(default_card_path()),
                           "--backend", "onnx", "--no-isolation"], capture_output=True, text=True, timeout=300)


def test_cli_classifies_a_copied_instance_once_and_names_the_copies(two_folders, tmp_path):
    pytest.importorskip("onnxruntime")
    out = tmp_path / "r.csv"
    before = {p: p.stat().st_mtime_ns for p in two_folders.rglob("*.dcm")}
    proc = _cli([two_folders / "b", two_folders / "a", "--csv", out])
    assert proc.returncode == 0, proc.stderr
    with open(out, newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert [Path(r["path"]) for r in rows] == [two_folders / "a" / CR, two_folders / "a" / J2K]
    note = copies_note((two_folders / "a" / "copy_of_chest.dcm", two_folders / "b" / CR))
    assert note in rows[0]["warnings"] and note not in rows[1]["warnings"]
    assert copies_line(two_folders / "a" / CR, (two_folders / "a" / "copy_of_chest.dcm", two_folders / "b" / CR)) \
        in proc.stderr
    assert {p: p.stat().st_mtime_ns for p in two_folders.rglob("*.dcm")} == before  # sources untouched

    quiet = _cli([two_folders, "--csv", tmp_path / "q.csv", "--quiet"])
    assert quiet.returncode == 0 and quiet.stderr == ""


def test_cli_with_relative_paths_names_the_copies_too(two_folders, tmp_path):
    pytest.importorskip("onnxruntime")
    out = tmp_path / "r.csv"
    cwd = os.getcwd()
    os.chdir(two_folders)
    try:
        proc = _cli([Path("b") / CR, Path("a") / CR, "--csv", out, "--quiet"])
    finally:
        os.chdir(cwd)
    assert proc.returncode == 0, proc.stderr
    with open(out, newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert [r["path"] for r in rows] == [str(Path("b") / CR)]  # two named copies: the first named is kept
    assert str(two_folders / "a" / CR) in rows[0]["warnings"]


@pytest.fixture()
def copies200(tmp_path, dicom_dir) -> Path:
    """200 byte-identical copies of one real film in one folder (the tester's ``copies200``)."""
    folder = tmp_path / "copies200"
    folder.mkdir()
    for number in range(1, 201):
        shutil.copy(dicom_dir / SIIM, folder / f"c{number}.dcm")
    return folder


def test_cli_reports_200_identical_copies_in_one_short_line(copies200, tmp_path):
    """Tester: one 9 KB standard error line and CSV cell listed all 199 copies. Now: one line per group
    saying how many copies of which file, the cell the count and the first paths, ``-v`` every path."""
    pytest.importorskip("onnxruntime")
    out = tmp_path / "r.csv"
    proc = _cli([copies200, "--csv", out])
    assert proc.returncode == 0, proc.stderr
    copy_lines = [line for line in proc.stderr.splitlines() if "identical" in line]
    assert copy_lines == [f"cxr-classify: 199 identical copies of {copies200 / 'c1.dcm'} left out (same SOP "
                          "Instance, same bytes): classified once, as that file; -v lists them"]
    with open(out, newline="") as handle:
        [row] = list(csv.DictReader(handle))
    assert row["path"] == str(copies200 / "c1.dcm")
    assert (f"also stored as 199 other identical files, left out: {copies200 / 'c10.dcm'}, "
            f"{copies200 / 'c100.dcm'} and {199 - COPIES_NAMED} more") in row["warnings"]
    assert len(row["warnings"]) < 600 and str(copies200 / "c101.dcm") not in row["warnings"]

    verbose = _cli([copies200, "--csv", tmp_path / "v.csv", "-v"])
    listed = {line.split(": identical copy of")[0].split(" ")[-1] for line in verbose.stderr.splitlines()
              if ": identical copy of " in line}
    assert listed == {str(copies200 / f"c{number}.dcm") for number in range(2, 201)}
