"""cxr-classify's output paths: each checked before any work starts (one line naming the path and the
reason, exit 2, no traceback), the run's own output folders left out of the inputs on a rerun, and
each unreadable file named once on standard error."""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest

import cxr_engine.models.backends
from cxr_engine.cli import EXIT_USAGE, build_parser, main

from test_cli import LUNG_CARD, card, read_rows  # noqa: F401  (card is a fixture)


@pytest.fixture()
def film_folder(tmp_path, cxr3_dir):
    folder = tmp_path / "trap"
    folder.mkdir()
    shutil.copy(next((cxr3_dir / "images" / "covid").glob("*.jpg")), folder / "film.jpg")
    return folder


def no_work(monkeypatch):
    """Fail the test if the run gets as far as loading a classifier."""
    def refuse(*args, **kwargs):
        raise AssertionError("the classifier was loaded before the output paths were checked")

    monkeypatch.setattr(cxr_engine.models.backends, "create_classifier", refuse)


@pytest.mark.parametrize("option, target, reason", [
    ("--csv", "afile/out.csv", "afile is a file, not a folder"),
    ("--csv", "existing_dir", "is a folder, not a file"),
    ("--heatmap-dir", "afile", "is a file, not a folder"),
    ("--heatmap-dir", "afile/x", "afile is a file, not a folder"),
    ("--lung-mask-dir", "afile/x", "afile is a file, not a folder"),
])
def test_an_unwritable_output_path_stops_the_run_before_any_work(
        option, target, reason, film_folder, card, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    Path("afile").write_text("a file, not a folder")
    Path("existing_dir").mkdir()
    no_work(monkeypatch)
    code = main([str(film_folder), "--model", str(card.path), option, target, "--device", "cpu"])
    assert code == EXIT_USAGE == 2
    assert capsys.readouterr().err.splitlines() == [f"cxr-classify: {option} {target}: {reason}"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["afile", "existing_dir", "trap"]


@pytest.mark.skipif(not Path("/proc/self").is_dir(), reason="needs Linux /proc")
def test_a_folder_that_cannot_be_created_stops_the_run(film_folder, card, monkeypatch, capsys):
    no_work(monkeypatch)
    assert main([str(film_folder), "--model", str(card.path), "--heatmap-dir", "/proc/x"]) == EXIT_USAGE
    assert capsys.readouterr().err.splitlines() == [
        "cxr-classify: --heatmap-dir /proc/x: cannot create the folder: the folder above is not writable (it accepts "
        "no new files, as the virtual /proc and /sys do)"]


@pytest.mark.parametrize("option, target, reason", [
    ("--csv", "trap/film.jpg", "lies inside the input folder trap; source folders are never written"),
    ("--csv", "film.jpg", "is an input; source files and folders are never written"),
    ("--csv", "trap/sub/out.csv", "lies inside the input folder trap; source folders are never written"),
    ("--heatmap-dir", "trap/heatmaps", "lies inside the input folder trap; source folders are never written"),
    ("--lung-mask-dir", "trap", "is an input; source files and folders are never written"),
    ("--dicom-out", "trap/dicom", "lies inside the input folder trap; source folders are never written"),
    ("--heatmap-dir", "link/heatmaps", "lies inside the input folder trap; source folders are never written"),
])
def test_an_output_that_would_write_a_source_is_refused_before_any_work(
        option, target, reason, film_folder, card, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    Path("link").symlink_to("trap")
    before = {p: p.read_bytes() for p in film_folder.rglob("*")}
    no_work(monkeypatch)
    shutil.copy(film_folder / "film.jpg", "film.jpg")
    code = main(["trap", "film.jpg", "--model", str(card.path), option, target, "--device", "cpu"])
    assert code == EXIT_USAGE
    assert capsys.readouterr().err.splitlines() == [f"cxr-classify: {option} {target}: {reason}"]
    assert {p: p.read_bytes() for p in film_folder.rglob("*")} == before  # nothing written or created


def test_an_output_folder_holding_an_input_file_is_refused(film_folder, card, monkeypatch, capsys):
    no_work(monkeypatch)
    film = film_folder / "film.jpg"
    assert main([str(film), "--model", str(card.path), "--dicom-out", str(film_folder)]) == EXIT_USAGE
    assert capsys.readouterr().err.strip() == (f"cxr-classify: --dicom-out {film_folder}: holds the input {film}; "
                                               "source folders are never written")


@pytest.mark.parametrize("option, target", [
    ("--csv", "r.csv"), ("--csv", "sub/r.csv"), ("--heatmap-dir", "sub"), ("--lung-mask-dir", "sub/deeper"),
    ("--dicom-out", "sub"),
])
def test_no_output_goes_in_or_below_the_folder_of_an_input_file(option, target, film_folder, card, monkeypatch,
                                                                 capsys):
    """A film named on its own protects its folder as a folder named does: a study folder never fills
    with the CSV, heat-maps or DICOM objects of a run on one of its films."""
    no_work(monkeypatch)
    film = film_folder / "film.jpg"
    assert main([str(film), "--model", str(card.path), option, str(film_folder / target)]) == EXIT_USAGE
    assert capsys.readouterr().err.strip() == (f"cxr-classify: {option} {film_folder / target}: lies in the folder "
                                               f"of the input {film}; source folders are never written")
    assert sorted(p.name for p in film_folder.iterdir()) == ["film.jpg"]


def test_outputs_beside_the_input_folder_are_written(film_folder, card, tmp_path):
    film = film_folder / "film.jpg"
    assert main([str(film), "--model", str(card.path), "--device", "cpu", "--no-isolation",
                 "--csv", str(tmp_path / "r.csv")]) == 0
    assert (tmp_path / "r.csv").is_file() and sorted(p.name for p in film_folder.iterdir()) == ["film.jpg"]
    help_text = " ".join(build_parser().format_help().split())
    assert "never inside an input folder or the folder of an input file" in help_text


def test_a_rerun_skips_what_the_last_run_wrote_but_never_a_film(film_folder, dicom_dir, tmp_path, capsys):
    """Heat-maps, lung masks and the SC/SR/PDF of a first run, copied into the input folder (as a study
    pulled back from PACS holds the AI series), are skipped with a note on the rerun; the films, and a
    greyscale film named like a lung mask, are still classified."""
    pytest.importorskip("onnxruntime")
    if not LUNG_CARD.exists():
        pytest.skip(f"no lung model bundled at {LUNG_CARD}")
    from PIL import Image

    from cxr_engine.outputs import own_outputs
    from cxr_engine.outputs.dicom_outputs.writer import MANUFACTURER

    assert own_outputs.MANUFACTURER == MANUFACTURER  # what the scan recognises is what the writer sets
    bundled = LUNG_CARD.parent / "efficientnet-lite0.json"
    shutil.copy(dicom_dir / "CR-MONO1-10-chest.dcm", film_folder / "chest.dcm")
    out = tmp_path / "first"
    args = ["--model", str(bundled), "--backend", "onnx", "--device", "cpu", "--no-isolation"]
    assert main([str(film_folder), *args, "--csv", str(tmp_path / "first.csv"), "--heatmap-dir", str(out / "heatmaps"),
                 "--lung-mask-dir", str(out / "lungs"), "--dicom-out", str(out / "dicom")]) == 0
    written = sorted(p.name for p in out.rglob("*") if p.is_file())
    assert len(written) == 2 * 2 + 2 + 3, written  # overlay + heat-map per film, a mask per film, SC/SR/PDF
    shutil.copytree(out, film_folder / "pulled_back")
    Image.open(film_folder / "film.jpg").convert("L").save(film_folder / "00007_film_lungs.png")
    capsys.readouterr()

    assert main([str(film_folder), *args, "--csv", str(tmp_path / "second.csv")]) == 0
    names = sorted(Path(row["path"]).name for row in read_rows(tmp_path / "second.csv")[1])
    assert names == ["00007_film_lungs.png", "chest.dcm", "film.jpg"]
    assert "cxr-classify: skipped 9 file(s) this program wrote" in capsys.readouterr().err
    assert main([str(film_folder / "pulled_back" / "dicom" / next(
        p.name for p in (out / "dicom").iterdir() if p.name.endswith("_sc.dcm"))), *args, "-q",
        "--csv", str(tmp_path / "third.csv")]) == 0  # named directly: the user's choice, classified


def test_a_file_the_folder_scan_cannot_read_is_named_once(film_folder, card, capsys):
    (film_folder / "garbage.dcm").write_bytes(b"\x00\x01not dicom at all" * 50)
    assert main([str(film_folder), "--model", str(card.path), "--device", "cpu", "--no-isolation", "-q",
                 "--csv", str(film_folder.parent / "r.csv")]) == 1
    about = [line for line in capsys.readouterr().err.splitlines() if "garbage.dcm" in line]
    assert len(about) == 1, about
    assert about[0].startswith(f"cxr-classify: {film_folder / 'garbage.dcm'}: not a")  # with the reason


@pytest.mark.parametrize("option, target", [("--csv", "out/ne.csv"), ("--heatmap-dir", "out/maps")])
def test_a_missing_inputs_folder_stays_protected_and_the_refusal_says_it_is_missing(option, target, card, tmp_path,
                                                                                    monkeypatch, capsys):
    """Tester: ``cxr-classify /tmp/h76/nonexist --csv /tmp/h76/out/ne.csv`` was refused with "lies in the folder of
    the input /tmp/h76/nonexist; source folders are never written", never saying the input does not exist. A
    mistyped name in a study folder must not open that folder to outputs (a reviewer's finding), so the refusal
    stands, and says first what is wrong."""
    no_work(monkeypatch)
    missing = tmp_path / "nonexist"
    assert main([str(missing), "--model", str(card.path), option, str(tmp_path / target)]) == EXIT_USAGE
    assert capsys.readouterr().err.strip() == (
        f"cxr-classify: {option} {tmp_path / target}: lies in the folder of the input {missing}, which does not "
        f"exist (mistyped?): its folder is kept as a source folder, never written; correct the input's name, or "
        f"write the output elsewhere")
    assert not (tmp_path / "out").exists()


def test_a_missing_input_elsewhere_is_named_in_its_row(card, tmp_path, capsys):
    """An input that does not exist, with the outputs elsewhere: an error row naming it, exit 1."""
    (tmp_path / "in").mkdir()
    missing = tmp_path / "in" / "nonexist"
    out = tmp_path / "out" / "rows.csv"
    code = main([str(missing), "--model", str(card.path), "--csv", str(out), "--device", "cpu", "--no-isolation"])
    err = capsys.readouterr().err
    assert code == 1, err
    assert f"cxr-classify: {missing}: no such file or folder" in err
    _, rows = read_rows(out)
    assert [(row["path"], row["status"], row["message"]) for row in rows] == [
        (str(missing), "error", "no such file or folder")]


def test_an_output_inside_a_missing_input_is_refused_before_it_is_created(tmp_path, card, monkeypatch, capsys):
    """Created, the output's folder would become the missing input: refused, naming that it does not exist."""
    no_work(monkeypatch)
    missing = tmp_path / "nonexist"
    assert main([str(missing), "--model", str(card.path), "--csv", str(missing / "ne.csv")]) == EXIT_USAGE
    assert capsys.readouterr().err.strip() == (f"cxr-classify: --csv {missing / 'ne.csv'}: lies inside the input "
                                               f"{missing}, which does not exist; source folders are never written")
    assert not missing.exists()
