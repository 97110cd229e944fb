"""How many times ``cxr-classify`` decodes each film ("a film decoded once per size", the 2026-11-29 review).

Without outputs every film is decoded once, as the model input needs it. With ``--heatmap-dir`` and
``--dicom-out``, a film the model read from a reduced decode (JPEG 2000 resolution level, JPEG DCT
scaling) is decoded once more, at full resolution, and that one decode serves the heat-map and the
DICOM objects; a film read in full is not decoded again. The model input is not derived from the full
decode instead: a J2K resolution level or a scaled JPEG decode is not an average of the full decode's
pixels, and the probabilities would move (on none of the 21 reduced real DICOMs were they the same;
``python -m benchmarks.bench_reduced_agreement -n 0``, ``largest_derived_difference``). The probabilities
with outputs are those without.

Real films from ``../shared/data/dicom`` (skipped with the reason when absent), decoded in this process
(``--no-isolation``) so that ``read_dicom`` can be watched; the bundled classifier on ONNX Runtime.
"""
from __future__ import annotations

import csv
from collections import defaultdict
from pathlib import Path

import pytest

from cxr_engine.cli import main
from cxr_engine.reading import dicom_io

from conftest import real_films
from model_factory import BUNDLED_CARD

pytest.importorskip("onnxruntime")

#: JPEG 2000 (read at its ×2 level), JPEG baseline (DCT scaled by 1/2), uncompressed (no reduced path).
FILMS = {"RG1_J2KI.dcm": 2, "Fake_MONOHR1.dcm": 2, "CR-MONO1-10-chest.dcm": 1}
COMMON = ["--model", str(BUNDLED_CARD), "--backend", "onnx", "--device", "cpu", "-q", "--no-isolation"]
COLUMNS = ("prediction", "p_normal", "p_pneumonia", "p_covid", "out_of_scope")


@pytest.fixture(scope="module")
def films(tmp_path_factory, dicom_dir) -> Path:
    return real_films(tmp_path_factory.mktemp("decodes") / "films", dicom_dir, FILMS)


def classify(films: Path, out: Path, monkeypatch, *output_options: str) -> tuple[dict, dict]:
    """(CSV rows by file name, the reductions of each file's decodes in order) of one run; each of
    ``output_options`` (``--heatmap-dir``) gets a folder of that name in ``out``."""
    decodes: dict[str, list[int]] = defaultdict(list)
    real_read_dicom = dicom_io.read_dicom

    def watched(path, *args, **kwargs):
        image = real_read_dicom(path, *args, **kwargs)
        decodes[Path(path).name].append(image.reduction)
        return image

    out.mkdir()
    outputs = [argument for option in output_options for argument in (option, str(out / option.lstrip("-")))]
    with monkeypatch.context() as patch:
        patch.setattr(dicom_io, "read_dicom", watched)
        assert main([str(films), "--csv", str(out / "out.csv"), *COMMON, *outputs]) == 0
    with open(out / "out.csv", newline="") as handle:
        rows = {Path(row["path"]).name: row for row in csv.DictReader(handle)}
    return rows, dict(decodes)


def test_one_decode_per_film_and_size_with_heatmaps_and_dicom_outputs(films, tmp_path, monkeypatch):
    plain, plain_decodes = classify(films, tmp_path / "plain", monkeypatch)
    assert plain_decodes == {name: [reduction] for name, reduction in FILMS.items()}

    outputs, output_decodes = classify(films, tmp_path / "outputs", monkeypatch, "--heatmap-dir", "--dicom-out")
    # The model's decode first, then the full one the outputs are drawn on, only where the first was reduced.
    assert output_decodes == {name: [reduction, 1] if reduction > 1 else [1] for name, reduction in FILMS.items()}
    for name in FILMS:
        assert outputs[name]["status"] == "ok" and outputs[name]["heatmap_path"], name
        assert {c: outputs[name][c] for c in COLUMNS} == {c: plain[name][c] for c in COLUMNS}, name
    assert len(list((tmp_path / "outputs" / "dicom-out").rglob("*.dcm"))) >= len(FILMS)
