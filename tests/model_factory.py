"""Test helper: a bundled-style model (card + safetensors) with random weights, written to a folder.

Random weights make no claim about accuracy; they exercise loading, verification and plumbing.
They are built with torch and timm: where torch is not installed, the test asking for one skips.
"""
from __future__ import annotations

from pathlib import Path

import pytest

from cxr_engine.models.model_card import CLASSES, ModelCard
from cxr_engine.pixels.preprocessing import PREPROCESSING_VERSION
from cxr_engine.models.registry import build_model, get_architecture
from cxr_engine.models.weights import save_weights

#: The bundled classifier with its ONNX export: for tests of plumbing that need a real card but not
#: torch (``--backend onnx`` never imports it).
BUNDLED_CARD = Path(__file__).resolve().parents[1] / "resources" / "models" / "efficientnet-lite0.json"


def default_card_path() -> Path:
    """The card ``cxr-classify`` and the app use without ``--model``: the best bundled model that meets the
    project's bar (naming a model below it adds a warning to standard error, which tests of quiet output
    must not see). Skips the test when none meets the bar."""
    from cxr_engine.models.model_card import default_card

    card = default_card()
    if card is None:
        pytest.skip("no bundled model meets the project's bar", allow_module_level=True)
    return card.path


def make_random_model(folder: Path, name: str = "random-test", architecture: str = "efficientnet_b0",
                      input_size: int = 64, seed: int = 0, classes: tuple[str, ...] = tuple(CLASSES)) -> ModelCard:
    torch = pytest.importorskip("torch")

    torch.manual_seed(seed)
    arch = get_architecture(architecture)
    model = build_model(architecture, num_classes=len(classes))
    folder.mkdir(parents=True, exist_ok=True)
    sha = save_weights(model, folder / f"{name}.safetensors")
    card = ModelCard(
        name=name,
        architecture=architecture,
        classes=list(classes),
        input_size=input_size,
        in_chans=3,
        mean=list(arch.mean),
        std=list(arch.std),
        preprocessing_version=PREPROCESSING_VERSION,
        weights_file=f"{name}.safetensors",
        weights_sha256=sha,
        meets_bar=False,
        notes="random weights for tests; not a model",
    )
    card.save(folder / f"{name}.json")
    return card


def classify_one_to_csv(path: Path, out: Path, card: Path = BUNDLED_CARD) -> dict:
    """``cxr-classify PATH --csv OUT`` with the bundled ``card`` on ONNX Runtime, in process (no decoding
    worker), quiet; returns the CSV's one row (asserts the run succeeded and wrote exactly one row)."""
    import csv

    from cxr_engine.cli import main

    assert main([str(path), "--csv", str(out), "--model", str(card), "--backend", "onnx",
                 "--no-isolation", "-q"]) == 0
    with open(out, newline="") as handle:
        (row,) = list(csv.DictReader(handle))
    return row
