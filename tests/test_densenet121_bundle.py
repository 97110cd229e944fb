"""DenseNet121 from a training run to a model the app offers: the path the finished run of issue 14 takes.

A randomly initialised densenet121 (64 px, so that it is fast; random weights make no claim about
accuracy) is written as a ``--size-schedule`` run whose best epoch was at 64 px, then goes through the
real bundling commands into a throwaway resources folder: ``training.evaluate`` (a subset, as
``--limit`` allows), ``training.export`` (card + float16 safetensors + sha256) and
``training.export_onnx`` (ONNX with the Grad-CAM layer ``features.norm5``). The engine then finds the
card by name with no code naming it: ``load_classifier``, ``cxr-classify --model``,
``$CXR_MODEL_CARD`` and Settings → Model.

Tolerances as in ``test_onnx_backend``: probabilities within 1e-4, heat-maps within 1e-3 of torch's
(pytorch-grad-cam's GradCAM on the same layer).
"""
from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("onnxruntime")
pytest.importorskip("onnx")

from cxr_engine import load_classifier  # noqa: E402
from cxr_engine.models.model_card import CLASSES, ModelCard, list_bundled  # noqa: E402
from cxr_engine.models.registry import build_model, get_architecture  # noqa: E402
from cxr_engine.models.weights import save_weights, sha256_file  # noqa: E402
from cxr_engine.pixels.preprocessing import PREPROCESSING_VERSION  # noqa: E402
from cxr_engine.reading.read import read_image  # noqa: E402

from test_evaluate import tiny_rows, write_manifest  # noqa: E402

NAME = "densenet121"
BEST_SIZE = 64  # the best epoch's input size: smaller than the run's final --size
FINAL_SIZE = 224
PROBABILITY_ATOL = 1e-4
HEATMAP_ATOL = 1e-3


def make_schedule_run(folder: Path, rows: list[dict]) -> Path:
    """A run folder as ``training.train --size-schedule 64:1,224:1`` leaves it when epoch 1 was the best."""
    folder.mkdir(parents=True)
    manifest = write_manifest(rows, folder / "split_manifest.csv")
    torch.manual_seed(14)
    sha = save_weights(build_model(NAME, num_classes=len(CLASSES)), folder / "best.safetensors")
    arch = get_architecture(NAME)
    ModelCard(name=folder.name, architecture=NAME, classes=list(CLASSES), input_size=BEST_SIZE, in_chans=3,
              mean=list(arch.mean), std=list(arch.std), preprocessing_version=PREPROCESSING_VERSION,
              weights_file="best.safetensors", weights_sha256=sha).save(folder / "best.json")
    command = (f"python -m training.train --manifest {manifest} --arch {NAME} --pretrained none "
               f"--size-schedule {BEST_SIZE}:1,{FINAL_SIZE}:1 --epochs 2 --out {folder}")
    run = {"command": command, "preprocessing_version": PREPROCESSING_VERSION, "manifest": str(manifest),
           "manifest_sha256": sha256_file(manifest),
           "args": {"arch": NAME, "size": FINAL_SIZE, "size_schedule": f"{BEST_SIZE}:1,{FINAL_SIZE}:1",
                    "pretrained": "none", "manifest": str(manifest), "split_manifest": str(manifest)}}
    (folder / "run.json").write_text(json.dumps(run), encoding="utf-8")
    (folder / "metrics.jsonl").write_text(json.dumps({"epoch": 1, "size": BEST_SIZE, "is_best": True}) + "\n",
                                          encoding="utf-8")
    return folder


@pytest.fixture(scope="module")
def bundled(cxr3_dir, tmp_path_factory) -> Path:
    """The resources folder the three bundling commands wrote the densenet121 into."""
    from training import evaluate, export
    from training.export_onnx import main as export_onnx_main

    torch.set_num_threads(1)
    tmp = tmp_path_factory.mktemp("densenet121")
    run = make_schedule_run(tmp / "densenet121_run", tiny_rows(cxr3_dir))
    report = tmp / "report"
    models = tmp / "resources" / "models"
    assert evaluate.main(["--run", str(run), "--out", str(report), "--limit", "3", "--device", "cpu",
                          "--no-shift-test", "--no-lung-checks", "--montage-per-kind", "1"]) == 0
    # float32 DenseNet121 weights are 27 MiB, over the 16 MiB limit: float16 is the only way in.
    assert export.main(["--run", str(run), "--name", NAME, "--report", str(report / "metrics.json"),
                        "--models-dir", str(models), "--half", "yes", "--allow-subset", "--device", "cpu"]) == 0
    assert export_onnx_main(["--card", str(models / f"{NAME}.json")]) == 0
    return tmp / "resources"


@pytest.fixture()
def resources(bundled, monkeypatch) -> Path:
    """``bundled`` as the app's resources folder (``$CXR_RESOURCES``), no model forced by the environment."""
    monkeypatch.setenv("CXR_RESOURCES", str(bundled))
    monkeypatch.delenv("CXR_MODEL_CARD", raising=False)
    return bundled


@pytest.fixture(scope="module")
def films(dicom_dir):
    return [read_image(dicom_dir / "CR-MONO1-10-chest.dcm"), read_image(dicom_dir / "966_fixed.dcm")]


def test_the_card_records_the_best_epochs_size_float16_weights_and_the_onnx_export(bundled):
    card = ModelCard.load(bundled / "models" / f"{NAME}.json")
    assert card.architecture == NAME and card.input_size == BEST_SIZE
    assert card.weights_dtype == "float16" and card.weights_path.stat().st_size < 16 * 2**20
    assert sha256_file(card.weights_path) == card.weights_sha256
    assert card.onnx_file == f"{NAME}.onnx" and sha256_file(card.onnx_path) == card.onnx_sha256
    assert not card.meets_bar and "Random initialisation" in card.notes
    from training.export import card_bar_failures

    failures = card.test_metrics["bar_failures"]
    assert failures and all(f in card.notes for f in failures)  # the card's own words, listed for the app
    # a card cannot know the evaluation's --limit: that failure is the report's alone
    assert failures[1:] == card_bar_failures(card.test_metrics) and failures[0].startswith("evaluated on a subset")


def test_onnx_runtime_gives_torchs_probabilities_and_grad_cam(resources, films):
    torch_model = load_classifier(NAME, backend="torch", device="cpu")
    onnx_model = load_classifier(NAME, backend="onnx", device="cpu")
    assert torch_model.card.name == onnx_model.card.name == NAME
    for image in films:
        want = torch_model.predict_with_heatmap(image)
        got = onnx_model.predict_with_heatmap(image)
        probabilities = np.asarray(want.prediction.probabilities)
        assert probabilities.max() - probabilities.min() > 0.05  # random weights, yet not all 1/3
        np.testing.assert_allclose(got.prediction.probabilities, probabilities, atol=PROBABILITY_ATOL, rtol=0)
        assert got.prediction.label == want.prediction.label and got.target_class == want.target_class
        assert got.heatmap.shape == want.heatmap.shape == image.shape
        assert float(want.heatmap.std()) > 0.05  # a map with structure, not 0 against 0
        assert float(np.abs(got.heatmap - want.heatmap).max()) <= HEATMAP_ATOL


def test_cxr_classify_and_the_environment_name_it(resources, dicom_dir, tmp_path, monkeypatch):
    from cxr_engine.cli import main

    film = dicom_dir / "CR-MONO1-10-chest.dcm"
    out = tmp_path / "by_option.csv"
    assert main([str(film), "--model", NAME, "--backend", "onnx", "--device", "cpu", "--csv", str(out)]) == 0
    monkeypatch.setenv("CXR_MODEL_CARD", NAME)
    by_env = tmp_path / "by_env.csv"
    assert main([str(film), "--backend", "onnx", "--device", "cpu", "--csv", str(by_env)]) == 0
    for path in (out, by_env):
        with open(path, newline="", encoding="utf-8") as handle:
            rows = list(csv.DictReader(handle))
        assert len(rows) == 1 and NAME in json.dumps(rows[0])


def test_settings_offers_it(resources, qtbot):
    from PySide6.QtCore import Qt

    from cxr_desktop.settings_dialog import SettingsDialog

    dialog = SettingsDialog(list_bundled(), NAME, "cpu")
    qtbot.addWidget(dialog)
    index = dialog.model_box.findData(NAME)
    assert index > 0 and dialog.model_box.itemText(index).count("below the project's bar") == 1
    tooltip = dialog.model_box.itemData(index, Qt.ItemDataRole.ToolTipRole)
    assert tooltip.startswith(f"{NAME} is below the project's bar; it fails: evaluated on a subset")
    assert dialog.model() == NAME


def test_a_draft_card_naming_other_weights_is_not_trusted_for_the_input_size(cxr3_dir, tmp_path):
    from training.evaluate import card_from_run

    run = make_schedule_run(tmp_path / "run", tiny_rows(cxr3_dir))
    assert card_from_run(run).input_size == BEST_SIZE
    draft = json.loads((run / "best.json").read_text(encoding="utf-8"))
    (run / "best.json").write_text(json.dumps({**draft, "weights_sha256": "0" * 64}), encoding="utf-8")
    assert card_from_run(run).input_size == FINAL_SIZE
