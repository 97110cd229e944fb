"""Classifier predictions and Grad-CAM: shapes, ranges, alignment, hooks, threads."""
from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from cxr_engine.models.torch_backend import Classifier, resolve_device
from cxr_engine.reading.read import read_image
from cxr_engine.models.model_card import ModelCard
from cxr_engine.pixels.preprocessing import PREPROCESSING_VERSION

from concurrency import run_in_threads
from model_factory import make_random_model


@pytest.fixture(scope="module")
def classifier(tmp_path_factory):
    card = make_random_model(tmp_path_factory.mktemp("model"))
    return Classifier(card, device="cpu")


def test_cpu_is_chosen_without_a_gpu():
    assert resolve_device("cpu") == "cpu"
    assert resolve_device("auto") == ("cuda" if torch.cuda.is_available() else "cpu")


def test_predict_batch_gives_probabilities(classifier, dicom_dir):
    images = [read_image(dicom_dir / "CR-MONO1-10-chest.dcm"), read_image(dicom_dir / "Fake_MONOHR1.dcm")]
    predictions = classifier.predict(images)
    assert len(predictions) == 2
    for prediction in predictions:
        assert prediction.classes == ("normal", "pneumonia", "covid")
        assert sum(prediction.probabilities) == pytest.approx(1.0, abs=1e-6)
        assert prediction.label in prediction.classes
    single = classifier.predict(images[:1])[0]
    np.testing.assert_allclose(single.probabilities, predictions[0].probabilities, atol=1e-5)


def test_heatmap_has_the_image_geometry_and_unit_range(classifier, dicom_dir):
    image = read_image(dicom_dir / "966_fixed.dcm")
    result = classifier.predict_with_heatmap(image)
    assert result.heatmap.shape == image.shape == (2128, 2000)
    assert result.heatmap.dtype == np.float32
    assert 0.0 <= result.heatmap.min() and result.heatmap.max() <= 1.0
    assert result.target_class == result.prediction.label
    other = classifier.predict_with_heatmap(image, target_class="covid")
    assert other.target_class == "covid"


def test_grad_cam_object_is_reused_and_hooks_do_not_accumulate(classifier, dicom_dir):
    image = read_image(dicom_dir / "CR-MONO1-10-chest.dcm")
    classifier.predict_with_heatmap(image)
    grad_cam = classifier._grad_cam
    hooks_before = sum(len(m._forward_hooks) for m in classifier._model.modules())
    for _ in range(3):
        classifier.predict_with_heatmap(image)
        classifier.predict([image, image])
    assert classifier._grad_cam is grad_cam
    assert sum(len(m._forward_hooks) for m in classifier._model.modules()) == hooks_before
    assert len(grad_cam.activations_and_grads.activations) == 0


def test_threads_share_one_classifier_safely(classifier, dicom_dir):
    image = read_image(dicom_dir / "CR-MONO1-10-chest.dcm")
    expected = classifier.predict([image])[0].probabilities
    results, errors = run_in_threads(lambda: classifier.predict_with_heatmap(image).prediction.probabilities, 4)
    assert not errors
    for probs in results:
        np.testing.assert_allclose(probs, expected, atol=1e-5)


class _BlobModel(torch.nn.Module):
    """GAP + linear over a 1×1 conv of the input: its Grad-CAM is the (ReLU'd) input itself."""

    def __init__(self):
        super().__init__()
        self.bn2 = torch.nn.Conv2d(3, 1, kernel_size=1, bias=False)
        torch.nn.init.constant_(self.bn2.weight, 1.0 / 3)
        self.head = torch.nn.Linear(1, 3, bias=False)
        with torch.no_grad():
            self.head.weight.copy_(torch.tensor([[-1.0], [1.0], [0.5]]))

    def forward(self, x):
        return self.head(self.bn2(x).mean(dim=(2, 3)))


def test_heatmap_lines_up_with_the_image_it_explains():
    """A bright disc on a non-square image: the heat-map peak lands on the disc."""
    card = ModelCard(name="blob", architecture="efficientnet_b0", classes=["normal", "pneumonia", "covid"],
                     input_size=64, in_chans=3, mean=[0.5] * 3, std=[0.25] * 3,
                     preprocessing_version=PREPROCESSING_VERSION, weights_file="-", weights_sha256="-")
    classifier = Classifier(card, device="cpu", model=_BlobModel())
    display = np.zeros((300, 500), dtype=np.float32)
    yy, xx = np.mgrid[:300, :500]
    display[(yy - 60) ** 2 + (xx - 400) ** 2 < 30**2] = 1.0
    result = classifier.predict_with_heatmap(display, target_class="pneumonia")
    assert result.heatmap.shape == (300, 500)
    peak_row, peak_col = np.unravel_index(np.argmax(result.heatmap), result.heatmap.shape)
    assert abs(peak_row - 60) < 30 and abs(peak_col - 400) < 30
    assert result.heatmap[250, 100] < 0.05  # far from the disc: no evidence
