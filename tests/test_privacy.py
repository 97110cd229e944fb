"""Offline and private: no network during classification and export; no patient names in logs."""
from __future__ import annotations

import logging
import socket

import numpy as np
import pytest

from cxr_engine.cli import main
from cxr_engine.reading.read import read_image

from model_factory import make_random_model


@pytest.fixture()
def no_network(monkeypatch):
    """Any attempt to open a socket fails the test."""
    def refuse(*args, **kwargs):
        raise AssertionError("network access attempted")

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(socket, "socket", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)


def test_classification_and_pdf_export_work_without_a_network(no_network, tmp_path, dicom_dir, caplog):
    from cxr_engine.models.torch_backend import Classifier
    from cxr_engine.models.model_card import ModelCard
    from cxr_engine.pixels.rendering import render
    from cxr_engine.outputs.report import ReportPage, write_report

    card = make_random_model(tmp_path / "model")
    caplog.set_level(logging.DEBUG)
    path = dicom_dir / "JPEG2KLossless_1s_1f_u_16_16.dcm"
    assert main([str(path), "--model", str(card.path), "--csv", str(tmp_path / "r.csv"), "--heatmap-dir", str(tmp_path / "heatmaps"), "-v"]) == 0
    image = read_image(path)
    result = Classifier(ModelCard.load(card.path), device="cpu").predict_with_heatmap(image)
    grey = render(image)
    page = ReportPage(displayed=np.dstack([grey] * 3), metadata=image.metadata, prediction=result.prediction,
                      heatmap_class=result.target_class)
    write_report(tmp_path / "report.pdf", [page], model_card=card, deidentify=True)
    assert (tmp_path / "report.pdf").stat().st_size > 1000
    name_parts = [p for p in str(image.metadata.patient_name).replace("^", " ").split() if len(p) > 2]
    assert name_parts, "the test file should carry a patient name"
    for part in name_parts:
        assert part not in caplog.text
