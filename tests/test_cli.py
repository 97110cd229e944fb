"""The batch CLI on a folder of real files mixed with corrupt, truncated and non-image ones."""
from __future__ import annotations

import argparse
import csv
import shutil
import subprocess
import sys
from pathlib import Path

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
    heatmap_dir = tmp_path / "heatmaps"
    code = main([str(mixed_folder), "--model", str(card.path), "--csv", str(out), "--heatmap-dir", str(heatmap_dir), "--device", "cpu"])
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
        assert (heatmap_dir / row["cam_path"].rsplit("/", 1)[-1]).exists()
    for name in ("truncated.dcm", "garbage.dcm", "broken.png"):
        row = by_name[name]
        assert row["status"] == "error" and row["prediction"] == "" and row["p_normal"] == ""
        assert len(row["message"]) > 10
    assert "not a" in by_name["garbage.dcm"]["message"]


def test_the_probability_columns_are_the_cards_classes(dicom_dir, tmp_path):
    """A model with other classes gets a ``p_<class>`` column per class of its card, in the card's order."""
    other = make_random_model(tmp_path / "model", name="two-class", classes=("normal", "tuberculosis"))
    out = tmp_path / "results.csv"
    code = main([str(dicom_dir / "CR-MONO1-10-chest.dcm"), str(tmp_path / "model" / "two-class.json"), "--model",
                 str(other.path), "--csv", str(out), "--device", "cpu", "--no-isolation", "--quiet"])
    assert code == 1  # the card itself is no image
    header, rows = read_rows(out)
    assert header[:7] == ["path", "status", "prediction", "p_normal", "p_tuberculosis", "model", "message"]
    assert not {"p_pneumonia", "p_covid"} & set(header)
    film, card_file = rows
    assert film["status"] == "ok" and film["prediction"] in {"normal", "tuberculosis"}
    assert float(film["p_normal"]) + float(film["p_tuberculosis"]) == pytest.approx(1.0, abs=1e-4)
    assert card_file["status"] == "error" and card_file["p_tuberculosis"] == ""


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


def test_help_groups_the_options_by_what_they_do():
    from cxr_engine.cli import build_parser

    parser = build_parser()
    groups = {group.title: [(a.option_strings or [a.dest])[0] for a in group._group_actions
                            if a.help != argparse.SUPPRESS]
              for group in parser._action_groups}
    assert groups["classification"] == ["--model", "--device", "--backend", "--batch-size", "--auto-orient"]
    assert groups["outputs"] == ["--csv", "--heatmap-dir", "--lung-mask-dir", "--overwrite"]
    assert groups["decoding"] == ["--isolation", "--decode-timeout", "--full-decode", "--decode-workers"]
    assert groups["options"] == ["-h", "-v", "-q"]
    help_text = parser.format_help()
    assert "--cam-dir" not in help_text
    titles = ["\nclassification:", "\noutputs:", "\ndecoding:", "\nDICOM outputs and sending"]
    assert [help_text.index(title) for title in titles] == sorted(help_text.index(title) for title in titles)


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
    from cxr_engine.batch import result_rows
    from cxr_engine.reading.isolation import IsolatedReader
    from model_factory import make_random_model

    from cxr_engine.models.torch_backend import Classifier

    classifier = Classifier(make_random_model(tmp_path / "model"), device="cpu")
    files = [dicom_dir / "CR-MONO1-10-chest.dcm", tmp_path / "crafted.dcm", dicom_dir / "Fake_MONOHR1.dcm"]
    with IsolatedReader() as normal, IsolatedReader(task=isolation_tasks.segfault) as crashing:
        def reader(path):
            return (crashing if path.name == "crafted.dcm" else normal).read(path)

        rows = list(result_rows(files, classifier, reader=reader))
    assert [r.status for r in rows] == ["ok", "error", "ok"]
    assert "decoder crashed (SIGSEGV)" in rows[1].message


LUNG_CARD = Path(__file__).resolve().parents[1] / "resources" / "models" / "lung-unet.json"


@pytest.fixture()
def non_square_film(tmp_path, cxr3_dir):
    """A real chest film cropped to a non-square pixel grid (rows != columns), as a PNG."""
    import cv2

    source = cxr3_dir / "images" / "covid" / "01d0f5d504286c71.jpg"
    grey = cv2.imread(str(source), cv2.IMREAD_GRAYSCALE)
    film = grey[: grey.shape[0] * 4 // 5, 5:]
    path = tmp_path / "in" / "chest film.png"
    path.parent.mkdir()
    cv2.imwrite(str(path), film)
    return path, film


def test_heatmap_dir_also_writes_the_raw_heatmap_as_16_bit_png_at_the_input_grid(non_square_film, card, tmp_path):
    import cv2
    import numpy as np

    path, film = non_square_film
    out, heatmap_dir = tmp_path / "r.csv", tmp_path / "heatmaps"
    assert main([str(path), "--model", str(card.path), "--csv", str(out), "--heatmap-dir", str(heatmap_dir), "--device", "cpu"]) == 0
    row = read_rows(out)[1][0]
    heatmap_path = Path(row["heatmap_path"])
    assert heatmap_path.name == "00000_chest film_heatmap.png" and heatmap_path.parent == heatmap_dir
    assert Path(row["cam_path"]).name == "00000_chest film_cam.png"
    raw = cv2.imread(str(heatmap_path), cv2.IMREAD_UNCHANGED)
    assert raw.dtype == np.uint16 and raw.shape == film.shape
    assert raw.max() > 60000 and raw.min() < 5000  # a min-max scaled map spans 0..1

    from cxr_engine.batch import heatmap_png_array

    assert heatmap_png_array(np.array([[0.0, 0.5, 1.0, 1.2]])).tolist() == [[0, 32768, 65535, 65535]]


def test_the_former_cam_dir_option_still_names_the_heatmap_folder(tmp_path):
    from cxr_engine.cli import build_parser

    args = build_parser().parse_args([str(tmp_path), "--cam-dir", str(tmp_path / "old")])
    assert args.heatmap_dir == tmp_path / "old"
    assert build_parser().parse_args([str(tmp_path)]).heatmap_dir is None


def test_lung_mask_dir_writes_a_binary_mask_at_the_input_grid(non_square_film, card, tmp_path):
    import cv2
    import numpy as np

    if not LUNG_CARD.exists():
        pytest.skip(f"no lung model bundled at {LUNG_CARD} (python -m training.export_lung_unet)")
    path, film = non_square_film
    blank = path.parent / "blank.png"  # no chest, but image content (a blank film is not classified at all)
    cv2.imwrite(str(blank), np.tile(np.linspace(0, 255, 90).astype(np.uint8), (120, 1)))
    cv2.imwrite(str(path.parent / "flipped.png"), np.ascontiguousarray(film[:, ::-1]))
    cv2.imwrite(str(path.parent / "turned.png"), np.ascontiguousarray(np.rot90(film)))
    out, lungs = tmp_path / "r.csv", tmp_path / "lungs"
    code = main([str(path.parent), "--model", str(card.path), "--csv", str(out), "--lung-mask-dir", str(lungs),
                 "--device", "cpu"])
    assert code == 0
    rows = {Path(r["path"]).name: r for r in read_rows(out)[1]}
    film_mask = Path(rows["chest film.png"]["lung_mask_path"])
    assert film_mask.name == "00001_chest film_lungs.png" and film_mask.parent == lungs
    mask = cv2.imread(str(film_mask), cv2.IMREAD_UNCHANGED)
    assert mask.dtype == np.uint8 and mask.shape == film.shape and set(np.unique(mask)) == {0, 255}
    assert 0.1 < (mask == 255).mean() < 0.6
    assert "lung fields not found" not in rows["chest film.png"]["warnings"]
    # Alignment: a flipped or turned input gives the flipped or turned mask.
    def overlap(a, b):
        return 2 * np.logical_and(a, b).sum() / (a.sum() + b.sum())

    flipped = cv2.imread(rows["flipped.png"]["lung_mask_path"], cv2.IMREAD_UNCHANGED) == 255
    turned = cv2.imread(rows["turned.png"]["lung_mask_path"], cv2.IMREAD_UNCHANGED) == 255
    assert flipped.shape == film.shape and turned.shape == film.shape[::-1]
    assert overlap(flipped, (mask == 255)[:, ::-1]) >= 0.9
    assert overlap(turned, np.rot90(mask == 255)) >= 0.85
    blank_mask = cv2.imread(rows["blank.png"]["lung_mask_path"], cv2.IMREAD_UNCHANGED)
    assert blank_mask.shape == (120, 90)
    assert "lung fields not found: not a frontal chest film?" in rows["blank.png"]["warnings"]
