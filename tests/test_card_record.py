"""cxr_engine.models.model_card.CardRecord: the record fields the classifier's and the lung model's cards
share, declared once, written after each card's own fields as the bundled cards have them."""
from __future__ import annotations

import json
from dataclasses import fields
from pathlib import Path

import pytest

from cxr_engine.models.lung_fields import LungModelCard
from cxr_engine.errors import ModelError
from cxr_engine.models.model_card import CardRecord, ModelCard, NetworkCard

RECORD = ["training_data", "test_metrics", "validation_metrics", "licence", "intended_use", "notes",
          "created_by_command"]


def test_the_bundled_lung_card_is_written_back_byte_for_byte():
    card = LungModelCard.named(None, "lung-unet", "lung model")
    assert card.to_json() == Path(card.path).read_text(encoding="utf-8")


@pytest.mark.parametrize("name", ["efficientnet-lite0", "efficientnet-b1"])
def test_a_classifier_card_keeps_the_bundled_files_key_order(name):
    card = ModelCard.named(name, name, "model")
    written = list(json.loads(card.to_json()))
    on_disk = [k for k in json.loads(Path(card.path).read_text(encoding="utf-8")) if k in written]
    assert written == on_disk
    assert written[-len(RECORD):] == RECORD


def test_the_record_is_keyword_only_and_declared_once():
    assert [f.name for f in fields(CardRecord)] == [*RECORD, "path"]
    assert all(f.kw_only for f in fields(CardRecord))
    for card in (ModelCard, LungModelCard):
        assert issubclass(card, CardRecord)
        assert not any(name in vars(card).get("__annotations__", {}) for name in RECORD)


NETWORK = ["name", "architecture", "input_size", "in_chans", "mean", "std", "preprocessing_version",
           "weights_file", "weights_sha256"]


def test_the_network_and_its_input_are_declared_once_and_checked_alike():
    for card in (ModelCard, LungModelCard):
        assert issubclass(card, NetworkCard)
        assert not any(name in vars(card).get("__annotations__", {}) for name in NETWORK)
        assert all(name in card.REQUIRED for name in NETWORK if name != "architecture")
    lung = LungModelCard.named(None, "lung-unet", "lung model")
    lung.std = lung.std[:1] if len(lung.std) > 1 else lung.std * 2
    with pytest.raises(ModelError, match="mean/std must have"):
        lung.check_input(lung.path)
