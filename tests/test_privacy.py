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


def test_onnx_runtime_records_and_keeps_nothing_about_its_use(tmp_path, dicom_dir):
    """ONNX Runtime's official builds log usage events (with a device identifier) under the user's
    ~/.cache/Microsoft/DeveloperTools and may upload them; the engine opts out before it is imported
    (privacy tester's finding 3). A real run of the CLI on the ONNX backend, in a fresh home folder; the same
    run without the opt-out (onnxruntime imported first, as a plain script would) shows the check can fail."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    pytest.importorskip("onnxruntime")
    repo = Path(__file__).resolve().parents[1]
    film = dicom_dir / "CR-MONO1-10-chest.dcm"
    cli = ("import sys\nfrom cxr_engine.cli import main\n"
           f"sys.exit(main([{str(film)!r}, '--backend', 'onnx', '--csv', {str(tmp_path / 'r.csv')!r}, '-q']))")

    def run(home: Path, first: str = "") -> Path:
        env = {k: v for k, v in os.environ.items() if k not in ("ORT_DISABLE_TELEMETRY", "XDG_CACHE_HOME")}
        env["HOME"] = str(home)
        done = subprocess.run([sys.executable, "-c", first + cli], env=env, cwd=repo, capture_output=True, text=True,
                              timeout=300)
        assert done.returncode == 0, done.stderr
        return home / ".cache" / "Microsoft"

    assert not run(tmp_path / "home").exists()
    plain = run(tmp_path / "plain_home", first="import onnxruntime\n")  # imported before the engine: no opt-out
    if not plain.exists():
        pytest.skip("this onnxruntime records no usage events (no telemetry in this build)")
