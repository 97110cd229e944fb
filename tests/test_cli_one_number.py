"""One film, one number (tester items 3 and 4): ``classify_files`` with its defaults and ``cxr-classify``
with any outputs asked for give each real DICOM the same probabilities and the same ``out_of_scope``
as the default run; the heat-maps and DICOM outputs are drawn on the full-resolution film.

Real films from ``../shared/data/dicom`` (skipped with the reason when absent); the bundled ONNX model.
"""
from __future__ import annotations

import csv
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from cxr_engine import classify_files, find_images, load_classifier, read_image
from cxr_engine.cli import main

from model_factory import BUNDLED_CARD

#: Films the model reads from a reduced decode (JPEG 2000, JPEG) and one it reads at full resolution.
FILMS = ("Fake_MONOHR1.dcm", "JPEG2KLossless_1s_1f_u_16_16.dcm", "RG1_J2KI.dcm", "CR-MONO1-10-chest.dcm")
COMMON = ["--model", str(BUNDLED_CARD), "--backend", "onnx", "--device", "cpu", "-q", "--decode-workers", "1"]


@pytest.fixture(scope="module")
def films(tmp_path_factory, dicom_dir) -> Path:
    missing = [name for name in FILMS if not (dicom_dir / name).exists()]
    if missing:
        pytest.skip(f"not in ../shared/data/dicom: {', '.join(missing)}")
    folder = tmp_path_factory.mktemp("one_number") / "films"
    folder.mkdir()
    for name in FILMS:
        shutil.copy(dicom_dir / name, folder / name)
    return folder


@pytest.fixture(scope="module")
def classifier():
    return load_classifier(BUNDLED_CARD, backend="onnx", device="cpu")


@pytest.fixture(scope="module")
def reduced(films, classifier) -> set[str]:
    """The films the model reads from a reduced decode (``model_reader``)."""
    from cxr_engine.classification import model_reader

    names = {name for name in FILMS if model_reader(classifier.card)(films / name).reduction > 1}
    assert names and names != set(FILMS)  # both kinds are tested
    return names


def rows_by_name(path: Path) -> dict[str, dict[str, str]]:
    with open(path, newline="") as handle:
        return {Path(row["path"]).name: row for row in csv.DictReader(handle)}


def run(films: Path, tmp: Path, name: str, *extra: str) -> dict[str, dict[str, str]]:
    out = tmp / name
    out.mkdir()
    assert main([str(films), "--csv", str(out / "out.csv"), *COMMON,
                 *[str(out / arg[4:]) if arg.startswith("OUT/") else arg for arg in extra]]) == 0
    return rows_by_name(out / "out.csv")


@pytest.fixture(scope="module")
def default_rows(films, tmp_path_factory) -> dict[str, dict[str, str]]:
    return run(films, tmp_path_factory.mktemp("default"), "default")


def test_outputs_never_change_a_probability_or_a_reason(films, default_rows, reduced, tmp_path):
    with_outputs = run(films, tmp_path, "outputs", "--cam-dir", "OUT/heatmaps", "--dicom-out", "OUT/dicom")
    assert sorted(with_outputs) == sorted(FILMS)
    for name in FILMS:
        for column in ("prediction", "p_normal", "p_pneumonia", "p_covid", "out_of_scope"):
            assert with_outputs[name][column] == default_rows[name][column], (name, column)
    assert default_rows["Fake_MONOHR1.dcm"]["out_of_scope"] == "inverted"  # as the app's red banner says
    # The heat-maps lie on the full-resolution film, also where the model read a reduced decode.
    for name in reduced:
        row = with_outputs[name]
        full = read_image(films / name)
        assert full.reduction == 1
        heatmap = np.asarray(Image.open(row["heatmap_path"]))
        assert heatmap.dtype == np.uint16 and heatmap.shape == full.shape[:2], name
    # The Comprehensive SR sent to PACS carries the CSV's numbers.
    from pydicom import dcmread

    sources = {dcmread(films / name, stop_before_pixels=True, force=True).SOPInstanceUID: name for name in FILMS}
    srs = [ds for ds in map(dcmread, sorted((tmp_path / "outputs" / "dicom").rglob("*.dcm"))) if ds.Modality == "SR"]
    assert len(srs) == len(FILMS)
    for ds in srs:
        (source,) = {name for uid, name in sources.items() if uid in str(ds)}
        values = sorted(float(elem.value) for elem in ds.iterall() if elem.keyword == "NumericValue")
        expected = sorted(float(default_rows[source][f"p_{cls}"]) for cls in ("normal", "pneumonia", "covid"))
        assert values == pytest.approx(expected, abs=2e-6), source


def test_full_decode_is_an_explicit_choice_that_may_change_the_reduced_films(films, default_rows, reduced, tmp_path):
    full = run(films, tmp_path, "full", "--full-decode")
    for name in set(FILMS) - reduced:  # read at full resolution either way: the same number
        assert full[name]["p_covid"] == default_rows[name]["p_covid"], name
    differences = [abs(float(full[name]["p_covid"]) - float(default_rows[name]["p_covid"])) for name in reduced]
    assert max(differences) < 0.05  # the README's "can differ a little"


def test_classify_files_defaults_give_the_cli_result(films, default_rows, classifier):
    events = [event for event in classify_files(find_images([films]).files, classifier) if event.done]
    assert sorted(event.path.name for event in events) == sorted(FILMS)
    for event in events:
        row = default_rows[event.path.name]
        assert event.out_of_scope == row["out_of_scope"], event.path.name
        for cls, p in zip(event.prediction.classes, event.prediction.probabilities):
            assert f"{p:.6f}" == row[f"p_{cls}"], (event.path.name, cls)


def test_the_image_checks_run_by_default_and_can_be_turned_off(films, classifier):
    film = films / "Fake_MONOHR1.dcm"  # a negative: MONOCHROME1 written over MONOCHROME2 pixels
    (checked,) = [event for event in classify_files([film], classifier) if event.done]
    (unchecked,) = [event for event in classify_files([film], classifier, checker=None) if event.done]
    assert "inverted" in checked.out_of_scope.split(";")
    assert "inverted" not in unchecked.out_of_scope.split(";")
    assert checked.prediction.probabilities == unchecked.prediction.probabilities
