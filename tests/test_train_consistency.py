"""Framing-consistency fine-tuning (training.consistency, --init-from, --consistency-weight) and the
validation-split framing test used to choose it (training.framing_choice)."""
from __future__ import annotations

import json

import numpy as np
import pytest

torch = pytest.importorskip("torch")  # training needs torch; a torch-free environment skips this file

from test_train import smoke_args, write_tiny_manifest  # noqa: E402


@pytest.fixture(scope="module")
def tiny_manifest(cxr3_dir, tmp_path_factory):
    return write_tiny_manifest(cxr3_dir, tmp_path_factory.mktemp("manifest"))


class TestJensenShannon:
    def test_zero_for_equal_views_and_ln2_for_opposite_certain_calls(self):
        from training.consistency import jensen_shannon

        same = torch.tensor([[[2.0, 0.0, -1.0], [2.0, 0.0, -1.0]]])
        assert float(jensen_shannon(same)) == pytest.approx(0.0, abs=1e-7)
        opposite = torch.tensor([[[60.0, 0.0, 0.0], [0.0, 60.0, 0.0]]])
        assert float(jensen_shannon(opposite)) == pytest.approx(np.log(2.0), rel=1e-5)

    def test_matches_the_definition_by_hand(self):
        from training.consistency import jensen_shannon

        logits = torch.tensor([[[1.0, 0.5, -0.5], [0.0, 1.0, 0.2]]])
        p = torch.softmax(logits[0], dim=-1).numpy().astype(np.float64)
        m = p.mean(axis=0)
        expected = np.mean([np.sum(q * np.log(q / m)) for q in p])
        assert float(jensen_shannon(logits)) == pytest.approx(expected, rel=1e-5)


class TestConsistencyLoss:
    def test_adds_the_weighted_divergence_to_the_loss_on_both_views(self):
        from training.consistency import FramingConsistencyLoss, jensen_shannon
        from training.distill import HardLabelLoss

        logits = torch.tensor([[2.0, 0.0, 0.0], [0.0, 2.0, 0.0], [0.0, 0.0, 1.0], [0.0, 0.0, 3.0]])
        labels = torch.tensor([0, 2])
        loss = FramingConsistencyLoss(HardLabelLoss(0.0), 5.0)(logits, labels, torch.zeros(4, 3, 8, 8))
        hard = torch.nn.functional.cross_entropy(logits, torch.tensor([0, 0, 2, 2]))
        assert float(loss) == pytest.approx(float(hard + 5.0 * jensen_shannon(logits.view(2, 2, 3))), rel=1e-6)

    def test_refuses_a_batch_without_two_views_per_film(self):
        from training.consistency import FramingConsistencyLoss
        from training.distill import HardLabelLoss

        with pytest.raises(ValueError, match="2 views"):
            FramingConsistencyLoss(HardLabelLoss(0.0), 1.0)(torch.zeros(3, 3), torch.tensor([0, 1]),
                                                            torch.zeros(3, 3, 8, 8))
        with pytest.raises(ValueError, match="positive"):
            FramingConsistencyLoss(HardLabelLoss(0.0), 0.0)


    def test_anchored_targets_come_from_the_unframed_view(self):
        from training.consistency import FramingConsistencyLoss

        seen = []

        class RecordingBase(torch.nn.Module):
            def forward(self, logits, labels, images):
                seen.append(images.clone())
                return logits.sum() * 0

        clean, framed = torch.zeros(1, 3, 4, 4), torch.ones(1, 3, 4, 4)
        images = torch.cat([clean, framed, clean + 2, framed + 2])  # two films, views adjacent
        logits, labels = torch.zeros(4, 3), torch.tensor([0, 1])
        FramingConsistencyLoss(RecordingBase(), 1.0)(logits, labels, images)
        FramingConsistencyLoss(RecordingBase(), 1.0, anchor_on_clean=True)(logits, labels, images)
        assert torch.equal(seen[0], images)
        assert torch.equal(seen[1], torch.cat([clean, clean, clean + 2, clean + 2]))

    def test_anchor_needs_a_teacher(self, tiny_manifest, tmp_path):
        from training import train

        with pytest.raises(SystemExit):
            train.main(smoke_args(tiny_manifest, tmp_path / "x", 1, "--framing-shift", "0.5",
                                  "--consistency-weight", "12", "--consistency-anchor"))


class TestFramingPairs:
    def test_pairs_are_the_film_and_the_same_film_framed(self, tiny_manifest):
        from training.data import FramingShift, ManifestDataset, read_manifest

        rows = read_manifest(tiny_manifest, "train")[:4]
        plain = ManifestDataset(rows, 64, (0.5,) * 3, (0.5,) * 3)
        pairs = ManifestDataset(rows, 64, (0.5,) * 3, (0.5,) * 3, framing=FramingShift(p=0.3), framing_pairs=True)
        for i in range(4):
            views, label = pairs[i]
            assert views.shape == (2, 3, 64, 64) and views.dtype == torch.float32 and label == plain[i][1]
            # no augmentation configured: the first view is the curated film, the second differs
            assert torch.equal(views[0], plain[i][0])
            assert not torch.allclose(views[0], views[1])

    def test_pairs_need_a_framing_shift(self, tiny_manifest):
        from training.data import ManifestDataset, read_manifest

        with pytest.raises(ValueError, match="framing"):
            ManifestDataset(read_manifest(tiny_manifest, "train")[:2], 64, (0.5,) * 3, (0.5,) * 3, framing_pairs=True)

    def test_without_pairs_the_draws_are_the_previous_ones(self, tiny_manifest):
        """Resumed runs replay their augmentation stream: the single-view path must draw as before
        (border swap, framing, augmentation, acquisition shift from one generator, in that order)."""
        from training.data import AcquisitionShift, Augment, FramingShift, ManifestDataset, read_manifest, normalise

        rows = read_manifest(tiny_manifest, "train")[:3]
        steps = dict(augment=Augment(), acquisition=AcquisitionShift(p=1.0), framing=FramingShift(p=1.0))
        dataset = ManifestDataset(rows, 64, (0.5,) * 3, (0.5,) * 3, **steps)
        for i in range(3):
            torch.manual_seed(i)
            got = dataset[i][0]
            torch.manual_seed(i)
            rng = np.random.default_rng(int(torch.randint(0, 2**31 - 1, (1,)).item()))
            grey = dataset.cache.get(i)
            for step in (steps["framing"], steps["augment"], steps["acquisition"]):
                grey = step(grey, rng)
            assert np.allclose(got.numpy(), normalise(grey, (0.5,) * 3, (0.5,) * 3, 3))


class TestFineTuning:
    def test_init_from_then_consistency_training(self, tiny_manifest, tmp_path):
        from safetensors.torch import load_file

        from training import train

        base = tmp_path / "base"
        assert train.main(smoke_args(tiny_manifest, base, 1)) == 0
        tuned = tmp_path / "tuned"
        assert train.main(smoke_args(tiny_manifest, tuned, 1, "--init-from", str(base), "--lr", "0",
                                     "--framing-shift", "0.5", "--consistency-weight", "12")) == 0
        # lr 0: the fine-tuned weights are the starting ones, classifier included (not re-initialised)
        before, after = load_file(str(base / "best.safetensors")), load_file(str(tuned / "best.safetensors"))
        for name in ("classifier.weight", "classifier.bias"):
            assert torch.equal(before[name], after[name]), name
        record = json.loads((tuned / "metrics.jsonl").read_text().splitlines()[0])
        assert record["train_images"] == 16  # films, each seen in two views
        assert json.loads((tuned / "run.json").read_text())["args"]["consistency_weight"] == 12

    def test_init_from_refuses_another_architecture_and_restart(self, tiny_manifest, tmp_path):
        from training import train

        base = tmp_path / "base"
        assert train.main(smoke_args(tiny_manifest, base, 1)) == 0
        args = smoke_args(tiny_manifest, tmp_path / "other", 1, "--init-from", str(base))
        args[args.index("efficientnet_b0")] = "tf_efficientnet_lite0"
        with pytest.raises(ValueError, match="weights of efficientnet_b0"):
            train.main(args)
        with pytest.raises(SystemExit):
            train.main(smoke_args(tiny_manifest, tmp_path / "x", 1, "--init-from", str(base),
                                  "--restart-from", str(base)))
        with pytest.raises(SystemExit):  # the second view needs a framing shift
            train.main(smoke_args(tiny_manifest, tmp_path / "y", 1, "--consistency-weight", "12"))


class TestFramingChoice:
    def test_changed_share_counts_calls_after_the_offsets(self):
        from training.framing_choice import framing_figures

        labels = np.array([0, 1, 2, 0])
        plain = np.array([[2.0, 0, 0], [0, 2.0, 0], [0, 0, 2.0], [1.0, 0.9, 0]])
        framed = {"thorax crop": np.array([[2.0, 0, 0], [0, 2.0, 0], [0, 0, 2.0], [0.9, 1.0, 0]]),
                  "zoom out, black border": plain.copy()}
        none = framing_figures(labels, plain, framed, np.zeros(3))
        assert none["changed"] == {"thorax crop": 0.25, "zoom out, black border": 0.0} and none["accuracy"] == 1.0
        # an offset that moves the borderline film's call either way makes both framings agree on it
        shifted = framing_figures(labels, plain, framed, np.array([0.0, 0.5, 0.0]))
        assert shifted["changed"]["thorax crop"] == 0.0 and shifted["accuracy"] == 0.75

    def test_offsets_come_from_the_operating_point_copy(self, tmp_path):
        from training.framing_choice import operating_offsets

        run = tmp_path / "run"
        run.mkdir()
        assert operating_offsets(run).tolist() == [0.0, 0.0, 0.0]
        (tmp_path / "run_op").mkdir()
        (tmp_path / "run_op" / "run.json").write_text(json.dumps(
            {"operating_point": {"logit_offsets": {"normal": 0.0, "pneumonia": 0.25, "covid": -0.625}}}))
        assert operating_offsets(run).tolist() == [0.0, 0.25, -0.625]
