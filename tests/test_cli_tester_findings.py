"""A tester's findings (2026-12-01) on what a batch is given: one file reached by several paths was classified
once per path; a mistyped input stopped the run as if it were an output problem; a FIFO hung the run; a
control character in a file name went into the outputs' names, and a note on the PDF's fonts ignored
``--quiet``; a file name starting with ``=`` became a formula in a spreadsheet. Real DICOM files copied
into tmp folders."""
from __future__ import annotations

import csv
import os
import shutil
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from cxr_engine import find_images
from cxr_engine.batch import spreadsheet_text
from cxr_engine.cli import main
from cxr_engine.outputs.output_paths import source_problem
from cxr_engine.reading.copies import aliases_note

from test_cli import card, read_rows  # noqa: F401  (card is a fixture)

FILM = "966_fixed.dcm"
#: Another real film (a different SOP Instance), classified beside the odd inputs.
OTHER = "1.3.6.1.4.1.11129.5.5.110503645592756492463169821050252582267888.dcm"


def _films(dicom_dir: Path, *names: str) -> list[Path]:
    missing = [name for name in names if not (dicom_dir / name).exists()]
    if missing:
        pytest.skip(f"not in {dicom_dir}: {', '.join(missing)}")
    return [dicom_dir / name for name in names]


def _classify(*args) -> list[str]:
    return ["--device", "cpu", "--no-isolation", *map(str, args)]


@pytest.fixture()
def linked(tmp_path, dicom_dir) -> Path:
    """``d/real/966_fixed.dcm``, ``d/other/lnk`` a symbolic link to ``d/real``, ``d/hard.dcm`` a hard link to
    the film (the tester's layout, and a hard link)."""
    [film] = _films(dicom_dir, FILM)
    root = tmp_path / "d"
    (root / "real").mkdir(parents=True)
    (root / "other").mkdir()
    shutil.copy(film, root / "real" / FILM)
    (root / "other" / "lnk").symlink_to(Path("..") / "real")
    os.link(root / "real" / FILM, root / "hard.dcm")
    return root


# --------------------------------------------------------------------------- one file, several paths


def test_a_file_named_through_a_linked_folder_is_classified_once_with_a_note(linked, card, tmp_path, capsys):
    out, maps, dicom_out = tmp_path / "f.csv", tmp_path / "maps", tmp_path / "out"
    named = linked / "other" / "lnk" / FILM
    code = main(_classify(linked / "real", named, "--model", card.path, "--csv", out, "--heatmap-dir", maps,
                          "--dicom-out", dicom_out))
    assert code == 0, capsys.readouterr().err
    _, rows = read_rows(out)
    assert [row["path"] for row in rows] == [str(named)]  # the file named keeps its row
    assert aliases_note((linked / "real" / FILM,)) in rows[0]["warnings"]
    assert len(list(maps.glob("*_cam.png"))) == 1
    assert len(list(dicom_out.rglob("*_sc.dcm"))) == 1
    assert f"1 other path to the same file {named.absolute()} left out" in capsys.readouterr().err


@pytest.mark.parametrize("paths, kept, others", [
    (["real", "other/lnk/" + FILM], "other/lnk/" + FILM, ["real/" + FILM]),  # a link to the folder, named
    (["real", "other/lnk"], "other/lnk/" + FILM, ["real/" + FILM]),  # a linked folder named: the path sorting first
    (["real", "hard.dcm"], "hard.dcm", ["real/" + FILM]),  # a hard link
    (["."], "hard.dcm", ["other/lnk/" + FILM, "real/" + FILM]),  # one walk: a hard link, a folder reached twice
    (["real", "real/" + FILM], "real/" + FILM, []),  # one path twice: no other path to name
])
def test_each_file_is_listed_once_whatever_the_paths_that_reach_it(linked, monkeypatch, paths, kept, others):
    """``find_images``, which the app's scan uses too (``cxr_desktop.scan_job``): listed once, one instance in
    the trees the app shows, the other paths named."""
    monkeypatch.chdir(linked)
    found = find_images(paths)
    assert [os.path.abspath(path) for path in found.files] == [str(linked / kept)]
    instances = [instance for result in found.scans for instance in result.all_instances()]
    assert [os.path.abspath(instance.path) for instance in instances] == [str(linked / kept)]
    assert [str(path) for path in instances[0].aliases] == [str(linked / other) for other in others]
    assert {os.path.abspath(path): list(map(str, aliases)) for path, aliases in found.aliases.items()} == (
        {str(linked / kept): [str(linked / other) for other in others]} if others else {})
    assert found.copies == {}


def test_an_unreadable_file_reached_by_two_paths_has_one_row(tmp_path, monkeypatch):
    (tmp_path / "study").mkdir()
    (tmp_path / "study" / "bad.dcm").write_bytes(b"DICM" * 40)
    (tmp_path / "lnk.dcm").symlink_to(tmp_path / "study" / "bad.dcm")
    found = find_images([tmp_path / "study", tmp_path / "lnk.dcm"])
    assert found.files == [tmp_path / "lnk.dcm"]  # the path named
    assert found.aliases == {tmp_path / "lnk.dcm": (tmp_path / "study" / "bad.dcm",)}


def test_a_link_out_of_its_folder_never_stands_for_a_film_another_input_reaches(dicom_dir, tmp_path):
    """``other/out.dcm`` leads out of ``other`` (not followed: an error) to the film ``real`` holds."""
    [film] = _films(dicom_dir, FILM)
    (tmp_path / "real").mkdir()
    (tmp_path / "other").mkdir()
    shutil.copy(film, tmp_path / "real" / FILM)
    (tmp_path / "other" / "out.dcm").symlink_to(Path("..") / "real" / FILM)
    found = find_images([tmp_path / "other", tmp_path / "real"])
    assert found.files == [tmp_path / "real" / FILM] and found.problems == {}
    assert found.aliases == {tmp_path / "real" / FILM: (tmp_path / "other" / "out.dcm",)}


# --------------------------------------------------------------------------- a missing input


def test_a_mistyped_input_says_first_that_it_is_missing(dicom_dir, card, tmp_path, monkeypatch, capsys):
    """``cxr-classify typo_study 966_fixed.dcm --csv results.csv``: the CSV lies in the folder the missing
    ``typo_study`` would be in, which stays protected (the folder a mistyped study name lies in is most likely a
    study folder: a reviewer's finding); the refusal says first that the input does not exist and what to do (a
    new user read the older wording as a fault of the output's place)."""
    [film] = _films(dicom_dir, FILM)
    monkeypatch.chdir(tmp_path)
    assert main(_classify("typo_study", film, "--model", card.path, "--csv", "results.csv")) == 2
    assert capsys.readouterr().err.strip() == (
        "cxr-classify: --csv results.csv: lies in the folder of the input typo_study, which does not exist "
        "(mistyped?): its folder is kept as a source folder, never written; correct the input's name, or write the "
        "output elsewhere")
    assert not (tmp_path / "results.csv").exists()


def test_a_missing_input_keeps_its_folder_protected(tmp_path):
    """The one output rule, which ``cxr-desktop PATH --result-json`` and the app's exports use too."""
    missing = tmp_path / "nothere"
    assert source_problem(tmp_path / "x.json", [missing]).startswith(
        f"lies in the folder of the input {missing}, which does not exist (mistyped?)")
    assert source_problem(tmp_path.parent / "x.json", [missing]) is None
    assert source_problem(missing, [missing]) == (
        "is an input, which does not exist; source files and folders are never written")
    assert source_problem(missing / "x.json", [missing]) == (
        f"lies inside the input {missing}, which does not exist; source folders are never written")


# --------------------------------------------------------------------------- FIFOs, sockets, devices


def _find_images_or_fail(paths, fifos) -> object:
    """``find_images(paths)``, failing (not hanging) when it opens one of the ``fifos``: a writer is then
    attached, which ends the wait."""
    result = {}
    worker = threading.Thread(target=lambda: result.update(found=find_images(paths)), daemon=True)
    worker.start()
    worker.join(30)
    if worker.is_alive():
        for fifo in fifos:
            try:
                os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
            except OSError:
                pass
        worker.join(30)
        pytest.fail("the scan opened a FIFO and waited for a writer")
    return result["found"]


def test_fifos_and_devices_are_named_without_being_opened(dicom_dir, tmp_path):
    [film] = _films(dicom_dir, FILM)
    folder = tmp_path / "study"
    folder.mkdir()
    shutil.copy(film, folder / FILM)
    for name in ("pipe.dcm", "IM0002", "notes.txt"):
        os.mkfifo(folder / name)
    (folder / "link.png").symlink_to("pipe.dcm")
    fifo = tmp_path / "f.dcm"
    os.mkfifo(fifo)
    fifos = [fifo, *(folder / name for name in ("pipe.dcm", "IM0002", "notes.txt"))]
    found = _find_images_or_fail([folder, fifo, os.devnull], fifos)
    reasons = {path: found.problems.get(path) for path in found.files}
    assert reasons == {
        folder / FILM: None,
        folder / "IM0002": "not a regular file (a FIFO)",  # named as a film would be (no suffix)
        folder / "link.png": "not a regular file (a FIFO)",  # the pipe itself is the same file: one row
        fifo: "not a regular file (a FIFO)",
        Path(os.devnull): "not a regular file (a character device)",
    }  # notes.txt is skipped as a text file is
    assert found.aliases == {folder / "link.png": (folder / "pipe.dcm",)}


def test_the_cli_names_a_fifo_and_classifies_the_rest(dicom_dir, card, tmp_path):
    [film] = _films(dicom_dir, OTHER)
    (tmp_path / "in").mkdir()
    fifo = tmp_path / "in" / "f.dcm"
    os.mkfifo(fifo)
    out = tmp_path / "r.csv"
    try:
        proc = subprocess.run([sys.executable, "-m", "cxr_engine", *_classify(fifo, film, "--model", card.path,
                                                                              "--csv", out, "--decode-timeout", "5")],
                              capture_output=True, text=True, timeout=120)
    except subprocess.TimeoutExpired:
        os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
        pytest.fail("cxr-classify waited on the FIFO")
    assert proc.returncode == 1, proc.stderr
    _, rows = read_rows(out)
    assert [(row["path"], row["status"], row["message"]) for row in rows] == [
        (str(fifo), "error", "not a regular file (a FIFO)"), (str(film), "ok", "")]


# --------------------------------------------------------------------------- names with control characters


def test_outputs_are_named_without_control_characters_and_quiet_is_quiet(dicom_dir, card, tmp_path):
    """A film named ``esc<ESC>[31mred<U+10000>.dcm`` (an escape sequence, and a character no font here has):
    the heat-map's name keeps the name recognisable without the ESC; ``--quiet`` leaves out the PDF's note on
    fonts, which a run without it shows."""
    [film] = _films(dicom_dir, OTHER)
    folder = tmp_path / "study"
    folder.mkdir()
    shutil.copy(film, folder / "esc\x1b[31mred\U00010000.dcm")

    def run(name: str, *extra: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "cxr_engine", *_classify(
            folder, "--model", card.path, "--csv", tmp_path / f"{name}.csv", "--heatmap-dir", tmp_path / name,
            "--dicom-out", tmp_path / f"{name}-dicom", *extra)], capture_output=True, text=True, timeout=300)

    loud = run("loud")
    assert loud.returncode == 0, loud.stderr
    assert "no glyph" in loud.stderr  # the note exists, so that --quiet has something to leave out
    quiet = run("quiet", "--quiet")
    assert quiet.returncode == 0, quiet.stderr
    assert "no glyph" not in quiet.stderr
    names = sorted(path.name for path in (tmp_path / "quiet").iterdir())
    assert names == ["00000_esc_[31mred\U00010000_cam.png", "00000_esc_[31mred\U00010000_heatmap.png"]
    _, rows = read_rows(tmp_path / "quiet.csv")
    assert rows[0]["cam_path"] == str(tmp_path / "quiet" / names[0])


# --------------------------------------------------------------------------- spreadsheet formulas


def test_cells_a_spreadsheet_would_run_get_a_leading_quote(dicom_dir, card, tmp_path, monkeypatch):
    [film] = _films(dicom_dir, OTHER)
    (tmp_path / "inj").mkdir()
    monkeypatch.chdir(tmp_path / "inj")
    names = ['=HYPERLINK("http:x","y").dcm', "+SUM(1,2).dcm", "@cmd.dcm", "-2+3.dcm", "\tTAB.dcm"]
    shutil.copy(film, names[0])
    for name in names[1:]:
        os.symlink(names[0], name)  # the same film: only the first named is classified; the others are named
    os.symlink("gone.dcm", "=1+1.dcm")  # a broken link: an error row
    code = main(_classify("--model", card.path, "--csv", "../r.csv", "-q", "--", *names, "=1+1.dcm"))
    assert code == 1
    with open("../r.csv", newline="") as handle:
        rows = list(csv.reader(handle))
    cells = [cell for row in rows[1:] for cell in row]
    assert not [cell for cell in cells if cell[:1] in ("=", "+", "@", "\t", "\r")
                or (cell[:1] == "-" and not cell.replace("-", "").replace(".", "").isdigit())]
    assert [row[0] for row in rows[1:]] == ["'" + names[0], "'=1+1.dcm"]
    warnings = rows[1][rows[0].index("warnings")]
    assert "the same file is also reached by 4 other paths" in warnings
    assert float(rows[1][rows[0].index("p_normal")]) >= 0  # numbers stay numbers


@pytest.mark.parametrize("cell, shown", [
    ("=1+1", "'=1+1"), ("+1", "'+1"), ("@SUM(A1)", "'@SUM(A1)"), ("\tx", "'\tx"), ("\rx", "'\rx"),
    ("-x.dcm", "'-x.dcm"), ("-2+3", "'-2+3"), ("-0.500000", "-0.500000"), ("0.950000", "0.950000"),
    ("/tmp/=a.dcm", "/tmp/=a.dcm"), ("", ""), ("ok", "ok"),
])
def test_spreadsheet_text(cell, shown):
    assert spreadsheet_text(cell) == shown
