"""Long CPU runs in stages: mid-epoch checkpoints and resume, progressive resizing, restart from the
best weights, distillation from a run folder at another input size (training.train, training.stages)."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")  # training needs torch; a torch-free environment skips this file

from test_train import write_tiny_manifest  # noqa: E402  (the shared tiny split of real cxr3 films)


@pytest.fixture(scope="module")
def tiny_manifest(cxr3_dir, tmp_path_factory) -> Path:
    return write_tiny_manifest(cxr3_dir, tmp_path_factory.mktemp("manifest"))


def staged_args(manifest: Path, out: Path, *extra: str) -> list[str]:
    """Two epochs of 4 steps (batch 4 of 16 draws), 48 px then 64 px, every augmentation on (they draw
    from the RNG the checkpoint must restore), one thread so that the arithmetic is repeatable."""
    return ["--manifest", str(manifest), "--arch", "efficientnet_b0", "--size-schedule", "48:1,64:1",
            "--epochs", "2", "--batch-size", "4", "--epoch-samples", "16", "--limit", "24", "--threads", "1",
            "--device", "cpu", "--warmup-epochs", "0.5", "--border-swap", "0.7", "--acquisition-shift", "0.8",
            "--framing-shift", "0.7", "--out", str(out), *extra]


def records(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]


def final_weights(out: Path) -> dict:
    return torch.load(out / "last.pt", map_location="cpu", weights_only=True)["model"]


class TestSizeSchedule:
    def test_parse_and_sizes_per_epoch(self):
        from training.stages import SizeSchedule

        schedule = SizeSchedule.parse("128:10, 160:12,224:4")
        assert schedule.epochs == 26 and schedule.final_size == 224 and str(schedule) == "128:10,160:12,224:4"
        assert [schedule.size_for_epoch(e) for e in (1, 10, 11, 22, 23, 26, 27)] == [128, 128, 160, 160, 224, 224, 224]

    @pytest.mark.parametrize("text", ["128", "128:0", "16:3", "a:b", "128:2,"])
    def test_bad_stage_is_named(self, text):
        from training.stages import SizeSchedule

        with pytest.raises(ValueError, match="SIZE:EPOCHS"):
            SizeSchedule.parse(text)

    def test_epochs_must_add_up(self, tiny_manifest, tmp_path, capsys):
        from training import train

        with pytest.raises(SystemExit):
            train.parse_args(staged_args(tiny_manifest, tmp_path)[:-2] + ["--epochs", "3", "--out", str(tmp_path)])
        assert "has 2 epochs, --epochs 3" in capsys.readouterr().err


@pytest.fixture(scope="module")
def uninterrupted(tiny_manifest, tmp_path_factory) -> Path:
    """The reference: the whole two-epoch plan in one go."""
    from training import train

    out = tmp_path_factory.mktemp("uninterrupted") / "run"
    cache = out.parent / "cache"
    assert train.main(staged_args(tiny_manifest, out, "--cache-dir", str(cache))) == 0
    return out


class TestStagedRun:
    def test_each_epoch_trains_and_validates_at_its_size_decoded_once(self, uninterrupted):
        assert [(r["epoch"], r["size"], r["step"]) for r in records(uninterrupted)] == [(1, 48, 4), (2, 64, 8)]
        cached = sorted(p.name.split("_")[1] for p in (uninterrupted.parent / "cache").glob("*.npy"))
        assert cached == ["48px", "48px", "64px", "64px"]  # train and val, once per size
        card = json.loads((uninterrupted / "best.json").read_text())
        best = next(r for r in records(uninterrupted) if r["epoch"] == card["validation_metrics"]["epoch"])
        assert card["input_size"] == best["size"]
        assert json.loads((uninterrupted / "run.json").read_text())["size_schedule"] == "48:1,64:1"

    def test_interrupted_mid_epoch_twice_ends_where_the_uninterrupted_run_ends(self, tiny_manifest, uninterrupted,
                                                                               tmp_path):
        from training import train

        out = tmp_path / "run"
        cache = uninterrupted.parent / "cache"
        # Stage 1 stops after step 3 of epoch 1's 4: a checkpoint, no validation yet.
        assert train.main(staged_args(tiny_manifest, out, "--cache-dir", str(cache), "--stop-at-step", "3")) == 0
        checkpoint = torch.load(out / "last.pt", map_location="cpu", weights_only=True)
        assert (checkpoint["epoch"], checkpoint["step_in_epoch"], checkpoint["global_step"]) == (0, 3, 3)
        assert checkpoint["scheduler"]["last_epoch"] == 3 and checkpoint["epoch_seen"] == 12
        assert not (out / "metrics.jsonl").exists()
        # Stage 2 finishes epoch 1 and stops in epoch 2 (the 64-px stage); stage 3 ends the plan.
        resume = ("--cache-dir", str(cache), "--resume", str(out / "last.pt"))
        assert train.main(staged_args(tiny_manifest, out, *resume, "--stop-at-step", "6")) == 0
        assert torch.load(out / "last.pt", map_location="cpu", weights_only=True)["step_in_epoch"] == 2
        assert train.main(staged_args(tiny_manifest, out, *resume)) == 0

        expected, got = records(uninterrupted), records(out)
        assert [r["epoch"] for r in got] == [1, 2]
        for want, have in zip(expected, got):
            assert have["train_loss"] == pytest.approx(want["train_loss"], rel=1e-5, abs=1e-6)
            assert have["val_loss"] == pytest.approx(want["val_loss"], rel=1e-5, abs=1e-6)
            assert (have["lr"], have["step"], have["train_images"]) == (want["lr"], want["step"],
                                                                        want["train_images"])
        reference, resumed = final_weights(uninterrupted), final_weights(out)
        assert reference.keys() == resumed.keys()
        for name, tensor in reference.items():
            torch.testing.assert_close(resumed[name], tensor, rtol=1e-4, atol=1e-5, msg=name)

    def test_the_time_budget_stops_at_a_step_boundary_resumable_mid_epoch(self, tiny_manifest, tmp_path):
        from training import train

        out = tmp_path / "run"
        assert train.main(staged_args(tiny_manifest, out, "--checkpoint-every", "100",
                                      "--time-budget-min", "0.00001")) == 0
        checkpoint = torch.load(out / "last.pt", map_location="cpu", weights_only=True)
        assert (checkpoint["epoch"], checkpoint["step_in_epoch"]) == (0, 1)
        assert not (out / "metrics.jsonl").exists()

    def test_a_mid_epoch_checkpoint_refuses_another_batch_size(self, tiny_manifest, tmp_path):
        from training import train

        out = tmp_path / "run"
        assert train.main(staged_args(tiny_manifest, out, "--stop-at-step", "2")) == 0
        args = staged_args(tiny_manifest, out, "--resume", str(out / "last.pt"))
        args[args.index("--batch-size") + 1] = "8"
        with pytest.raises(ValueError, match="mid-epoch with batch_size=4"):
            train.main(args)

    def test_restart_from_the_best_weights_when_the_checkpoint_is_lost(self, tiny_manifest, uninterrupted,
                                                                     tmp_path):
        from training import train

        card = json.loads((uninterrupted / "best.json").read_text())
        best_epoch = card["validation_metrics"]["epoch"]
        out = tmp_path / "restarted"
        args = staged_args(tiny_manifest, out, "--restart-from", str(uninterrupted))
        args[args.index("--size-schedule") + 1] = "48:1,64:2"
        args[args.index("--epochs") + 1] = "3"
        assert train.main(args) == 0
        got = records(out)
        assert [r["epoch"] for r in got] == list(range(best_epoch + 1, 4))
        assert got[0]["step"] == (best_epoch + 1) * 4  # the schedule went on from the best epoch's end
        assert "restarting from" in (out / "train.log").read_text()

    def test_a_new_run_into_a_folder_holding_a_run_is_refused(self, tiny_manifest, uninterrupted, capsys):
        """A restart command pasted without its --restart-from started the run again from scratch in the kept
        folder (its epochs added to the old metrics, its best weights overwritten)."""
        from training import train

        with pytest.raises(SystemExit):
            train.parse_args(staged_args(tiny_manifest, uninterrupted))
        assert "holds a run already (last.pt, metrics.jsonl): --resume its last.pt" in capsys.readouterr().err

    def test_a_kept_restart_point_continues_after_the_last_epoch_and_keeps_the_best(self, tiny_manifest,
                                                                                     uninterrupted, tmp_path):
        """The run of 2026-11-30 was lost with its machine (training/work is not in git): ``training.keep_run``
        writes the last epoch's model, pickle-free, where git keeps it; ``--restart-from`` its ``latest.json``
        goes on from that epoch, and the run's best so far stays the score to beat."""
        from training import keep_run, train

        kept = tmp_path / "kept"
        latest = keep_run.keep(uninterrupted, kept)
        metrics = json.loads(latest.read_text())["validation_metrics"]
        best = json.loads((uninterrupted / "best.json").read_text())["validation_metrics"]
        assert metrics["epoch"] == 2 and (metrics["best_epoch"], metrics["best_macro_f1"]) == (
            best["epoch"], pytest.approx(best["macro_f1"]))
        assert sorted(p.name for p in kept.iterdir()) == ["latest.json", "latest.safetensors", "metrics.jsonl",
                                                          "run.json"]
        reference = final_weights(uninterrupted)
        from safetensors.torch import load_file

        for name, tensor in load_file(kept / "latest.safetensors").items():  # the last epoch's model, in float16
            want = reference[name].half() if reference[name].is_floating_point() else reference[name]
            torch.testing.assert_close(tensor, want, rtol=0, atol=0, msg=name)
        out = tmp_path / "restarted"
        args = staged_args(tiny_manifest, out, "--restart-from", str(latest))
        args[args.index("--size-schedule") + 1] = "48:1,64:2"
        args[args.index("--epochs") + 1] = "3"
        assert train.main(args) == 0
        (third,) = records(out)
        assert (third["epoch"], third["step"]) == (3, 12)  # after the kept epoch 2, at the schedule's step
        assert third["is_best"] == (third["macro_f1"] > best["macro_f1"])


    def test_a_finished_runs_best_epoch_is_kept_in_float16_and_starts_a_new_stage(self, tiny_manifest,
                                                                                  uninterrupted, tmp_path):
        from safetensors.torch import load_file
        from training import keep_run, train

        kept = tmp_path / "kept"
        best = keep_run.keep_best(uninterrupted, kept)
        card = json.loads(best.read_text())
        assert card["validation_metrics"] == json.loads((uninterrupted / "best.json").read_text())["validation_metrics"]
        assert (card["weights_file"], card["weights_dtype"]) == ("best.safetensors", "float16")
        assert sorted(p.name for p in kept.iterdir()) == ["best.json", "best.safetensors", "metrics.jsonl", "run.json"]
        reference = load_file(uninterrupted / "best.safetensors")
        for name, tensor in load_file(kept / "best.safetensors").items():
            want = reference[name].half() if reference[name].is_floating_point() else reference[name]
            torch.testing.assert_close(tensor, want, rtol=0, atol=0, msg=name)
        torn = tmp_path / "torn"  # stopped after writing best.safetensors, before best.json
        shutil.copytree(uninterrupted, torn)
        (torn / "best.safetensors").write_bytes((torn / "best.safetensors").read_bytes() + b" ")
        with pytest.raises(ValueError, match="sha256 is not the one"):
            keep_run.keep_best(torn, tmp_path / "kept_torn")
        args = staged_args(tiny_manifest, tmp_path / "next", "--init-from", str(best))
        args[args.index("--size-schedule") + 1] = "64:1"
        args[args.index("--epochs") + 1] = "1"
        assert train.main(args) == 0


class TestDistillationAcrossSizes:
    def test_the_teacher_sees_the_batch_at_its_own_size(self):
        from types import SimpleNamespace

        from training.distill import DistillationLoss

        seen = []

        class Recorder(torch.nn.Module):
            def forward(self, x):
                seen.append(x.clone())
                return torch.zeros(len(x), 3)

        card = SimpleNamespace(mean=[0.0] * 3, std=[1.0] * 3, input_size=32)
        loss = DistillationLoss(Recorder(), card, [0.0] * 3, [1.0] * 3, weight=0.5, temperature=2.0,
                                label_smoothing=0.0)
        flat = torch.full((2, 3, 16, 16), 0.25)
        loss(torch.zeros(2, 3), torch.tensor([0, 1]), flat)
        assert seen[0].shape == (2, 3, 32, 32)
        torch.testing.assert_close(seen[0], torch.full((2, 3, 32, 32), 0.25))  # interpolation keeps a flat image

    def test_a_run_folder_names_its_best_card_and_an_unfinished_one_is_refused(self, tmp_path):
        from training.distill import card_path_of

        (tmp_path / "best.json").write_text("{}")
        assert card_path_of(tmp_path) == tmp_path / "best.json"
        empty = tmp_path / "empty"
        empty.mkdir()
        with pytest.raises(ValueError, match="without best.json"):
            card_path_of(empty)

    def test_smoke_train_at_64_px_distilled_from_a_224_px_run_folder(self, tiny_manifest, tmp_path):
        from training import train

        teacher = tmp_path / "teacher"
        teacher.mkdir()
        bundled = Path(__file__).resolve().parents[1] / "resources/models"
        card = json.loads((bundled / "efficientnet-lite0.json").read_text())
        (teacher / card["weights_file"]).symlink_to(bundled / card["weights_file"])
        (teacher / "best.json").write_text(json.dumps(card))
        out = tmp_path / "student"
        args = staged_args(tiny_manifest, out, "--teacher", str(teacher), "--stop-at-step", "2")
        assert train.main(args) == 0
        assert np.isfinite(torch.load(out / "last.pt", map_location="cpu", weights_only=True)["epoch_loss_sum"])
        assert "teacher" in (out / "train.log").read_text()

    def test_teacher_sizes_reports_each_size(self, tiny_manifest, capsys):
        from training import teacher_sizes

        card = Path(__file__).resolve().parents[1] / "resources/models/efficientnet-lite0.json"
        assert teacher_sizes.main(["--teacher", str(card), "--manifest", str(tiny_manifest), "--sizes", "96",
                                   "--limit", "6"]) == 0
        lines = capsys.readouterr().out.splitlines()
        assert "6 validation films" in lines[0]
        assert lines[1].startswith("224 px -> 224 px:") and lines[1].endswith("same call as at 224 px for 1.000")
        assert lines[2].startswith("96 px -> 224 px: accuracy ")
