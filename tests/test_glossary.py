"""docs/glossary.md names the standard term for each of the project's words, and every module and
function it points to exists (so the glossary cannot drift from the code unnoticed)."""
from __future__ import annotations

import dataclasses
import importlib
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
GLOSSARY = ROOT / "docs" / "glossary.md"


def test_the_newcomers_terms_are_there():
    text = GLOSSARY.read_text(encoding="utf-8").lower()
    for term in ("stored value", "modality lut", "voi lut", "presentation lut", "presentation values", "p-values",
                 "rendered image", "model input", "unnormalised model input", "input normalisation", "logits", "temperature", "grad-cam", "heat-map", "out of scope", "card",
                 "preprocessing version"):
        assert term in text, term
    assert "glossary.md" in (ROOT / "README.md").read_text(encoding="utf-8")
    assert "glossary.md" in (ROOT / "docs" / "layout.md").read_text(encoding="utf-8")


def test_every_file_and_function_it_names_exists():
    text = GLOSSARY.read_text(encoding="utf-8")
    files = set(re.findall(r"`((?:[\w/]+/)?[\w-]+\.(?:py|json))`", text))
    assert files
    for name in files:
        candidates = [ROOT / name, ROOT / "cxr_engine" / name, ROOT / "cxr_engine" / name.split(".py")[0]]
        assert any(c.exists() for c in candidates), name
    classes = {"CxrImage": "cxr_engine.pixels.image", "HeatmapResult": "cxr_engine.models.classifier"}
    for module, attribute in re.findall(r"`((?:\w+/)*\w+)\.(\w+)(?:\(\))?`", text):
        if attribute in ("md", "py", "json"):
            continue
        if module in classes:
            cls = getattr(importlib.import_module(classes[module]), module)
            names = {f.name for f in dataclasses.fields(cls)} | set(dir(cls))
            assert attribute in names, f"{module}.{attribute}"
            continue
        dotted = module.replace("/", ".")
        for prefix in ("", "cxr_engine.", "cxr_engine.pixels.", "cxr_engine.models."):
            try:
                found = importlib.import_module(prefix + dotted)
            except ImportError:
                continue
            assert hasattr(found, attribute), f"{prefix}{dotted}.{attribute}"
            break
        else:
            raise AssertionError(f"{module}.{attribute}: no such module")
