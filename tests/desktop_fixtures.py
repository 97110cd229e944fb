"""Fixtures shared by the desktop tests that run the bundled classifier (ONNX Runtime) on real films.

A test module imports the fixtures it uses (``from desktop_fixtures import card, study``): pytest finds
fixtures in the module's namespace. ``card`` is the one ``test_desktop.make_window`` loads the window's
model from, in place of ``test_desktop``'s own random-weights card.
"""
from __future__ import annotations

import shutil
from pathlib import Path

import pydicom
import pytest

from cxr_engine.models.model_card import ModelCard

from model_factory import BUNDLED_CARD

#: Found inverted by the bundled image checks (a film stored as its negative).
INVERTED_FILM = "Fake_MONOHR1.dcm"
#: A frontal film that the checks pass.
FRONTAL = "CR-MONO1-10-chest.dcm"


@pytest.fixture(scope="module")
def card() -> ModelCard:
    """The bundled classifier's card (``model_factory.BUNDLED_CARD``)."""
    return ModelCard.load(BUNDLED_CARD)


@pytest.fixture()
def study(tmp_path, dicom_dir) -> Path:
    """``tmp_path/study`` holding copies of :data:`INVERTED_FILM` and :data:`FRONTAL`."""
    folder = tmp_path / "study"
    folder.mkdir()
    for name in (INVERTED_FILM, FRONTAL):
        shutil.copy(dicom_dir / name, folder / name)
    return folder


@pytest.fixture()
def study_with_child(study, dicom_dir) -> Path:
    """``study`` and ``child.dcm``: :data:`FRONTAL` as another instance with a Patient's Age of 010Y."""
    child = pydicom.dcmread(dicom_dir / FRONTAL, force=True)
    child.PatientAge, child.SOPInstanceUID = "010Y", pydicom.uid.generate_uid()
    child.save_as(study / "child.dcm")
    return study
