"""A film with no image content (constant or near-constant pixels, or under 32 px a side) gets no class:
``not-classified`` in the engine and the CSV, with the reason naming what is wrong, in the app and the
PDF "Not classified: ..."; no real film is caught."""
from __future__ import annotations

import csv
import json
import os
import random
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from cxr_engine.pixels.content import MIN_SIDE_PX, NO_CONTENT, no_content_reason
from cxr_engine.reading.read import read_image

from model_factory import BUNDLED_CARD

REPO = Path(__file__).resolve().parents[1]


def png(path: Path, array) -> Path:
    from PIL import Image

    Image.fromarray(np.asarray(array, dtype=np.uint8)).save(path)
    return path


def blank_films(folder: Path) -> dict[str, str]:
    """Generated films without content -> the words their reason must hold."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    near = np.full((300, 280), 120, np.uint8)
    near[rng.random(near.shape) < 0.5] = 121  # one grey level of noise: 1/255 of the range
    striped = np.tile(np.linspace(0, 255, 300).astype(np.uint8), (20, 1))  # content, but 20 px tall
    films = {
        png(folder / "black.png", np.zeros((512, 512))): "every pixel has the same value",
        png(folder / "white.png", np.full((400, 300), 255)): "every pixel has the same value",
        png(folder / "grey.png", np.full((300, 300), 117)): "every pixel has the same value",
        png(folder / "near.png", near): "nearly every pixel has the same value",
        png(folder / "one.png", np.zeros((1, 1))): "the image is 1 × 1 pixels",
        png(folder / "strip.png", striped): "the image is 300 × 20 pixels",
    }
    return {path.name: words for path, words in films.items()}


def test_generated_films_without_content_are_named_with_the_reason(tmp_path):
    for name, words in blank_films(tmp_path).items():
        reason = no_content_reason(read_image(tmp_path / name))
        assert reason.startswith(f"{NO_CONTENT}: ") and words in reason, (name, reason)


def test_no_real_film_is_caught(shared_data, dicom_dir, cxr3_dir):
    """Every real DICOM (dicom/, dicom_rsna/) and a seeded sample of cxr3 (with its smallest films) holds content."""
    films = sorted(dicom_dir.glob("*.dcm")) + sorted((shared_data / "dicom_rsna").glob("*.dcm"))
    assert len(films) >= 8 + 16
    cxr3 = sorted((cxr3_dir / "images").rglob("*.jpg"))
    random.Random(0).shuffle(cxr3)
    with open(cxr3_dir / "manifest.csv", newline="") as handle:
        rows = sorted(csv.DictReader(handle), key=lambda row: min(int(row["width"]), int(row["height"])))
    smallest = [cxr3_dir / row["file"] for row in rows[:5]]
    assert min(int(rows[0]["width"]), int(rows[0]["height"])) > MIN_SIDE_PX
    caught = {str(f): reason for f in films + cxr3[:150] + smallest if (reason := no_content_reason(read_image(f)))}
    assert not caught


def test_the_classifier_refuses_a_film_without_content(tmp_path):
    pytest.importorskip("onnxruntime")
    from cxr_engine import load_classifier
    from cxr_engine.errors import NoImageContentError

    classifier = load_classifier(BUNDLED_CARD, backend="onnx", device="cpu")
    black = read_image(png(tmp_path / "black.png", np.zeros((300, 300))))
    with pytest.raises(NoImageContentError, match=r"black\.png: no image content: every pixel has the same value"):
        classifier.predict_with_heatmap(black)
    with pytest.raises(NoImageContentError):
        classifier.predict([black])


def test_cli_rows_are_not_classified_with_the_reason_and_real_films_are_classified(tmp_path, dicom_dir, capsys):
    pytest.importorskip("onnxruntime")
    from cxr_engine.cli import EXIT_SOME_FAILED, main

    folder = tmp_path / "in"
    expected = blank_films(folder)
    real = folder / "CR-MONO1-10-chest.dcm"
    real.write_bytes((dicom_dir / real.name).read_bytes())
    out = tmp_path / "out.csv"
    code = main([str(folder), "--csv", str(out), "--model", str(BUNDLED_CARD), "--backend", "onnx", "--no-isolation"])
    err = capsys.readouterr().err
    with open(out, newline="") as handle:
        rows = {Path(row["path"]).name: row for row in csv.DictReader(handle)}
    assert code == EXIT_SOME_FAILED
    assert rows[real.name]["status"] == "ok" and rows[real.name]["prediction"]
    for name, words in expected.items():
        row = rows[name]
        assert row["status"] == "not-classified" and row["prediction"] == "" and row["p_covid"] == "", row
        assert row["message"].startswith(f"{NO_CONTENT}: ") and words in row["message"]
        assert f"cxr-classify: {folder / name}: {row['message']}" in err
    assert f"1 classified, {len(expected)} not classified (no image content), 0 failed" in err


def test_the_app_shows_no_class_for_a_blank_film(tmp_path):
    """``cxr-desktop black.png --result-json --export-pdf``: no prediction, the panel's message says why, the
    PDF page says "Not classified"."""
    pytest.importorskip("PySide6")
    pytest.importorskip("onnxruntime")
    from cxr_desktop.settings import SETTINGS_ENV

    (tmp_path / "in").mkdir()
    black = png(tmp_path / "in" / "black.png", np.zeros((512, 512)))
    result, pdf = tmp_path / "result.json", tmp_path / "out" / "summary.pdf"
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen", **{SETTINGS_ENV: str(tmp_path / "settings.ini")})
    proc = subprocess.run(
        [sys.executable, "-m", "cxr_desktop", str(black), "--result-json", str(result), "--export-pdf", str(pdf),
         "--model", str(BUNDLED_CARD), "--backend", "onnx", "--device", "cpu", "--timeout", "240"],
        capture_output=True, text=True, cwd=REPO, env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    shown = json.loads(result.read_text(encoding="utf-8"))
    assert shown["prediction"] is None and shown["probabilities"] is None and shown["out_of_scope"] == ""
    assert shown["message"] == "Not classified: no image content: every pixel has the same value"
    from pypdf import PdfReader

    text = " ".join(PdfReader(pdf).pages[0].extract_text().split())
    assert "Not classified: no image content: every pixel has the same value" in text


def blanked_dicom(source: Path, target: Path) -> Path:
    """A copy of the real DICOM ``source`` whose pixels are all 0 (uncompressed): its header stays as it was."""
    import pydicom
    from pydicom.uid import ExplicitVRLittleEndian

    ds = pydicom.dcmread(source)
    ds.PixelData = bytes(ds.Rows * ds.Columns * (ds.BitsAllocated // 8) * ds.get("SamplesPerPixel", 1))
    ds["PixelData"].VR = "OB" if ds.BitsAllocated == 8 else "OW"
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.save_as(target, enforce_file_format=True)
    return target


def test_a_film_not_classified_keeps_its_header_warnings_in_the_csv(tmp_path, shared_data):
    """Tester: the app's ``--result-json`` gave a film that was not classified its header warnings, while its CSV
    row had none. The facts of the header hold whether or not the film gets a class: the row keeps them, in the
    order the app gives them (``suitability.image_warnings``), and a file that cannot be read has none."""
    pytest.importorskip("onnxruntime")
    from cxr_engine.cli import main
    from cxr_engine.models.suitability import image_warnings
    from cxr_engine.models.model_card import ModelCard

    folder = tmp_path / "in"
    folder.mkdir()
    source, other = sorted((shared_data / "dicom_rsna").glob("*.dcm"))[:2]  # secondary captures, too small a spacing
    blank = blanked_dicom(source, folder / "blank.dcm")
    (folder / "truncated.dcm").write_bytes(other.read_bytes()[:3000])
    out = tmp_path / "out.csv"
    main([str(folder), "--csv", str(out), "--model", str(BUNDLED_CARD), "--backend", "onnx", "--no-isolation", "-q"])
    with open(out, newline="") as handle:
        rows = {Path(row["path"]).name: row for row in csv.DictReader(handle)}
    row = rows["blank.dcm"]
    assert row["status"] == "not-classified", row
    expected = image_warnings(read_image(blank), ModelCard.load(BUNDLED_CARD).input_size)
    assert any("secondary capture" in w for w in expected) and any("Pixel Spacing" in w for w in expected)
    assert row["warnings"] == "; ".join(expected)
    assert rows["truncated.dcm"]["status"] == "error" and rows["truncated.dcm"]["warnings"] == ""
