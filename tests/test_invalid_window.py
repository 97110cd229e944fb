"""A stored Window Width below 1 (LINEAR) is invalid (PS3.3 C.11.2.1.2): the window is left out, the film
falls back to the automatic window, and the film's warnings say so; nothing reaches standard error with
``cxr-classify --quiet`` (tester: "ignoring window 550/0.0" printed by a quiet batch). Real CR film
``CR-MONO1-10-chest.dcm`` with its window rewritten, in tmp folders."""
from __future__ import annotations

import csv
import hashlib
import subprocess
import sys
from pathlib import Path

import pydicom
import pytest

from cxr_engine.pixels.windowing import LINEAR_EXACT, Window
from cxr_engine.reading.read import read_image

from model_factory import default_card_path

FILM = "CR-MONO1-10-chest.dcm"  # Window Center 550, Width 1024


def _with_window(dicom_dir: Path, folder: Path, name: str, centers, widths, function: str = "") -> Path:
    ds = pydicom.dcmread(dicom_dir / FILM, force=True)
    ds.WindowCenter, ds.WindowWidth = centers, widths
    if function:
        ds.VOILUTFunction = function
    folder.mkdir(exist_ok=True)
    ds.save_as(folder / name)
    return folder / name


@pytest.mark.parametrize("width", [0, -5, 0.5])
def test_an_invalid_width_falls_back_to_the_automatic_window_with_a_warning(dicom_dir, tmp_path, width):
    image = read_image(_with_window(dicom_dir, tmp_path, "film.dcm", 550, width))
    assert image.windows == ()
    voi = image.default_voi()
    assert isinstance(voi, Window) and voi.width >= 1
    auto = image.auto_window()
    assert voi.center == pytest.approx(auto.center, rel=0.05) and voi.width == pytest.approx(auto.width, rel=0.05)
    [warning] = [w for w in image.warnings if "Window Width (0028,1051)" in w]
    assert "PS3.3 C.11.2.1.2" in warning and "automatic window" in warning and "550/" in warning


def test_a_valid_window_beside_an_invalid_one_is_kept(dicom_dir, tmp_path):
    image = read_image(_with_window(dicom_dir, tmp_path, "film.dcm", [550, 600], [1024, 0]))
    assert [(w.center, w.width) for w in image.windows] == [(550, 1024)]
    assert image.default_voi() == image.windows[0]
    [warning] = [w for w in image.warnings if "Window Width (0028,1051)" in w]
    assert "600" in warning and "left out" in warning and "automatic" not in warning


def test_a_valid_file_window_gives_no_warning(dicom_dir):
    image = read_image(dicom_dir / FILM)
    assert not any("Window Width" in w for w in image.warnings)


def test_linear_exact_allows_a_width_below_one(dicom_dir, tmp_path):
    """LINEAR_EXACT only needs a width above 0 (PS3.3 C.11.2.1.3.2)."""
    image = read_image(_with_window(dicom_dir, tmp_path, "film.dcm", 550, 0.5, LINEAR_EXACT))
    assert [(w.width, w.function) for w in image.windows] == [(0.5, LINEAR_EXACT)]
    assert not any("Window Width" in w for w in image.warnings)


def test_quiet_cli_prints_nothing_and_the_csv_says_why(dicom_dir, tmp_path):
    pytest.importorskip("onnxruntime")
    folder = tmp_path / "films"
    zero = _with_window(dicom_dir, folder, "width0.dcm", 550, 0)
    _with_window(dicom_dir, folder, "second0.dcm", [550, 600], [1024, 0])
    before = hashlib.sha256(zero.read_bytes()).hexdigest()
    out = tmp_path / "r.csv"
    proc = subprocess.run([sys.executable, "-m", "cxr_engine", str(folder), "--quiet", "--csv", str(out),
                           "--model", str(default_card_path()), "--backend", "onnx"],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""
    with open(out, newline="") as handle:
        rows = {Path(r["path"]).name: r for r in csv.DictReader(handle)}
    assert rows["width0.dcm"]["status"] == "ok" and "automatic window" in rows["width0.dcm"]["warnings"]
    assert "left out" in rows["second0.dcm"]["warnings"]
    assert hashlib.sha256(zero.read_bytes()).hexdigest() == before  # the source is never written
