"""Registry, model cards and weight integrity."""
from __future__ import annotations

import json

import pytest

from cxr_engine.errors import ModelError, ModelIntegrityError
from cxr_engine.models.model_card import ModelCard, default_card, find_card, list_bundled
from cxr_engine.models.registry import build_model, get_architecture, list_architectures, resolve_layer
from cxr_engine.models.weights import load_model

from model_factory import make_random_model


@pytest.mark.parametrize("name", ["densenet121", "efficientnet_b1"])
def test_promised_architectures_build_with_their_grad_cam_layer(name):
    pytest.importorskip("timm")
    model = build_model(name, num_classes=3)
    layer = resolve_layer(model, get_architecture(name).grad_cam_layer)
    assert layer is not None
    assert model.get_classifier().out_features == 3


def test_registry_lists_and_refuses_unknown_names():
    assert {"densenet121", "efficientnet_b1", "tf_efficientnet_lite0"} <= set(list_architectures())
    with pytest.raises(KeyError, match="unknown architecture"):
        get_architecture("resnet9000")


def test_card_round_trip_and_weights_load(tmp_path):
    card = make_random_model(tmp_path)
    loaded = ModelCard.load(tmp_path / "random-test.json")
    assert loaded.weights_sha256 == card.weights_sha256 and loaded.classes == ["normal", "pneumonia", "covid"]
    model = load_model(loaded)
    assert not model.training


def test_tampered_weights_are_refused(tmp_path):
    card = make_random_model(tmp_path)
    data = bytearray(card.weights_path.read_bytes())
    data[-100] ^= 0xFF
    card.weights_path.write_bytes(bytes(data))
    with pytest.raises(ModelIntegrityError, match="does not match the model card"):
        load_model(ModelCard.load(tmp_path / "random-test.json"))


def test_missing_weights_and_bad_cards_give_clear_errors(tmp_path):
    card = make_random_model(tmp_path)
    card.weights_path.unlink()
    with pytest.raises(ModelError, match="missing"):
        load_model(card)
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"name": "x"}))
    with pytest.raises(ModelError, match="lacks"):
        ModelCard.load(bad)


def test_default_model_is_never_one_below_the_bar(tmp_path):
    make_random_model(tmp_path, name="weak")
    assert [c.name for c in list_bundled(tmp_path)] == ["weak"]
    assert default_card(tmp_path) is None
    assert find_card("weak", tmp_path).name == "weak"
    with pytest.raises(ModelError, match="no bundled model named"):
        find_card("nope", tmp_path)


def test_another_tasks_card_is_named_with_its_article(capsys, dicom_dir):
    """``cxr-classify FILE --model image-checks`` said "a image-checks model card" (a tester's finding)."""
    from cxr_engine.cli import main

    with pytest.raises(ModelError, match="an image-checks model card, not a classifier's"):
        find_card("image-checks")
    with pytest.raises(ModelError, match="an image-laterality model card, not a classifier's"):
        find_card("image-laterality")
    with pytest.raises(ModelError, match=": a segmentation model card, not a classifier's"):
        find_card("lung-unet")
    assert main([str(dicom_dir / "RG1_J2KI.dcm"), "--model", "image-checks", "--no-isolation"]) == 2
    assert "an image-checks model card, not a classifier's" in capsys.readouterr().err
