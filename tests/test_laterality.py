"""A turned film is corrected only when the laterality head can tell whether it is also mirrored (flipped).

The image-check head calls a film stored flipped top to bottom "upside down" like one turned 180°; turning
it back showed the film mirrored left-right, the heart on the viewer's left, under "shown corrected" (the
pydicom JPEG 2000 DX film, found by a new-user tester). Real films from ``../shared/data/dicom``.
"""
from __future__ import annotations

import csv
import itertools
import json
import shutil

import numpy as np
import pytest

from cxr_engine.errors import ModelError, ModelIntegrityError
from cxr_engine.models.image_checks import (
    MIRRORED, NOT_CORRECTED, ImageChecker, LateralityCard, LateralityHead, banner, check_card, combined_reasons,
    corrected_display, default_checker, describe, laterality_card, reoriented,
)
from cxr_engine.reading.read import read_image

from conftest import REPO_ROOT

UPSIDE_DOWN_J2K = "JPEG2KLossless_1s_1f_u_16_16.dcm"  # a negative, stored flipped top to bottom
ALL_REASONS = ["", "inverted", MIRRORED, *(f"{inv}rotated-{d}{m}" for inv in ("", "inverted;")
                                          for d in (90, 180, 270) for m in ("", f";{MIRRORED}"))]


@pytest.fixture(scope="module")
def checker() -> ImageChecker:
    return ImageChecker(check_card(), LateralityHead(laterality_card())).load()


def upright(dicom_dir, name: str) -> np.ndarray:
    return (read_image(dicom_dir / name).display() * 255).astype(np.uint8)


def stored(film: np.ndarray, degrees: int, mirror: bool) -> np.ndarray:
    """``film`` as a file might hold it: mirrored left-right first when ``mirror``, then turned clockwise."""
    return np.ascontiguousarray(np.rot90(film[:, ::-1] if mirror else film, -(degrees // 90)))


class TestCorrections:
    def test_undoing_two_corrections_is_undoing_their_combination(self):
        x = np.arange(12, dtype=np.uint8).reshape(3, 4)  # no symmetry: every turn and mirror is seen
        for first, then in itertools.product(ALL_REASONS, repeat=2):
            both = corrected_display(corrected_display(x, first), then)
            np.testing.assert_array_equal(both, corrected_display(x, combined_reasons(first, then)), err_msg=f"{first} + {then}")

    @pytest.mark.parametrize("degrees", [90, 180, 270])
    @pytest.mark.parametrize("mirror", [False, True])
    def test_the_correction_of_a_turned_or_flipped_film_gives_the_film_back(self, degrees, mirror):
        film = np.arange(20.0).reshape(4, 5)
        reasons = f"rotated-{degrees}" + (f";{MIRRORED}" if mirror else "")
        np.testing.assert_array_equal(corrected_display(stored(film, degrees, mirror), reasons), film)

    def test_reoriented_turns_and_mirrors_the_film_as_corrected_display_does(self, dicom_dir):
        image = read_image(dicom_dir / "CR-MONO1-10-chest.dcm")
        for reasons in ("rotated-90;mirrored", "rotated-180;mirrored", "inverted;rotated-270;mirrored"):
            shown = reoriented(image, reasons)
            np.testing.assert_array_equal(shown.stored, corrected_display(image.stored, reasons.replace("inverted;", "")))
            assert shown.invert == (("inverted" in reasons) != image.invert)
            assert image.stored.flags.writeable and shown.stored is not image.stored  # the source untouched

    def test_words(self):
        assert describe("rotated-180;mirrored") == "flipped top to bottom (upside down and mirrored left-right)"
        assert describe("inverted;rotated-90;mirrored") == ("shown as a negative (inverted), mirrored left-right, "
                                                           "then turned 90° clockwise")  # the order that makes it
        assert describe("rotated-180") == "upside down"  # turned or flipped: what is known
        assert "• flipped top to bottom (upside down and mirrored left-right)" in banner("inverted;rotated-180;mirrored")


class TestRealFilms:
    @pytest.mark.parametrize("name", ["RG1_J2KI.dcm", "CR-MONO1-10-chest.dcm"])
    def test_turned_and_flipped_copies_get_the_right_correction(self, checker, dicom_dir, name):
        film = upright(dicom_dir, name)
        for degrees, mirror in itertools.product((90, 180, 270), (False, True)):
            check = checker.check(stored(film, degrees, mirror))
            assert check.correction == f"rotated-{degrees}" + (f";{MIRRORED}" if mirror else ""), (degrees, mirror)
            np.testing.assert_array_equal(corrected_display(stored(film, degrees, mirror), check.correction), film)

    def test_a_film_it_is_not_sure_about_is_flagged_but_not_corrected(self, checker, dicom_dir):
        check = checker.check(stored(upright(dicom_dir, "966_fixed.dcm"), 180, True))
        assert check.reasons == "rotated-180" and check.likely and check.mirrored is None
        assert check.scope_reasons == "rotated-180" and not check.correctable and check.correction == ""
        assert check.warning.endswith(NOT_CORRECTED)

    def test_the_jpeg2000_film_stored_flipped(self, dicom_dir):
        check = default_checker().check(read_image(dicom_dir / UPSIDE_DOWN_J2K))
        assert check.reasons == "inverted;rotated-180" and check.mirrored is True
        assert check.scope_reasons == check.correction == "inverted;rotated-180;mirrored"

    def test_a_mirrored_negative_is_mirrored_back_when_the_head_is_sure(self, checker, dicom_dir):
        film = upright(dicom_dir, "RG1_J2KI.dcm")
        check = checker.check(np.ascontiguousarray(255 - film[:, ::-1]))
        assert check.correction == f"inverted;{MIRRORED}"
        np.testing.assert_array_equal(corrected_display(255 - film[:, ::-1], check.correction), film)
        assert checker.check(np.ascontiguousarray(255 - film)).correction == "inverted"  # nothing to mirror

    def test_without_the_laterality_head_no_turned_film_is_corrected(self, dicom_dir):
        check = ImageChecker(check_card()).load().check(stored(upright(dicom_dir, "RG1_J2KI.dcm"), 180, False))
        assert check.reasons == "rotated-180" and check.mirrored is None and not check.correctable
        inverted_only = ImageChecker(check_card()).load().check(read_image(dicom_dir / "Fake_MONOHR1.dcm"))
        assert inverted_only.correction == "inverted"  # nothing turned: nothing to tell


class TestCli:
    def test_a_flipped_film_is_flagged_flipped_and_auto_oriented_like_the_upright_one(self, tmp_path, dicom_dir):
        import cv2

        from cxr_engine.cli import main
        from model_factory import BUNDLED_CARD

        film = upright(dicom_dir, "RG1_J2KI.dcm")
        folder = tmp_path / "in"
        folder.mkdir()
        cv2.imwrite(str(folder / "upright.png"), film)
        cv2.imwrite(str(folder / "flipped.png"), np.ascontiguousarray(film[::-1]))
        plain, oriented = tmp_path / "plain.csv", tmp_path / "oriented.csv"
        common = ["--model", str(BUNDLED_CARD), "--backend", "onnx", "--no-isolation"]
        assert main([str(folder), "--csv", str(plain), *common]) == 0
        assert main([str(folder), "--csv", str(oriented), "--auto-orient", *common]) == 0
        with open(plain, newline="") as a, open(oriented, newline="") as b:
            rows = {r["path"].rsplit("/", 1)[-1]: r for r in csv.DictReader(a)}
            fixed = {r["path"].rsplit("/", 1)[-1]: r for r in csv.DictReader(b)}
        assert rows["flipped.png"]["out_of_scope"] == "rotated-180;mirrored"
        assert "flipped top to bottom" in rows["flipped.png"]["warnings"]
        assert fixed["flipped.png"]["out_of_scope"] == ""
        for cls in ("p_normal", "p_pneumonia", "p_covid"):  # the very film the upright one is: one number
            assert float(fixed["flipped.png"][cls]) == pytest.approx(float(rows["upright.png"][cls]), abs=1e-6)


class TestCard:
    def test_bundled_card(self):
        card = laterality_card()
        assert tuple(card.classes) == ("as-shown", MIRRORED) and 0.5 < card.threshold <= 1.0
        assert card.torch_free and card.created_by_command.startswith("python -m training.laterality")
        outcomes = card.test_metrics["turned_and_flipped_corrections"]["all_turned"]
        assert outcomes["wrong_share"] < 0.01 and outcomes["right_share"] > 0.75

    @pytest.mark.parametrize("change", [{"classes": ["a", "b"]}, {"threshold": 0.4}, {"task": "image-checks"}])
    def test_an_inconsistent_card_is_refused(self, tmp_path, change):
        data = json.loads((REPO_ROOT / "resources" / "models" / "image-laterality.json").read_text())
        path = tmp_path / "lat.json"
        path.write_text(json.dumps({**data, **change}))
        with pytest.raises(ModelError):
            LateralityCard.load(path)

    def test_tampered_parameters_are_refused(self, tmp_path):
        models = REPO_ROOT / "resources" / "models"
        for name in ("image-laterality.json", "image-laterality.mlp"):
            shutil.copy(models / name, tmp_path / name)
        with open(tmp_path / "image-laterality.mlp", "a") as handle:
            handle.write(" ")
        with pytest.raises(ModelIntegrityError):
            LateralityHead(LateralityCard.load(tmp_path / "image-laterality.json")).load()


def test_the_training_command_on_a_few_films(tmp_path, shared_data):
    """``training.laterality`` end to end on 150 cxr3 films per split (a split made here by patient, as the
    curated manifest's columns ``split``, ``path`` and ``source``)."""
    from training import laterality

    with open(shared_data / "cxr3" / "manifest.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))[::20]
    manifest = tmp_path / "split_manifest.csv"
    with open(manifest, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=["split", "path", "source"])
        writer.writeheader()
        for row in rows:
            split = ("train", "val", "test")[int(row["patient_id"].encode().hex(), 16) % 3]
            writer.writerow({"split": split, "path": str(shared_data / "cxr3" / row["file"]), "source": row["source"]})
    out = tmp_path / "image-laterality.json"
    assert laterality.main(["--manifest", str(manifest), "--limit", "150", "--out", str(out),
                            "--report", str(tmp_path / "report")]) == 0
    card = LateralityCard.load(out)
    summary = json.loads((tmp_path / "report" / "summary.json").read_text())
    assert summary["threshold"] == card.threshold and summary["validation"]["error_among_told"] <= 0.005
    assert summary["turned_and_flipped_corrections"]["all"]["n"] == 150 * 8


class TestMarksOnACorrectedFilm:
    """The reader's marks and a corrected film: they move with the film when it is turned or flipped back
    (they stayed at their coordinates, on other anatomy), and a presentation state for the film shown
    corrected writes them where they lie on the stored film (they were written at the view's coordinates)."""

    @pytest.mark.parametrize("reasons", [r for r in ALL_REASONS if "rotated" in r or MIRRORED in r])
    def test_every_pixel_maps_both_ways(self, reasons):
        from cxr_engine.models.image_checks import shown_points, stored_points

        stored_film = np.arange(15).reshape(3, 5)
        shown = corrected_display(stored_film, reasons.replace("inverted;", ""))
        for row, col in itertools.product(range(3), range(5)):
            ((x, y),) = shown_points([(col + 0.5, row + 0.5)], reasons, stored_film.shape)
            assert shown[int(y), int(x)] == stored_film[row, col]
            assert stored_points([(x, y)], reasons, shown.shape) == ((col + 0.5, row + 0.5),)

    def test_the_presentation_state_gets_the_stored_films_coordinates(self, dicom_dir):
        from types import SimpleNamespace

        from cxr_desktop.annotation_model import Annotation
        from cxr_desktop.pacs_controller import shown_state
        from cxr_engine.outputs.dicom_outputs.presentation_state import SpatialTransformation

        film = read_image(dicom_dir / "CR-MONO1-10-chest.dcm")
        shown = reoriented(film, "rotated-90;mirrored")
        arrow = Annotation("arrow", ((10.0, 20.0), (30.0, 40.0)))
        window = SimpleNamespace(
            viewer=SimpleNamespace(image=shown, voi=None, display_inverted=False, rotation=0, flip_h=False, flip_v=False),
            annotations=SimpleNamespace(for_path=lambda path: [arrow]),
            workspace=SimpleNamespace(correction=lambda path: "rotated-90;mirrored"))
        (mark,) = shown_state(window)["marks"]
        rows, cols = shown.stored.shape
        # shown = mirror(rot90 ccw(stored)): stored (x, y) = (rows - y', x') with x' = cols - x
        assert mark.points == ((rows - 20.0, cols - 10.0), (rows - 40.0, cols - 30.0)) and mark.kind == "arrow"
        # ...and the view itself: turned back a quarter (270° clockwise), then mirrored (PS3.3 C.10.6 order).
        assert shown_state(window)["spatial_transformation"] == SpatialTransformation(270, True)
        # The reader then turns it a quarter clockwise and flips it top to bottom: a quarter turn carries the
        # left-right mirror into a top-bottom one, which the flip undoes: the film is shown as stored.
        window.viewer.rotation, window.viewer.flip_v = 90, True
        assert shown_state(window)["spatial_transformation"] == SpatialTransformation(0, False)
        window.viewer.flip_v = False  # without the flip: a top-bottom mirror, i.e. turned 180°, then mirrored
        assert shown_state(window)["spatial_transformation"] == SpatialTransformation(180, True)
        window.workspace = SimpleNamespace(correction=lambda path: "")
        window.viewer.rotation, window.viewer.flip_v = 0, False
        assert shown_state(window)["marks"] == (arrow,)  # shown as stored: unchanged
        assert shown_state(window)["spatial_transformation"] == SpatialTransformation()
