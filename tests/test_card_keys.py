"""training.card_keys: the one way the training commands add an entry to a card's JSON file."""
from __future__ import annotations

import json

import pytest

from training import card_keys

CARD = {"name": "m", "classes": ["normal", "pneumonia"], "out_of_scope": {"threshold": 0.5},
        "test_metrics": {"accuracy": 0.9}, "notes": "kept"}


def _card(tmp_path):
    path = tmp_path / "m.json"
    path.write_text(json.dumps(CARD, indent=2) + "\n", encoding="utf-8")
    return path


def test_set_card_keys_sets_the_keys_keeps_the_rest_in_order_and_writes_atomically(tmp_path, monkeypatch):
    path = _card(tmp_path)
    atomic = []
    real = card_keys.write_text_atomic
    monkeypatch.setattr(card_keys, "write_text_atomic", lambda p, text: (atomic.append(p), real(p, text)))
    written = card_keys.set_card_keys(path, {"out_of_scope": {"threshold": 0.7}, "scope_heads": {"file": "h.json"}})
    assert atomic == [path]
    text = path.read_text(encoding="utf-8")
    expected = {**CARD, "out_of_scope": {"threshold": 0.7}, "scope_heads": {"file": "h.json"}}
    assert text == json.dumps(expected, indent=2) + "\n" and text.endswith("}\n")
    assert list(json.loads(text)) == list(CARD) + ["scope_heads"]  # a key already there keeps its place
    assert written == expected


def test_an_edit_that_raises_writes_nothing(tmp_path):
    path = _card(tmp_path)
    before = path.read_bytes()

    def refuse(data):
        data["notes"] = "changed"
        raise ValueError("not this card")

    with pytest.raises(ValueError, match="not this card"):
        card_keys.update_card(path, refuse)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["m.json"]  # no temporary file left beside it
