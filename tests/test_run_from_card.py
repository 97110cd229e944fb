"""training.run_from_card: a bundled card as a run folder the validation tools read as the shipped model."""
import json

import numpy as np
import pytest

pytest.importorskip("torch")

from cxr_engine.models.model_card import ModelError  # noqa: E402
from training.evaluate import card_from_run  # noqa: E402
from training.run_from_card import write_run  # noqa: E402

from model_factory import make_random_model  # noqa: E402


def _card(tmp_path):
    make_random_model(tmp_path / "models", "shipped", "tf_efficientnet_lite0", input_size=64)
    return tmp_path / "models" / "shipped.json"


def test_the_run_folder_is_the_cards_model(tmp_path):
    card_path = _card(tmp_path)
    manifest = tmp_path / "split_manifest.csv"
    manifest.write_text("id,path,split,label\n")
    run = write_run(card_path, manifest, tmp_path / "runs" / "shipped")
    card = card_from_run(run)
    shipped = json.loads(card_path.read_text())
    assert card.weights_sha256 == shipped["weights_sha256"] and card.input_size == 64
    assert card.architecture == "tf_efficientnet_lite0"
    assert json.loads((run / "run.json").read_text())["args"]["manifest"] == str(manifest)
    with pytest.raises(FileExistsError):
        write_run(card_path, manifest, run)


def test_weights_that_are_not_the_cards_are_refused(tmp_path):
    card_path = _card(tmp_path)
    weights = card_path.parent / json.loads(card_path.read_text())["weights_file"]
    weights.write_bytes(weights.read_bytes()[:-8] + np.zeros(8, np.uint8).tobytes())
    (tmp_path / "m.csv").write_text("id,path,split,label\n")
    with pytest.raises(ValueError, match="sha256"):
        write_run(card_path, tmp_path / "m.csv", tmp_path / "run")


def test_a_missing_manifest_or_another_normalisation_is_refused(tmp_path):
    card_path = _card(tmp_path)
    with pytest.raises(FileNotFoundError, match="manifest"):
        write_run(card_path, tmp_path / "missing.csv", tmp_path / "run")
    (tmp_path / "m.csv").write_text("id,path,split,label\n")
    data = json.loads(card_path.read_text())
    card_path.write_text(json.dumps({**data, "mean": [0.1, 0.2, 0.3]}))
    with pytest.raises(ValueError, match="mean or std"):
        write_run(card_path, tmp_path / "m.csv", tmp_path / "run")


def test_an_averaged_models_card_is_refused(tmp_path):
    card = tmp_path / "average.json"
    card.write_text(json.dumps({"name": "average", "architecture": "ensemble", "members": []}))
    with pytest.raises(ModelError, match="ensemble"):
        write_run(card, tmp_path / "m.csv", tmp_path / "run")
