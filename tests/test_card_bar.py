"""The checks of the project's bar a model fails: recorded in its card, and said wherever the model is named."""
from __future__ import annotations

import copy
import json
import shutil
from pathlib import Path

import pytest

from cxr_engine.models.model_card import bar_failures, below_bar_text, best_card, list_bundled, load_card

REPO = Path(__file__).resolve().parents[1]
MODELS = REPO / "resources" / "models"


@pytest.fixture(scope="module")
def bundled():
    cards = list_bundled(MODELS)
    if not cards:
        pytest.skip("no bundled classifier cards in resources/models")
    return cards


def test_every_bundled_cards_list_is_what_its_own_figures_give(bundled):
    from training.export import card_bar_failures

    for card in bundled:
        assert "bar_failures" in card.test_metrics, card.name
        assert bar_failures(card) == card_bar_failures(card.test_metrics), card.name
        assert card.meets_bar == (not bar_failures(card)), card.name


def test_the_text_names_each_failed_check_or_nothing(bundled):
    for card in bundled:
        text = below_bar_text(card, card.name)
        if card.meets_bar:
            assert text == ""
        else:
            assert text.startswith(f"{card.name} is below the project's bar; it fails: ") and text.endswith(".")
            assert all(f in text for f in bar_failures(card))


def test_a_card_without_the_list_points_to_itself(bundled):
    card = next((c for c in bundled if not c.meets_bar), None)
    if card is None:
        pytest.skip("every bundled model meets the bar")
    card = copy.copy(card)  # the fixture's cards are shared
    card.test_metrics = {k: v for k, v in card.test_metrics.items() if k != "bar_failures"}
    assert bar_failures(card) == []
    assert below_bar_text(card) == "this model is below the project's bar (its model card says which checks it fails)."


def test_best_card_is_the_best_validation_macro_f1_among_those_that_meet_the_bar(bundled):
    best = best_card(bundled)
    eligible = [c for c in bundled if c.meets_bar]
    assert (best is None) == (not eligible)
    if best is not None:
        assert all(best.validation_metrics["macro_f1"] >= c.validation_metrics["macro_f1"] for c in eligible)
    assert best_card([c for c in bundled if not c.meets_bar]) is None


def test_the_command_adds_the_list_and_changes_nothing_else(bundled, tmp_path):
    from training import card_bar

    card = next((c for c in bundled if not c.meets_bar), bundled[0])
    models = tmp_path / "models"
    shutil.copytree(MODELS, models, ignore=shutil.ignore_patterns("*.onnx", "*.safetensors"))  # the cards are enough
    path = models / f"{card.name}.json"
    before = json.loads(path.read_text(encoding="utf-8"))
    before["test_metrics"].pop("bar_failures", None)
    path.write_text(json.dumps(before, indent=2) + "\n", encoding="utf-8")
    assert card_bar.main([str(path)]) == 0
    after = json.loads(path.read_text(encoding="utf-8"))
    assert after["test_metrics"].pop("bar_failures") == bar_failures(card)
    assert after == before  # out_of_scope, scope_heads and every other field kept


def test_a_verdict_its_figures_contradict_is_refused_and_nothing_is_written(bundled, tmp_path):
    from training import card_bar

    models = tmp_path / "models"
    shutil.copytree(MODELS, models, ignore=shutil.ignore_patterns("*.onnx", "*.safetensors"))  # the cards are enough
    path = models / f"{bundled[0].name}.json"
    data = json.loads(path.read_text(encoding="utf-8"))
    data["meets_bar"] = not data["meets_bar"]
    text = json.dumps(data, indent=2) + "\n"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ValueError, match="meets_bar is"):
        card_bar.main([str(path)])
    assert path.read_text(encoding="utf-8") == text
    assert load_card(path).meets_bar == data["meets_bar"]
