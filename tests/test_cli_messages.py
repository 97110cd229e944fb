"""cxr-classify's messages for bad options and bad inputs (tester items 9, 14, 15): non-positive numbers are
usage errors, a missing card path is "no such model card file", a text file named directly is "not a DICOM
or image file", a link loop is a "symbolic link loop", a missing path is a problem of ``find_images``, and
rows for broken links keep their place in the walk.

Real films from ``../shared/data/dicom`` (skipped with the reason when absent); the bundled ONNX model.
"""
from __future__ import annotations

import csv
import os
import shutil
from pathlib import Path

import pytest

from cxr_engine import find_images
from cxr_engine.cli import EXIT_USAGE, main

from model_factory import default_card_path

COMMON = ["--model", str(default_card_path()), "--backend", "onnx", "--device", "cpu", "-q", "--decode-workers", "1"]
FILM = "CR-MONO1-10-chest.dcm"
OTHER_FILM = "RG1_JLSN.dcm"


@pytest.fixture()
def film(tmp_path, dicom_dir) -> Path:
    if not (dicom_dir / FILM).exists():
        pytest.skip(f"not in ../shared/data/dicom: {FILM}")
    folder = tmp_path / "in"
    folder.mkdir()
    return Path(shutil.copy(dicom_dir / FILM, folder / FILM))


def rows(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


@pytest.mark.parametrize("option", ["--decode-timeout", "--batch-size", "--decode-workers", "--network-timeout"])
@pytest.mark.parametrize("value", ["0", "-1"])
def test_a_non_positive_number_is_a_usage_error(option, value, film, capsys):
    with pytest.raises(SystemExit) as stop:
        main([str(film), option, value])
    assert stop.value.code == EXIT_USAGE
    assert f"argument {option}: must be more than 0, not {value}" in capsys.readouterr().err


@pytest.mark.parametrize("option", ["--csv", "--heatmap-dir", "--lung-mask-dir", "--dicom-out"])
def test_an_empty_output_path_is_a_usage_error(option, film, capsys):
    """``--dicom-out ""`` wrote into the current folder without a word."""
    with pytest.raises(SystemExit) as stop:
        main([str(film), option, ""])
    assert stop.value.code == EXIT_USAGE
    assert f"argument {option}: an empty path: name the file or folder" in capsys.readouterr().err


def test_a_missing_card_path_is_no_such_file_and_an_unknown_name_is_no_bundled_model(film, tmp_path, capsys):
    missing = tmp_path / "missing.json"
    assert main([str(film), "--model", str(missing)]) == EXIT_USAGE
    assert capsys.readouterr().err.strip() == f"cxr-classify: no such model card file: {missing}"
    assert main([str(film), "--model", "no-such-model"]) == EXIT_USAGE
    assert "no bundled model named 'no-such-model'" in capsys.readouterr().err


def test_bad_inputs_get_their_reason_and_keep_their_place(film, dicom_dir, tmp_path, capsys):
    folder = film.parent
    if not (dicom_dir / OTHER_FILM).exists():
        pytest.skip(f"not in ../shared/data/dicom: {OTHER_FILM}")
    shutil.copy(dicom_dir / OTHER_FILM, folder / "c_film.dcm")
    os.symlink("nowhere.dcm", folder / "b_broken.dcm")
    os.symlink("d_loop", folder / "d_loop")
    (tmp_path / "notes").mkdir()
    notes = tmp_path / "notes" / "notes.txt"
    notes.write_text("a radiologist's notes, not an image\n")
    out = tmp_path / "out" / "out.csv"
    gone = tmp_path / "gone" / "gone.dcm"
    code = main([str(notes), str(folder), str(gone), "--csv", str(out), *COMMON])
    assert code == 1
    got = [(Path(row["path"]).name, row["status"], row["message"]) for row in rows(out)]
    # Each path named keeps its place; within the folder its films come in the study tree's order, then what
    # could not be read, in walk order.
    assert got == [
        ("notes.txt", "error", "a text file: this program reads DICOM, PNG and JPEG files only"),
        ("CR-MONO1-10-chest.dcm", "ok", ""),
        ("c_film.dcm", "ok", ""),
        ("b_broken.dcm", "error", "broken symbolic link: its target nowhere.dcm does not exist"),
        ("d_loop", "error", "symbolic link loop: the link leads back to itself"),
        ("gone.dcm", "error", "no such file or folder"),
    ]
    err = capsys.readouterr().err
    assert f"cxr-classify: {gone}: no such file or folder" in err


def test_find_images_lists_a_missing_path_as_a_problem(tmp_path):
    os.symlink("loop", tmp_path / "loop")
    found = find_images(["/nonexistent", tmp_path / "loop"])
    assert found.problems == {Path("/nonexistent"): "no such file or folder",
                              tmp_path / "loop": "symbolic link loop: the link leads back to itself"}
    assert found.scans == []  # nothing was scanned


def test_quiet_standard_error_holds_only_the_cli_lines_about_failed_files(dicom_dir, tmp_path):
    """pydicom's warnings about damaged headers (a 56-character Patient Birth Date in 966_fixed.dcm, a JPEG
    2000 file cut short) and the folder scan's log lines never reach standard error with ``--quiet``:
    only one ``cxr-classify: PATH: reason`` line per failed file, from the main process and the decoding
    workers alike (a real run in its own process)."""
    import subprocess
    import sys

    names = ("966_fixed.dcm", "RG1_J2KI.dcm")
    if not all((dicom_dir / name).exists() for name in names):
        pytest.skip(f"not in ../shared/data/dicom: {', '.join(names)}")
    folder = tmp_path / "in"
    folder.mkdir()
    shutil.copy(dicom_dir / "966_fixed.dcm", folder / "966_fixed.dcm")
    whole = (dicom_dir / "RG1_J2KI.dcm").read_bytes()
    (folder / "cut_j2k.dcm").write_bytes(whole[: len(whole) * 2 // 3])
    (folder / "notes.dcm").write_bytes(b"\x00\x01not dicom at all" * 50)
    done = subprocess.run([sys.executable, "-m", "cxr_engine", str(folder), "--csv", str(tmp_path / "out.csv"),
                           *COMMON], capture_output=True, text=True, timeout=300)
    assert done.returncode == 1, done.stderr
    lines = done.stderr.splitlines()
    assert [line.split(": ", 2)[1] for line in lines] == [str(folder / "cut_j2k.dcm"), str(folder / "notes.dcm")], lines
    assert all(line.startswith("cxr-classify: ") for line in lines), lines
    ok = {Path(row["path"]).name for row in rows(tmp_path / "out.csv") if row["status"] == "ok"}
    assert ok == {"966_fixed.dcm"}


def test_a_copy_named_on_the_command_line_keeps_its_row(film, dicom_dir, tmp_path):
    """Copies of one SOP Instance are classified once: as the file named (over one found in a folder),
    as the first named of two named, and the rows keep the order of the inputs (tester item 7)."""
    if not (dicom_dir / OTHER_FILM).exists():
        pytest.skip(f"not in ../shared/data/dicom: {OTHER_FILM}")
    folder = film.parent  # in/CR-MONO1-10-chest.dcm
    shutil.copy(dicom_dir / OTHER_FILM, folder / OTHER_FILM)
    (tmp_path / "b").mkdir()
    named = Path(shutil.copy(film, tmp_path / "b" / "film.dcm"))  # the same instance, byte for byte

    found = find_images([named, folder])
    assert found.files == [named, folder / OTHER_FILM]
    assert found.copies == {named: (film,)}
    found = find_images([film, named])
    assert found.files == [film] and found.copies == {film: (named,)}
    found = find_images([named, film])
    assert found.files == [named] and found.copies == {named: (film,)}
    found = find_images([folder, named])  # the named file wins over the one walked, whatever the order
    assert found.files == [folder / OTHER_FILM, named]

    out = tmp_path / "out" / "out.csv"
    assert main([str(named), str(folder), "--csv", str(out), *COMMON]) == 0
    got = rows(out)
    assert [row["path"] for row in got] == [str(named), str(folder / OTHER_FILM)]
    assert str(film) in got[0]["warnings"]  # the copy left out is named in the kept row's warnings
