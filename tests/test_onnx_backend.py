"""The ONNX Runtime backend against the torch one: same probabilities, the same Grad-CAM, no torch needed.

Tolerances: probabilities within 1e-4 (absolute) of torch's; heat-maps, float32 in [0, 1] at the
image's full 2128×2000 geometry, within 1e-3 (absolute, at every pixel) of pytorch-grad-cam's
GradCAM on the same layer and class. Measured differences are about 1e-6.
"""
from __future__ import annotations

import csv
import dataclasses
import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("onnxruntime")
pytest.importorskip("onnx")

from cxr_engine.models.backends import create_classifier, gpu_driver_present  # noqa: E402
from cxr_engine.cli import main  # noqa: E402
from cxr_engine.classification import model_reader  # noqa: E402
from cxr_engine.errors import ModelError, ModelIntegrityError  # noqa: E402
from cxr_engine.models.torch_backend import Classifier  # noqa: E402
from cxr_engine.reading.read import read_image  # noqa: E402
from cxr_engine.models.model_card import ModelCard  # noqa: E402
from cxr_engine.models.onnx_backend import META_WEIGHTS_SHA256, OnnxClassifier, min_max_scale  # noqa: E402
from cxr_engine.models.weights import load_model, save_weights, sha256_file  # noqa: E402
from training.export_onnx import export_onnx  # noqa: E402

from concurrency import run_in_threads  # noqa: E402
from model_factory import make_random_model  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
PROBABILITY_ATOL = 1e-4
HEATMAP_ATOL = 1e-3
INPUT_SIZE = 128  # a 4×4 Grad-CAM map for both architectures


def _spread_logits(card: ModelCard) -> ModelCard:
    """Scale the classifier so random-weight logits span about 2 (random efficientnet logits are ~1e-4,
    which would make every probability 1/3 and the comparison empty). Heat-maps do not change."""
    model = load_model(card)
    head = model.get_classifier()
    with torch.no_grad():
        logits = model(torch.randn(4, 3, card.input_size, card.input_size, generator=torch.Generator().manual_seed(0)))
        head.weight.mul_(2.0 / float(logits.max() - logits.min()))
    card.weights_sha256 = save_weights(model, card.weights_path)
    card.save(card.path)
    return card


@pytest.fixture(scope="module", params=["efficientnet_b0", pytest.param("densenet121", marks=pytest.mark.slow)])
def exported(request, tmp_path_factory) -> ModelCard:
    folder = tmp_path_factory.mktemp(request.param)
    card = _spread_logits(make_random_model(folder, name=request.param, architecture=request.param,
                                            input_size=INPUT_SIZE, seed=3))
    export_onnx(card)
    return ModelCard.load(card.path)


@pytest.fixture(scope="module")
def large_image(dicom_dir):
    return read_image(dicom_dir / "966_fixed.dcm")


class TestExport:
    def test_card_records_the_file_and_its_sha256(self, exported):
        assert exported.onnx_file == f"{exported.name}.onnx"
        assert exported.onnx_path.parent == exported.path.parent
        assert sha256_file(exported.onnx_path) == exported.onnx_sha256

    def test_graph_has_a_dynamic_batch_and_records_its_weights(self, exported):
        import onnx

        proto = onnx.load(str(exported.onnx_path))
        assert [o.name for o in proto.graph.output] == ["logits", "features"]
        assert proto.graph.input[0].type.tensor_type.shape.dim[0].dim_param == "batch"
        assert {p.key: p.value for p in proto.metadata_props}[META_WEIGHTS_SHA256] == exported.weights_sha256

    def test_float16_weights_are_stored_as_float16_and_nothing_changes(self, tmp_path):
        import onnx
        from onnx import numpy_helper

        card = make_random_model(tmp_path, name="half", architecture="efficientnet_b0", input_size=64, seed=5)
        card.weights_sha256 = save_weights(load_model(card), card.weights_path, half=True)
        card.weights_dtype = "float16"
        card.save(card.path)
        export_onnx(card)  # refuses to write unless ONNX Runtime matches torch within 1e-4
        proto = onnx.load(str(card.onnx_path))
        stored = [numpy_helper.to_array(t) for t in proto.graph.initializer]
        parameters = sum(p.numel() for p in load_model(card).parameters())
        assert not [a.shape for a in stored if a.dtype == np.float32 and a.size > 1]
        # identical tensors (a fresh model's batch-norm scales) are stored once, hence not 100 %
        assert sum(a.size for a in stored if a.dtype == np.float16) >= 0.95 * parameters
        assert "BatchNormalization" in {node.op_type for node in proto.graph.node}  # not folded into Conv


class TestSameResultsAsTorch:
    def test_probabilities_match(self, exported, dicom_dir, large_image):
        images = [large_image, read_image(dicom_dir / "CR-MONO1-10-chest.dcm")]
        expected = Classifier(exported, device="cpu").predict(images)
        actual = OnnxClassifier(exported).predict(images)
        assert max(expected[0].probabilities) - min(expected[0].probabilities) > 0.05  # not all 1/3
        for want, got in zip(expected, actual, strict=True):
            np.testing.assert_allclose(got.probabilities, want.probabilities, atol=PROBABILITY_ATOL, rtol=0)
            assert got.label == want.label and got.model_name == want.model_name

    def test_heatmap_equals_pytorch_grad_cam(self, exported, large_image):
        torch_backend, onnx_backend = Classifier(exported, device="cpu"), OnnxClassifier(exported)
        structured = 0
        for target in (None, *exported.classes):
            want = torch_backend.predict_with_heatmap(large_image, target)
            got = onnx_backend.predict_with_heatmap(large_image, target)
            assert got.target_class == want.target_class
            assert got.heatmap.shape == want.heatmap.shape == large_image.shape
            assert got.heatmap.dtype == np.float32
            assert float(np.abs(got.heatmap - want.heatmap).max()) <= HEATMAP_ATOL, target
            np.testing.assert_allclose(got.prediction.probabilities, want.prediction.probabilities,
                                       atol=PROBABILITY_ATOL, rtol=0)
            structured += float(want.heatmap.std()) > 0.05
        # The predicted class and at least one other have a map with structure: not 0 == 0.
        assert structured >= 3

    def test_min_max_scaling_is_pytorch_grad_cams(self):
        from pytorch_grad_cam.utils.image import scale_cam_image

        heatmap = np.random.default_rng(0).random((7, 5), dtype=np.float32) * 3
        # The engine resizes with numpy (cxr_engine.pixels.resampling), pytorch-grad-cam with OpenCV: float32 rounding.
        np.testing.assert_allclose(min_max_scale(heatmap, (64, 48)), scale_cam_image(heatmap[None], (64, 48))[0], rtol=0, atol=1e-6)
        np.testing.assert_array_equal(min_max_scale(heatmap), scale_cam_image(heatmap[None])[0])


class TestIntegrity:
    @pytest.fixture()
    def copied(self, exported, tmp_path) -> ModelCard:
        """Only the card and the ONNX file: the ONNX backend does not need the safetensors."""
        for name in (exported.path.name, exported.onnx_file):
            shutil.copy(exported.path.parent / name, tmp_path / name)
        return ModelCard.load(tmp_path / exported.path.name)

    def test_runs_without_the_safetensors(self, copied, large_image):
        assert not copied.weights_path.exists()
        assert OnnxClassifier(copied).predict([large_image])[0].label in copied.classes

    def test_tampered_file_is_refused(self, copied):
        data = bytearray(copied.onnx_path.read_bytes())
        data[len(data) // 2] ^= 0x01
        copied.onnx_path.write_bytes(bytes(data))
        with pytest.raises(ModelIntegrityError, match="does not match the model card"):
            OnnxClassifier(copied).load()

    def test_missing_file_is_refused(self, copied):
        copied.onnx_path.unlink()
        with pytest.raises(ModelError, match="cannot be read"):
            OnnxClassifier(copied).load()

    def test_card_without_an_export_is_refused(self, copied):
        with pytest.raises(ModelError, match="names no ONNX file"):
            OnnxClassifier(dataclasses.replace(copied, onnx_file="", onnx_sha256="")).load()

    def test_export_of_other_weights_is_refused(self, copied):
        with pytest.raises(ModelError, match="other weights"):
            OnnxClassifier(dataclasses.replace(copied, weights_sha256="0" * 64)).load()


def test_threads_share_one_session_safely(exported, dicom_dir):
    image = read_image(dicom_dir / "CR-MONO1-10-chest.dcm")
    classifier = OnnxClassifier(exported)
    expected = classifier.predict_with_heatmap(image)
    results, errors = run_in_threads(lambda: classifier.predict_with_heatmap(image), 4)
    assert not errors and len(results) == 4
    for result in results:
        np.testing.assert_array_equal(result.heatmap, expected.heatmap)
        assert result.prediction == expected.prediction


class TestBackendSelection:
    def test_explicit_backends(self, exported):
        assert isinstance(create_classifier(exported, "onnx"), OnnxClassifier)
        assert isinstance(create_classifier(exported, "torch", "cpu"), Classifier)
        with pytest.raises(ValueError, match="backend must be"):
            create_classifier(exported, "tensorrt")

    def test_auto_prefers_onnx_on_the_cpu(self, exported):
        assert isinstance(create_classifier(exported, "auto", "cpu"), OnnxClassifier)
        without_export = dataclasses.replace(exported, onnx_file="", onnx_sha256="")
        assert isinstance(create_classifier(without_export, "auto", "cpu"), Classifier)
        if not torch.cuda.is_available():
            assert isinstance(create_classifier(exported), OnnxClassifier)

    def test_onnx_on_a_missing_gpu_is_refused(self, exported):
        import onnxruntime

        if "CUDAExecutionProvider" in onnxruntime.get_available_providers():
            pytest.skip("this onnxruntime has a CUDA provider")
        with pytest.raises(ValueError, match="cannot run on 'cuda'"):
            create_classifier(exported, "onnx", "cuda")


# Makes ``import torch`` (and what needs it) fail as if it were not installed.
BLOCK_TORCH = """
import importlib.abc, sys

class NoTorch(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in {"torch", "torchvision", "timm", "pytorch_grad_cam"}:
            raise ModuleNotFoundError(f"No module named {name!r} (blocked by the test)")
        return None

sys.meta_path.insert(0, NoTorch())
"""

CLASSIFY = """
import json, sys
import numpy as np
from cxr_engine.models.backends import create_classifier
from cxr_engine.errors import ModelError
from cxr_engine.reading.read import read_image
from cxr_engine.models.model_card import ModelCard

card = ModelCard.load(sys.argv[1])
image = read_image(sys.argv[2])
classifier = create_classifier(card)
result = classifier.predict_with_heatmap(image, sys.argv[4])
np.save(sys.argv[3], result.heatmap)
try:
    create_classifier(card, "torch")
    torch_refused = False
except ModelError:
    torch_refused = True
print(json.dumps({"backend": type(classifier).__name__, "device": classifier.device_description(),
                  "probabilities": classifier.predict([image])[0].probabilities, "torch_refused": torch_refused,
                  "torch_imported": any(m.split(".")[0] == "torch" for m in sys.modules)}))
"""


def _run_python(code: str, *args) -> dict:
    proc = subprocess.run([sys.executable, "-c", code, *map(str, args)], cwd=REPO, capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_engine_classifies_and_explains_without_torch(exported, dicom_dir, large_image, tmp_path):
    target = exported.classes[1]
    out = _run_python(BLOCK_TORCH + CLASSIFY, exported.path, dicom_dir / "966_fixed.dcm", tmp_path / "heatmap.npy", target)
    assert out["backend"] == "OnnxClassifier" and out["device"].startswith("CPU (ONNX Runtime")
    assert out["torch_refused"] and not out["torch_imported"]
    torch_backend = Classifier(exported, device="cpu")
    expected = torch_backend.predict_with_heatmap(large_image, target)
    np.testing.assert_allclose(out["probabilities"], expected.prediction.probabilities, atol=PROBABILITY_ATOL, rtol=0)
    heatmap = np.load(tmp_path / "heatmap.npy", allow_pickle=False)
    assert float(np.abs(heatmap - expected.heatmap).max()) <= HEATMAP_ATOL


def test_auto_does_not_import_torch_on_a_machine_without_a_gpu_driver(exported, dicom_dir, tmp_path):
    if gpu_driver_present():
        pytest.skip("a GPU driver is present: auto rightly imports torch to ask it about the GPU")
    out = _run_python(CLASSIFY, exported.path, dicom_dir / "CR-MONO1-10-chest.dcm", tmp_path / "heatmap.npy",
                      exported.classes[0])
    assert out["backend"] == "OnnxClassifier" and not out["torch_imported"]


def test_cli_runs_on_the_onnx_backend(exported, dicom_dir, tmp_path):
    files = [dicom_dir / "966_fixed.dcm", dicom_dir / "CR-MONO1-10-chest.dcm"]
    out, heatmap_dir = tmp_path / "results.csv", tmp_path / "heatmaps"
    assert main([*map(str, files), "--model", str(exported.path), "--backend", "onnx", "--csv", str(out),
                 "--heatmap-dir", str(heatmap_dir)]) == 0
    with open(out, newline="") as handle:
        rows = list(csv.DictReader(handle))
    # The CLI reads each film as the model input needs it (the reduced decode), with or without heat-maps.
    expected = Classifier(exported, device="cpu").predict([model_reader(exported)(f) for f in files])
    for row, want in zip(rows, expected, strict=True):
        assert row["status"] == "ok" and row["model"] == exported.name and Path(row["cam_path"]).exists()
        got = [float(row[f"p_{c}"]) for c in exported.classes]
        np.testing.assert_allclose(got, want.probabilities, atol=PROBABILITY_ATOL, rtol=0)


@pytest.fixture(scope="module")
def bundled():
    from cxr_engine.models.model_card import find_card

    card = find_card("efficientnet-lite0")  # a tf_ EfficientNet: "same" padding computed from the shape
    if card.onnx_path is None or not card.onnx_path.exists():
        pytest.skip("the bundled efficientnet-lite0 has no ONNX file here")
    return card


class TestOneImagePerRun:
    """On the CPU the session's batch axis is fixed at one image (faster: see ``session_options``)."""

    def test_cpu_session_takes_one_image(self, bundled):
        classifier = OnnxClassifier(bundled).load()
        assert classifier._session.get_inputs()[0].shape[0] == 1

    def test_batch_run_image_by_image_equals_a_free_batch_axis(self, bundled, dicom_dir, large_image):
        import onnxruntime

        from cxr_engine.models.onnx_backend import session_options, verified_onnx_bytes

        images = [large_image, read_image(dicom_dir / "CR-MONO1-10-chest.dcm"),
                  read_image(dicom_dir / "RG1_J2KI.dcm")]
        classifier = OnnxClassifier(bundled)
        batch = np.stack([classifier.preprocess(image) for image in images])
        logits, pooled = classifier._logits_and_features(batch)
        free = onnxruntime.InferenceSession(verified_onnx_bytes(bundled), session_options(onnxruntime),
                                            providers=["CPUExecutionProvider"])
        assert free.get_inputs()[0].shape[0] == "batch"
        want_logits, want_features = free.run(["logits", "features"], {"input": batch})
        np.testing.assert_allclose(logits, want_logits, rtol=0, atol=1e-5)
        np.testing.assert_allclose(pooled, want_features.mean(axis=(2, 3)), rtol=0, atol=1e-5)
        assert [p.label for p in classifier.predict(images)] == [bundled.classes[i] for i in want_logits.argmax(1)]
