"""The out-of-scope reasons name each check that fired, most specific first, and never a fault the image
checks do not believe (new-user test, finding 1): the real RSNA film of a 6-year-old (Patient's Age 6,
``00aecb01…``) is flagged by its header's age and by the image checks, whose ``upright`` probability
(0.989) is just below the card's threshold (0.9986) while "not a chest radiograph" has 1 %: the age
comes first and the checks' part is ``atypical-film``, in the CSV, the engine's warnings and the app's
panel."""
from __future__ import annotations


import pytest

from cxr_engine.models.image_checks import (
    ATYPICAL, NOT_CHEST, UPRIGHT, ImageCheck, banner, default_checker, describe,
)
from cxr_engine.models.scope_score import REASON as UNCERTAIN, out_of_scope
from cxr_engine.models.suitability import AGE_OUTSIDE_TRAINING, LATERAL
from cxr_engine.pixels.image import ImageMetadata

from model_factory import classify_one_to_csv

CHILD = "00aecb01-a116-45a2-956c-08d2fa55433f.dcm"


@pytest.fixture(scope="module")
def child_film(shared_data):
    path = shared_data / "dicom_rsna" / CHILD
    if not path.exists():
        pytest.skip(f"{path} (the RSNA film of a 6-year-old) not found")
    return path


def _check(reasons: str, **probabilities) -> ImageCheck:
    return ImageCheck(reasons, {UPRIGHT: 0.0, **probabilities})


class TestCheckReason:
    def test_a_fault_less_probable_than_upright_is_not_named(self):
        check = _check(NOT_CHEST, upright=0.989, **{NOT_CHEST: 0.011})
        assert check.flagged and not check.likely
        assert check.scope_reasons == ATYPICAL
        assert describe(NOT_CHEST) not in check.warning and describe(ATYPICAL) in check.warning

    def test_a_fault_the_head_favours_is_named(self):
        check = _check("rotated-90", upright=0.3, **{"rotated-90": 0.7})
        assert check.likely and check.scope_reasons == "rotated-90" and check.correctable

    def test_a_weak_turn_is_not_offered_as_a_correction(self):
        assert not _check("rotated-90", upright=0.6, **{"rotated-90": 0.4}).correctable

    def test_in_scope(self):
        check = _check("", upright=0.9999)
        assert check.scope_reasons == "" and check.warning == "" and not check.correctable


class TestOrder:
    def test_header_facts_then_checks_then_uncertain(self):
        header = ImageMetadata(patient_age="006Y", view_position="LL")
        got = out_of_scope(ATYPICAL, (0.4, 0.35, 0.25), 0.5, header, "child-chest")
        assert got.split(";") == [LATERAL, AGE_OUTSIDE_TRAINING, ATYPICAL, UNCERTAIN]
        words = banner(got)
        positions = [words.index(describe(part)) for part in got.split(";")]
        assert positions == sorted(positions)


def test_the_child_film_is_atypical_not_a_non_chest_image(child_film):
    checker = default_checker()
    if checker is None:
        pytest.skip("the bundled image checks are not available")
    from cxr_engine.reading.read import read_image

    check = checker.check(read_image(child_film))
    assert check.flagged, "the check set's threshold flags this film (upright below the card's threshold)"
    assert check.probabilities[UPRIGHT] < checker.card.threshold
    assert check.probabilities[UPRIGHT] > check.probabilities[check.reasons]
    assert check.scope_reasons == ATYPICAL


def test_the_cli_names_the_age_first_and_no_false_fault(child_film, tmp_path):
    row = classify_one_to_csv(child_film, tmp_path / "out.csv")
    assert row["out_of_scope"].split(";")[0] == AGE_OUTSIDE_TRAINING
    assert NOT_CHEST not in row["out_of_scope"]
    assert row["out_of_scope"] == f"{AGE_OUTSIDE_TRAINING};{ATYPICAL}"
    assert "patient age outside the training data" in row["warnings"]
    assert describe(NOT_CHEST) not in row["warnings"] and describe(ATYPICAL) in row["warnings"]
    assert banner(row["out_of_scope"]).index(describe(AGE_OUTSIDE_TRAINING)) < banner(row["out_of_scope"]).index(
        describe(ATYPICAL))


def test_the_app_panel_gives_the_same_reasons(child_film, qapp):
    from cxr_desktop.result_model import ResultModel
    from cxr_engine.reading.read import read_image

    checker = default_checker()
    if checker is None:
        pytest.skip("the bundled image checks are not available")
    image = read_image(child_film)
    model = ResultModel()
    model.set_image((), image.metadata, child_film)
    model.set_image_check(checker.check(image))
    assert model.out_of_scope == f"{AGE_OUTSIDE_TRAINING};{ATYPICAL}"
