"""The batch CLI on a folder of real files mixed with corrupt, truncated and non-image ones."""
from __future__ import annotations

import csv
import shutil
import subprocess
import sys

import pytest

from cxr_engine.cli import main

from model_factory import make_random_model

COLUMNS = ["path", "status", "prediction", "p_normal", "p_pneumonia", "p_covid", "model", "message"]


@pytest.fixture(scope="module")
def card(tmp_path_factory):
    return make_random_model(tmp_path_factory.mktemp("model"))


@pytest.fixture()
def mixed_folder(tmp_path, dicom_dir, cxr3_dir):
    folder = tmp_path / "study"
    (folder / "nested").mkdir(parents=True)
    shutil.copy(dicom_dir / "CR-MONO1-10-chest.dcm", folder / "CR-MONO1-10-chest.dcm")
    shutil.copy(dicom_dir / "Fake_MONOHR1.dcm", folder / "nested" / "IM0001")  # no extension, DICM magic
    shutil.copy(next((cxr3_dir / "images" / "covid").glob("*.jpg")), folder / "nested" / "film.jpg")
    data = (dicom_dir / "RG1_J2KI.dcm").read_bytes()
    (folder / "truncated.dcm").write_bytes(data[: len(data) // 2])
    (folder / "garbage.dcm").write_bytes(b"\x00\x01not dicom at all" * 50)
    (folder / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 40)
    (folder / "notes.txt").write_text("reading-room notes, not an image")
    return folder


def read_rows(path):
    with open(path, newline="") as handle:
        reader = csv.DictReader(handle)
        return reader.fieldnames, list(reader)


def test_batch_writes_every_row_and_reports_failures(mixed_folder, card, tmp_path):
    out = tmp_path / "results.csv"
    cams = tmp_path / "cams"
    code = main([str(mixed_folder), "--model", str(card.path), "--csv", str(out), "--cam-dir", str(cams), "--device", "cpu"])
    assert code == 1
    header, rows = read_rows(out)
    assert header[: len(COLUMNS)] == COLUMNS
    by_name = {row["path"].rsplit("/", 1)[-1]: row for row in rows}
    assert set(by_name) == {"CR-MONO1-10-chest.dcm", "IM0001", "film.jpg", "truncated.dcm", "garbage.dcm", "broken.png"}
    for name in ("CR-MONO1-10-chest.dcm", "IM0001", "film.jpg"):
        row = by_name[name]
        assert row["status"] == "ok" and row["prediction"] in {"normal", "pneumonia", "covid"} and not row["message"]
        total = sum(float(row[c]) for c in ("p_normal", "p_pneumonia", "p_covid"))
        assert total == pytest.approx(1.0, abs=1e-4)
        assert row["model"] == "random-test"
        assert (cams / row["cam_path"].rsplit("/", 1)[-1]).exists()
    for name in ("truncated.dcm", "garbage.dcm", "broken.png"):
        row = by_name[name]
        assert row["status"] == "error" and row["prediction"] == "" and row["p_normal"] == ""
        assert len(row["message"]) > 10
    assert "not a" in by_name["garbage.dcm"]["message"]


def test_all_good_inputs_exit_zero_and_csv_goes_to_stdout(dicom_dir, card, capsys):
    code = main([str(dicom_dir / "CR-MONO1-10-chest.dcm"), "--model", str(card.path), "--device", "cpu"])
    assert code == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[0].startswith(",".join(COLUMNS)) and len(lines) == 2


def test_a_named_non_image_file_is_an_error_row(tmp_path, card, capsys):
    text = tmp_path / "readme.txt"
    text.write_text("hello")
    assert main([str(text), "--model", str(card.path)]) == 1
    assert ",error," in capsys.readouterr().out


def test_bad_usage_exits_two(tmp_path, card, capsys):
    with pytest.raises(SystemExit) as info:
        main(["--no-such-option", "x"])
    assert info.value.code == 2
    assert main([str(tmp_path), "--model", "no-such-model"]) == 2
    assert main([str(tmp_path), "--model", str(card.path)]) == 2  # empty folder
    assert "no DICOM, PNG or JPEG files" in capsys.readouterr().err


def test_tampered_weights_stop_the_cli_with_a_reason(tmp_path, dicom_dir, capsys):
    card = make_random_model(tmp_path / "m")
    data = bytearray(card.weights_path.read_bytes())
    data[200] ^= 0x01
    card.weights_path.write_bytes(bytes(data))
    assert main([str(dicom_dir / "CR-MONO1-10-chest.dcm"), "--model", str(card.path)]) == 2
    assert "sha256" in capsys.readouterr().err


def test_runs_as_a_module(dicom_dir, card, tmp_path):
    out = tmp_path / "r.csv"
    proc = subprocess.run(
        [sys.executable, "-m", "cxr_engine", str(dicom_dir / "Fake_MONOHR1.dcm"), "--model", str(card.path), "--csv", str(out)],
        capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    assert read_rows(out)[1][0]["status"] == "ok"


def test_a_crashing_decoder_becomes_an_error_row_and_the_batch_goes_on(dicom_dir, tmp_path):
    import isolation_tasks
    from cxr_engine.batch import classify_files
    from cxr_engine.isolation import IsolatedReader
    from model_factory import make_random_model

    from cxr_engine.inference import Classifier

    classifier = Classifier(make_random_model(tmp_path / "model"), device="cpu")
    files = [dicom_dir / "CR-MONO1-10-chest.dcm", tmp_path / "crafted.dcm", dicom_dir / "Fake_MONOHR1.dcm"]
    with IsolatedReader() as normal, IsolatedReader(task=isolation_tasks.segfault) as crashing:
        def reader(path):
            return (crashing if path.name == "crafted.dcm" else normal).read(path)

        rows = list(classify_files(files, classifier, reader=reader))
    assert [r.status for r in rows] == ["ok", "error", "ok"]
    assert "decoder crashed (SIGSEGV)" in rows[1].message
