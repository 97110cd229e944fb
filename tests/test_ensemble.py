"""An averaged model (ensemble card): card checks, the averaging formula, heat-maps, both backends, the faces.

Members are random-weight EfficientNet-B0s (tests/model_factory.py) at 64 and 96 px whose logits are
spread so that the probabilities differ; they say nothing about accuracy.
"""
from __future__ import annotations

import csv
import dataclasses
import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("onnxruntime")
pytest.importorskip("onnx")

from cxr_engine.errors import ModelError  # noqa: E402
from cxr_engine.models.backends import create_classifier  # noqa: E402
from cxr_engine.models.ensemble import EnsembleClassifier, mean_heatmap, merged_reasons, scaled_heatmap  # noqa: E402
from cxr_engine.models.ensemble_card import EnsembleCard  # noqa: E402
from cxr_engine.models.loading import choose_card, load_classifier  # noqa: E402
from cxr_engine.models.model_card import ModelCard, default_card, find_card, list_bundled, load_card  # noqa: E402
from cxr_engine.models.weights import load_model, save_weights  # noqa: E402
from cxr_engine.reading.read import read_image  # noqa: E402
from training.export_onnx import export_onnx  # noqa: E402

from model_factory import make_random_model  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
NAME = "avg-test"
WEIGHTS = (2.0, 1.0)
OFFSETS = [0.1, -0.2, 0.3]
TEMPERATURE = 1.5
PROBABILITY_ATOL = 1e-4
HEATMAP_ATOL = 1e-3


def _spread(card: ModelCard) -> ModelCard:
    """Random-weight logits span ~1e-4; scale the head so they span ~2 (as test_onnx_backend does)."""
    model = load_model(card)
    head = model.get_classifier()
    with torch.no_grad():
        logits = model(torch.randn(4, 3, card.input_size, card.input_size, generator=torch.Generator().manual_seed(0)))
        head.weight.mul_(2.0 / float(logits.max() - logits.min()))
    card.weights_sha256 = save_weights(model, card.weights_path)
    card.temperature = 0.8  # the member's own: the ensemble must not use it
    card.save(card.path)
    return card


def ensemble_json(members, name: str = NAME, **extra) -> dict:
    return {"name": name, "architecture": "ensemble", "classes": list(members[0].classes),
            "members": [{"card": m.name, "weight": w, "weights_sha256": m.weights_sha256}
                        for m, w in zip(members, WEIGHTS)],
            "logit_offsets": OFFSETS, "temperature": TEMPERATURE, "meets_bar": False,
            "notes": "random members for tests; not a model", **extra}


def write_card(folder: Path, data: dict) -> Path:
    path = folder / f"{data['name']}.json"
    path.write_text(json.dumps(data), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def resources(tmp_path_factory) -> Path:
    """A resources folder: two exported members and the ensemble, beside the bundled non-classifier models."""
    root = tmp_path_factory.mktemp("ensemble") / "resources"
    models = root / "models"
    members = []
    for name, size, seed in (("member-a", 64, 1), ("member-b", 96, 2)):
        card = _spread(make_random_model(models, name=name, input_size=size, seed=seed))
        export_onnx(card)
        members.append(ModelCard.load(card.path))
    for path in (REPO / "resources" / "models").iterdir():
        if path.stem in ("image-checks", "lung-unet"):
            shutil.copy(path, models / path.name)
    write_card(models, ensemble_json(members))
    return root


@pytest.fixture(scope="module")
def models(resources) -> Path:
    return resources / "models"


@pytest.fixture(scope="module")
def ensemble(models) -> EnsembleCard:
    return load_card(models / f"{NAME}.json")


@pytest.fixture(scope="module")
def films(dicom_dir):
    return [read_image(dicom_dir / "CR-MONO1-10-chest.dcm"), read_image(dicom_dir / "966_fixed.dcm")]


class TestCard:
    def test_loads_with_its_members(self, ensemble, models):
        assert isinstance(ensemble, EnsembleCard)
        assert [c.name for c in ensemble.member_cards] == ["member-a", "member-b"]
        assert ensemble.input_size == 96 and ensemble.preprocessing_version == "cxr-pre-1"
        assert "average of member-a + member-b" in ensemble.summary()
        assert "below the project's bar" in ensemble.summary()
        saved = json.loads(ensemble.to_json())
        assert saved["members"][0]["card"] == "member-a" and "weights_file" not in saved

    def test_listed_and_found_like_any_card(self, ensemble, models):
        assert NAME in [c.name for c in list_bundled(models)]
        assert find_card(NAME, models).members == ensemble.members

    @pytest.mark.parametrize("change, message", [
        (lambda d: d["members"][1].update(card="absent"), "member 'absent' is not a model card"),
        (lambda d: d["members"][0].update(weights_sha256="0" * 64), "pinned to weights sha256 0000"),
        (lambda d: d.update(classes=["normal", "covid", "pneumonia"]), "members must share the classes"),
        (lambda d: d.update(logit_offsets=[0.0, 0.0]), "one finite number per class"),
        (lambda d: d["members"][1].update(weight=0), "weights must be positive"),
        (lambda d: d.update(members=d["members"][:1]), "at least two members"),
        (lambda d: d.update(temperature=0), "temperature must be positive"),
    ])
    def test_inconsistent_cards_are_refused_by_name(self, models, tmp_path, change, message):
        folder = tmp_path / "models"
        shutil.copytree(models, folder)
        data = json.loads((folder / f"{NAME}.json").read_text(encoding="utf-8"))
        change(data)
        path = write_card(folder, data)
        with pytest.raises(ModelError, match=message) as caught:
            load_card(path)
        assert str(path) in str(caught.value)
        with pytest.raises(ModelError, match=message):  # by name too: the reason, not "no such model"
            find_card(NAME, folder)

    def test_sha_mismatch_names_both_cards(self, models, tmp_path):
        folder = tmp_path / "models"
        shutil.copytree(models, folder)
        data = json.loads((folder / f"{NAME}.json").read_text(encoding="utf-8"))
        data["members"][1]["weights_sha256"] = "f" * 64
        path = write_card(folder, data)
        with pytest.raises(ModelError) as caught:
            load_card(path)
        assert str(path) in str(caught.value) and str(folder / "member-b.json") in str(caught.value)

    def test_an_ensemble_may_not_contain_an_ensemble(self, models, ensemble, tmp_path):
        folder = tmp_path / "models"
        shutil.copytree(models, folder)
        data = ensemble_json(ensemble.member_cards, name="nested")
        data["members"][1] = {"card": NAME, "weight": 1.0, "weights_sha256": ensemble.weights_sha256}
        with pytest.raises(ModelError, match="itself an ensemble"):
            load_card(write_card(folder, data))

    def test_a_plain_card_loader_refuses_it_clearly(self, models):
        with pytest.raises(ModelError, match="an ensemble card"):
            ModelCard.load(models / f"{NAME}.json")

    def test_the_default_is_the_ensemble_when_only_it_meets_the_bar(self, models, tmp_path, monkeypatch):
        monkeypatch.delenv("CXR_MODEL_CARD", raising=False)
        folder = tmp_path / "models"
        shutil.copytree(models, folder)
        with pytest.raises(ModelError, match="no bundled model meets the project's bar"):
            choose_card(None, folder)
        data = json.loads((folder / f"{NAME}.json").read_text(encoding="utf-8"))
        write_card(folder, {**data, "meets_bar": True, "validation_metrics": {"macro_f1": 0.93}})
        assert default_card(folder).name == NAME
        chosen = choose_card(None, folder)
        assert isinstance(chosen, EnsembleCard) and chosen.name == NAME


def _log_softmax(x):
    x = np.asarray(x, dtype=np.float64)
    return x - x.max(axis=-1, keepdims=True) - np.log(np.exp(x - x.max(axis=-1, keepdims=True)).sum(axis=-1, keepdims=True))


class TestAveraging:
    @pytest.mark.parametrize("backend", ["torch", "onnx"])
    def test_probabilities_are_the_weighted_log_probability_mean_with_offsets_and_temperature(
            self, ensemble, films, backend):
        classifier = create_classifier(ensemble, backend=backend, device="cpu")
        assert isinstance(classifier, EnsembleClassifier)
        members = [create_classifier(card, backend=backend, device="cpu") for card in ensemble.member_cards]
        member_logits = [m.logits_and_features(films)[0] for m in members]
        z = (WEIGHTS[0] * _log_softmax(member_logits[0]) + WEIGHTS[1] * _log_softmax(member_logits[1])) / sum(WEIGHTS)
        z = z + np.asarray(OFFSETS)
        expected = np.exp(_log_softmax(z / TEMPERATURE))
        got = classifier.predict(films)
        assert [p.model_name for p in got] == [NAME, NAME]
        np.testing.assert_allclose([p.probabilities for p in got], expected, atol=1e-9, rtol=0)
        # the offsets and the temperature matter: without them the probabilities are others
        plain = np.exp(_log_softmax(z - np.asarray(OFFSETS)))
        assert np.abs(expected - plain).max() > 0.01
        np.testing.assert_allclose(classifier.logits_and_features(films)[0], z, atol=1e-9, rtol=0)
        assert max(got[0].probabilities) - min(got[0].probabilities) > 0.02  # not all 1/3

    def test_heatmap_is_the_scaled_weighted_mean_of_the_members_maps(self, ensemble, films):
        classifier = create_classifier(ensemble, backend="torch", device="cpu")
        members = [create_classifier(card, backend="torch", device="cpu") for card in ensemble.member_cards]
        film = films[1]
        top = classifier.predict([film])[0]
        for target in (None, *ensemble.classes):
            result = classifier.predict_with_heatmap(film, target)
            assert result.target_class == (target or top.label)
            assert result.heatmap.shape == film.shape and result.heatmap.dtype == np.float32
            assert result.heatmap.min() >= 0.0 and result.heatmap.max() <= 1.0
            assert result.heatmap.max() > 0.99  # min-max scaled like a single model's
            maps = [m.predict_with_heatmap(film, result.target_class).heatmap for m in members]
            mean = mean_heatmap(maps, WEIGHTS)
            np.testing.assert_allclose(mean, (WEIGHTS[0] * maps[0] + WEIGHTS[1] * maps[1]) / 3, atol=1e-6)
            np.testing.assert_allclose(result.heatmap, scaled_heatmap(mean), atol=1e-6)
            np.testing.assert_allclose(result.prediction.probabilities, top.probabilities, atol=1e-6)

    def test_torch_and_onnx_agree(self, ensemble, films):
        on_torch = create_classifier(ensemble, backend="torch", device="cpu")
        on_onnx = create_classifier(ensemble, backend="onnx", device="cpu")
        for want, got in zip(on_torch.predict(films), on_onnx.predict(films), strict=True):
            np.testing.assert_allclose(got.probabilities, want.probabilities, atol=PROBABILITY_ATOL, rtol=0)
        for target in (None, ensemble.classes[2]):
            want = on_torch.predict_with_heatmap(films[1], target)
            got = on_onnx.predict_with_heatmap(films[1], target)
            assert got.target_class == want.target_class
            assert float(np.abs(got.heatmap - want.heatmap).max()) <= HEATMAP_ATOL

    def test_loaded_like_any_model(self, models, ensemble):
        classifier = load_classifier(NAME, backend="auto", device="cpu", models_dir=models)
        assert isinstance(classifier, EnsembleClassifier) and classifier.name == NAME
        assert [type(m).__name__ for m in classifier.members] == ["OnnxClassifier", "OnnxClassifier"]
        assert classifier.device == "cpu" and "2 models averaged" in classifier.device_description()
        classifier.close()

    def test_scope_reasons_are_merged_once_in_order(self):
        assert merged_reasons(["other-findings", "", "child-chest;other-findings"]) == "other-findings;child-chest"
        assert merged_reasons(["", ""]) == ""


def test_cli_classifies_a_real_dicom_with_the_ensemble_by_name(resources, dicom_dir, tmp_path, monkeypatch):
    from cxr_engine.cli import main

    monkeypatch.setenv("CXR_RESOURCES", str(resources))
    monkeypatch.delenv("CXR_MODEL_CARD", raising=False)
    film = dicom_dir / "CR-MONO1-10-chest.dcm"
    out = tmp_path / "results.csv"
    assert main([str(film), "--model", NAME, "--backend", "onnx", "--device", "cpu", "--csv", str(out),
                 "--no-isolation", "-q"]) == 0
    with open(out, newline="", encoding="utf-8") as handle:
        (row,) = list(csv.DictReader(handle))
    assert row["status"] == "ok" and row["model"] == NAME
    probabilities = [float(row[f"p_{c}"]) for c in ("normal", "pneumonia", "covid")]
    assert abs(sum(probabilities) - 1.0) < 1e-3


def test_settings_dialog_lists_the_ensemble(resources, qtbot, monkeypatch):
    pytest.importorskip("PySide6")
    from cxr_desktop.settings_dialog import SettingsDialog

    dialog = SettingsDialog(list_bundled(resources / "models"), NAME, "cpu")
    qtbot.addWidget(dialog)
    index = dialog.model_box.findData(NAME)
    assert index > 0 and "average of member-a + member-b" in dialog.model_box.itemText(index)
    assert dialog.model() == NAME


def test_model_limits_and_reliability_table_work_from_the_ensemble_card(ensemble, models, cxr3_dir, tmp_path):
    """The app's model-limits text reads only the card (its missing figures degrade to plain sentences);
    training.reliability writes the table the calibration line needs, pinned to the ensemble's fingerprint."""
    from cxr_engine.models.model_limits import calibration_line, model_limits
    from training import reliability
    from test_evaluate import tiny_rows, write_manifest

    limits = model_limits(ensemble).lines()
    assert limits and limits[0].startswith("Known limit: Only 3 classes")
    assert "holds no validation reliability figures" in calibration_line(ensemble, "normal", 0.5)
    folder = tmp_path / "models"
    shutil.copytree(models, folder)
    manifest = write_manifest(tiny_rows(cxr3_dir), tmp_path / "split_manifest.csv")
    card_path = folder / f"{NAME}.json"
    assert reliability.main(["--card", str(card_path), "--manifest", str(manifest), "--write"]) == 0
    written = load_card(card_path)
    table = written.validation_metrics["reliability"]
    assert table["weights_sha256"] == written.weights_sha256 == ensemble.weights_sha256
    assert "validation films given a Normal probability" in calibration_line(written, "normal", 0.5)


def test_the_lite_bundle_runs_the_ensemble_on_onnx_runtime_without_torch(resources, dicom_dir, tmp_path, monkeypatch):
    """As the lite bundle (no torch): ``--backend auto`` picks ONNX Runtime for every member, the CSV row
    and heat-map are written, and torch is never imported."""
    from test_without_torch import CLI, run_python

    monkeypatch.setenv("CXR_RESOURCES", str(resources))
    monkeypatch.delenv("CXR_MODEL_CARD", raising=False)
    out, heatmaps = tmp_path / "results.csv", tmp_path / "heatmaps"
    result = run_python(CLI, dicom_dir / "CR-MONO1-10-chest.dcm", "--model", NAME, "--device", "cpu",
                        "--csv", out, "--heatmap-dir", heatmaps, "-q")
    assert result == {"code": 0, "torch_imported": False}
    with open(out, newline="", encoding="utf-8") as handle:
        (row,) = list(csv.DictReader(handle))
    assert row["status"] == "ok" and row["model"] == NAME and Path(row["cam_path"]).is_file()


def test_networks_are_an_averaged_models_members_or_the_card_itself(ensemble):
    from cxr_engine.models.ensemble_card import networks

    assert [c.name for c in networks(ensemble)] == [m["card"] for m in ensemble.members]
    single = ensemble.member_cards[0]
    assert networks(single) == [single]
