"""Image checks from the pixels (issue 17): real films turned, inverted and cropped, non-chest images,
the real DICOM files, the CSV column, --auto-orient, the PDF and the torch-free path."""
from __future__ import annotations

import csv
import dataclasses
import json
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest

from cxr_engine.cli import main
from cxr_engine.errors import ModelError, ModelIntegrityError
from cxr_engine.models.image_checks import (CHECK_CLASSES, FEATURE_VERSION, ImageCheckCard, ImageChecker, banner,
                                     check_card, corrected_display, correction_note, features, reoriented,
                                     thumbnail)
from cxr_engine.reading.read import read_image

from conftest import REPO_ROOT
from model_factory import BUNDLED_CARD
from test_without_torch import PRELUDE, run_python

UPSIDE_DOWN_J2K = "JPEG2KLossless_1s_1f_u_16_16.dcm"


@pytest.fixture(scope="module")
def checker() -> ImageChecker:
    return ImageChecker(check_card()).load()


@pytest.fixture(scope="module")
def test_films(shared_data):
    """Twelve test-split films of cxr3, spread over the curated manifest's test rows (any cxr3 rows
    where the curated split has not been made on this machine)."""
    curated = REPO_ROOT / "training" / "work" / "curated" / "split_manifest.csv"
    with open(curated if curated.exists() else shared_data / "cxr3" / "manifest.csv", newline="") as handle:
        rows = [r for r in csv.DictReader(handle) if r.get("split", "test") == "test"]
    paths = [shared_data / "cxr3" / r["file"] for r in rows[::max(1, len(rows) // 12)]][:12]
    return [cv2.imread(str(p), cv2.IMREAD_GRAYSCALE) for p in paths]


class TestFeatures:
    def test_shape_dtype_and_range(self, dicom_dir):
        thumb = thumbnail(read_image(dicom_dir / "RG1_J2KI.dcm"))
        assert thumb.shape == (64, 64) and thumb.dtype == np.float32
        assert 0.0 <= thumb.min() and thumb.max() <= 1.0
        row = features(thumb)
        assert row.dtype == np.float32 and row.ndim == 1 and np.isfinite(row).all()

    def test_wrong_thumbnail_size_raises(self):
        with pytest.raises(ValueError, match=r"\(64, 64\) thumbnail"):
            features(np.zeros((32, 32), np.float32))


class TestReoriented:
    def test_turned_back_without_touching_the_source(self, dicom_dir):
        image = read_image(dicom_dir / "RG1_J2KI.dcm")
        stored = image.stored.copy()
        turned = reoriented(image, "rotated-90")
        assert turned.shape == image.shape[::-1]
        np.testing.assert_array_equal(turned.modality, np.rot90(image.modality))
        np.testing.assert_array_equal(image.stored, stored)  # the original is untouched
        assert reoriented(image, "inverted").invert is (not image.invert)
        assert reoriented(image, "cropped") is image  # nothing to undo

    def test_spacing_follows_a_quarter_turn(self, shared_data):
        path = shared_data.parent / "bugcases" / "nonsquare-pixels.dcm"
        if not path.exists():
            pytest.skip(f"{path} not found")
        image = read_image(path)
        # its 75-mm field of view sets the spacing aside for lengths; its ratio stays the pixels' aspect
        assert image.spacing_mm is None and image.pixel_aspect_ratio[0] != image.pixel_aspect_ratio[1]
        turned = reoriented(image, "rotated-270")
        assert turned.pixel_aspect_ratio == image.pixel_aspect_ratio[::-1]
        assert turned.pixel_aspect == pytest.approx(1 / image.pixel_aspect)
        calibrated = dataclasses.replace(image, spacing_mm=(0.34, 0.17))
        assert reoriented(calibrated, "rotated-270").spacing_mm == (0.17, 0.34)

    def test_corrected_display_undoes_each_turn(self):
        upright = np.arange(12, dtype=np.float32).reshape(3, 4) / 11
        for k, reason in ((-1, "rotated-90"), (2, "rotated-180"), (1, "rotated-270")):
            np.testing.assert_array_equal(corrected_display(np.rot90(upright, k=k), reason), upright)
        np.testing.assert_allclose(corrected_display(1 - np.rot90(upright, 2), "inverted;rotated-180"), upright, atol=1e-6)


class TestCard:
    def test_bundled_card_is_complete(self):
        card = check_card()
        assert card.feature_version == FEATURE_VERSION and tuple(card.classes) == CHECK_CLASSES
        assert 0 < card.threshold < 1 and card.created_by_command.startswith("python -m training.image_checks")
        assert card.weights_path.suffix != ".json"  # never mistaken for a model card

    def test_tampered_parameters_are_refused(self, tmp_path):
        card = check_card()
        for name in (card.path.name, card.weights_file):
            shutil.copy(card.path.parent / name, tmp_path / name)
        with open(tmp_path / card.weights_file, "ab") as handle:
            handle.write(b" ")
        with pytest.raises(ModelIntegrityError):
            ImageChecker(ImageCheckCard.load(tmp_path / card.path.name)).load()

    def test_a_classifier_card_is_not_an_image_check_card(self):
        with pytest.raises(ModelError, match="not an image-check card"):
            ImageCheckCard.load(BUNDLED_CARD)


class TestRealFilms:
    def test_upright_films_pass_and_altered_ones_get_the_right_reason(self, checker, test_films):
        wrong = []
        for film in test_films:
            cases = {"": film, "inverted": 255 - film, "rotated-90": np.rot90(film, -1),
                     "rotated-180": np.rot90(film, 2), "rotated-270": np.rot90(film, 1)}
            for expected, image in cases.items():
                got = checker.check(np.ascontiguousarray(image)).reasons
                if got != expected:
                    wrong.append((expected, got))
        # 60 cases; the check set's figures (training/reports/image_checks) allow about 1 miss in 60.
        assert len(wrong) <= 2, wrong

    def test_dicom_negative_and_upside_down_films_are_flagged(self, checker, dicom_dir):
        assert checker.check(read_image(dicom_dir / "Fake_MONOHR1.dcm")).reasons == "inverted"
        assert "rotated-180" in checker.check(read_image(dicom_dir / UPSIDE_DOWN_J2K)).reasons
        for name in ("RG1_J2KI.dcm", "CR-MONO1-10-chest.dcm", "966_fixed.dcm"):
            assert not checker.check(read_image(dicom_dir / name)).flagged, name

    def test_ct_and_mr_slices_are_flagged(self, checker):
        """Both are flagged (out of scope); the reason is not always ``not-a-chest-radiograph`` (the 64×64
        MR slice is read as a turned negative film: the check set's non-chest figures count such misses)."""
        pydicom_data = pytest.importorskip("pydicom.data")
        folder = Path(pydicom_data.__file__).parent / "test_files"
        for name in ("CT_small.dcm", "MR_small.dcm"):
            if not (folder / name).exists():
                pytest.skip(f"pydicom's {name} is not installed")
            assert checker.check(read_image(folder / name)).flagged, name


def _rows(path):
    with open(path, newline="") as handle:
        return {row["path"].rsplit("/", 1)[-1]: row for row in csv.DictReader(handle)}


class TestCli:
    def test_out_of_scope_column_and_auto_orient(self, tmp_path, dicom_dir):
        film = read_image(dicom_dir / "RG1_J2KI.dcm").display()
        upright = (film * 255).astype(np.uint8)
        folder = tmp_path / "in"
        folder.mkdir()
        cv2.imwrite(str(folder / "upright.png"), upright)
        cv2.imwrite(str(folder / "upside_down.png"), np.rot90(upright, 2))
        plain, oriented = tmp_path / "plain.csv", tmp_path / "oriented.csv"
        common = ["--model", str(BUNDLED_CARD), "--backend", "onnx", "--no-isolation"]
        assert main([str(folder), "--csv", str(plain), *common]) == 0
        assert main([str(folder), "--csv", str(oriented), "--auto-orient", *common]) == 0
        rows, fixed = _rows(plain), _rows(oriented)
        assert rows["upright.png"]["out_of_scope"] == ""
        assert rows["upside_down.png"]["out_of_scope"] == "rotated-180"
        assert "upside down" in rows["upside_down.png"]["warnings"]
        assert fixed["upside_down.png"]["out_of_scope"] == ""
        assert correction_note("rotated-180") in fixed["upside_down.png"]["warnings"]
        for cls in ("p_normal", "p_pneumonia", "p_covid"):  # classified as the upright film is
            assert float(fixed["upside_down.png"][cls]) == pytest.approx(float(rows["upright.png"][cls]), abs=0.02)


def test_pdf_says_the_film_is_out_of_scope(dicom_dir):
    import io

    pypdf = pytest.importorskip("pypdf")

    from cxr_engine.models.torch_backend import Prediction
    from cxr_engine.outputs.report import ReportPage, build_report_pdf
    from cxr_engine.pixels.rendering import render

    image = read_image(dicom_dir / "Fake_MONOHR1.dcm")
    shown = np.repeat(render(image)[..., None], 3, axis=2)
    prediction = Prediction(("normal", "pneumonia", "covid"), (0.1, 0.1, 0.8), "test")
    page = ReportPage(displayed=shown, heatmap=shown, prediction=prediction, heatmap_class="covid",
                      out_of_scope="inverted")
    text = " ".join(p.extract_text() for p in pypdf.PdfReader(io.BytesIO(
        build_report_pdf([page], model_card=None, deidentify=False))).pages)
    text = " ".join(text.split())
    assert " ".join(banner("inverted").split()[:6]) in text
    assert "heat-map is not reliable" in text


def test_checks_run_without_torch(dicom_dir):
    code = PRELUDE + """
from cxr_engine.models.image_checks import check_image
from cxr_engine.reading.read import read_image
check = check_image(read_image(sys.argv[1]))
print(json.dumps({"reasons": check.reasons, "torch": any(m.split(".")[0] == "torch" for m in sys.modules)}))
"""
    assert run_python(code, dicom_dir / "Fake_MONOHR1.dcm") == {"reasons": "inverted", "torch": False}


def test_desktop_shows_the_banner_in_the_result_the_screenshot_and_the_pdf(tmp_path, dicom_dir):
    """The app on Fake_MONOHR1.dcm (a film displayed as its negative): the result JSON's ``out_of_scope``,
    the banner above the probabilities (screenshot) and the PDF's banner and legend line."""
    pytest.importorskip("PySide6")
    pytest.importorskip("onnxruntime")
    pypdf = pytest.importorskip("pypdf")
    import os
    import subprocess
    import sys

    from cxr_desktop.settings import SETTINGS_ENV

    folder = tmp_path / "study"
    folder.mkdir()
    shutil.copy(dicom_dir / "Fake_MONOHR1.dcm", folder)
    result, shot, pdf = tmp_path / "result.json", tmp_path / "shot.png", tmp_path / "report.pdf"
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen", **{SETTINGS_ENV: str(tmp_path / "s.ini")})
    proc = subprocess.run(
        [sys.executable, "-m", "cxr_desktop", str(folder), "--result-json", str(result), "--screenshot", str(shot),
         "--export-pdf", str(pdf), "--model", str(BUNDLED_CARD), "--backend", "onnx", "--device", "cpu",
         "--timeout", "240"],
        capture_output=True, text=True, cwd=REPO_ROOT, env=env, timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    # The image checks' reason first; "uncertain" follows where the card's out-of-scope threshold is passed.
    assert json.loads(result.read_text())["out_of_scope"].split(";")[0] == "inverted"
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    text = " ".join(" ".join(p.extract_text() for p in pypdf.PdfReader(pdf).pages).split())
    assert "Outside what this model was trained for: shown as a negative (inverted)" in text
    assert "heat-map is not reliable either" in text


def test_uncertain_follows_the_cards_threshold(tmp_path, dicom_dir):
    """``uncertain`` in ``out_of_scope`` (and worded in ``warnings``) exactly when 1 − the top probability
    passes the threshold the card records; no threshold, no flag."""
    from cxr_engine.models.scope_score import SCORE_KEY

    data = json.loads(BUNDLED_CARD.read_text())
    shutil.copy(BUNDLED_CARD.with_name(data["onnx_file"]), tmp_path / data["onnx_file"])
    film = dicom_dir / "CR-MONO1-10-chest.dcm"
    common = [str(film), "--backend", "onnx", "--no-isolation"]
    outcomes = {}
    for name, entry in (("strict", {"score": "msp", "threshold": 0.0}), ("lax", {"score": "msp", "threshold": 0.99}),
                        ("none", None)):
        card = {key: value for key, value in data.items() if key != SCORE_KEY}
        if entry:
            card[SCORE_KEY] = entry
        (tmp_path / f"{name}.json").write_text(json.dumps(card))
        out = tmp_path / f"{name}.csv"
        assert main([*common, "--model", str(tmp_path / f"{name}.json"), "--csv", str(out)]) == 0
        outcomes[name] = _rows(out)[film.name]
    assert outcomes["strict"]["out_of_scope"] == "uncertain" and "note: the model is unsure" in outcomes["strict"]["warnings"]
    assert outcomes["lax"]["out_of_scope"] == "" and outcomes["none"]["out_of_scope"] == ""
    assert "unsure" not in outcomes["lax"]["warnings"]
