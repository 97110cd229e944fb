"""The engine without torch, as the lite bundle and ``.venv-notorch`` run it: the bundled model's
ONNX export classifies and explains the sample study, offline, and never imports torch.

Each test runs in a fresh interpreter in which importing torch, torchvision, timm or grad-cam
fails as if they were not installed, so it means the same with and without torch on disk.
"""
from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("onnxruntime")

REPO = Path(__file__).resolve().parents[1]
CARD = REPO / "resources" / "models" / "efficientnet-lite0.json"
SAMPLES = REPO / "resources" / "samples" / "study"

# Makes ``import torch`` (and what needs it) fail as if it were not installed, and opening an
# internet socket an error (local socket pairs, which multiprocessing uses, stay allowed).
PRELUDE = """
import importlib.abc, socket, sys

class NoTorch(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in {"torch", "torchvision", "timm", "pytorch_grad_cam", "safetensors"}:
            raise ModuleNotFoundError(f"No module named {name!r} (blocked by the test)")
        return None

class OfflineSocket(socket.socket):
    def __init__(self, family=-1, type=-1, proto=-1, fileno=None):
        if fileno is None and family in (-1, socket.AF_INET, socket.AF_INET6):
            raise AssertionError("network access attempted")
        super().__init__(family, type, proto, fileno)

def no_network(*args, **kwargs):
    raise AssertionError("network access attempted")

sys.meta_path.insert(0, NoTorch())
socket.socket = OfflineSocket
socket.create_connection = socket.getaddrinfo = no_network
"""

CLI = PRELUDE + """
from cxr_engine.cli import main
code = main(sys.argv[1:])
print(json.dumps({"code": code, "torch_imported": any(m.split(".")[0] == "torch" for m in sys.modules)}))
"""

BACKENDS = PRELUDE + """
from cxr_engine.models.backends import choose_backend, create_classifier
from cxr_engine.errors import ModelError
from cxr_engine.models.model_card import ModelCard

card = ModelCard.load(sys.argv[1])
try:
    create_classifier(card, "torch")
    refusal = ""
except ModelError as exc:
    refusal = str(exc)
print(json.dumps({"auto": choose_backend(card), "auto_class": type(create_classifier(card)).__name__,
                  "refusal": refusal}))
"""


def run_python(code: str, *args) -> dict:
    proc = subprocess.run([sys.executable, "-c", "import json\n" + code, *map(str, args)], cwd=REPO,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_cli_classifies_the_sample_study_with_heatmaps_offline_without_torch(tmp_path):
    out, heatmap_dir = tmp_path / "results.csv", tmp_path / "heatmaps"
    result = run_python(CLI, SAMPLES, "--model", CARD, "--backend", "onnx", "--csv", out, "--heatmap-dir", heatmap_dir)
    assert result == {"code": 0, "torch_imported": False}
    with open(out, newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 3 and {row["status"] for row in rows} == {"ok"}
    for row in rows:
        assert row["prediction"] in ("normal", "pneumonia", "covid") and row["model"] == "efficientnet-lite0"
        assert sum(float(row[f"p_{c}"]) for c in ("normal", "pneumonia", "covid")) == pytest.approx(1.0, abs=1e-3)
        assert Path(row["cam_path"]).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_auto_picks_onnx_runtime_and_torch_is_refused_with_a_reason():
    result = run_python(BACKENDS, CARD)
    assert result["auto"] == "onnx" and result["auto_class"] == "OnnxClassifier"
    assert "PyTorch is not installed" in result["refusal"]
