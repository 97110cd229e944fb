"""Evaluation and export: metric functions against hand-computed values, then a tiny end-to-end run."""
from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import numpy as np
import pytest

from training import metrics as M


class TestClassificationMetrics:
    # true 0,0,1,1,2,2; predicted 0,1,1,1,2,0
    LABELS = [0, 0, 1, 1, 2, 2]
    PREDS = [0, 1, 1, 1, 2, 0]

    def test_confusion_matrix_rows_are_true_classes(self):
        confusion = M.confusion_matrix(self.LABELS, self.PREDS, 3)
        assert confusion.tolist() == [[1, 1, 0], [0, 2, 0], [1, 0, 1]]

    def test_precision_recall_f1_by_hand(self):
        precision, recall, f1 = M.precision_recall_f1(M.confusion_matrix(self.LABELS, self.PREDS, 3))
        np.testing.assert_allclose(precision, [1 / 2, 2 / 3, 1.0])
        np.testing.assert_allclose(recall, [1 / 2, 1.0, 1 / 2])
        np.testing.assert_allclose(f1, [0.5, 0.8, 2 / 3])

    def test_accuracy_and_macro_f1_by_hand(self):
        confusion = M.confusion_matrix(self.LABELS, self.PREDS, 3)
        assert M.accuracy(self.LABELS, self.PREDS) == pytest.approx(4 / 6)
        assert M.macro_f1(confusion) == pytest.approx((0.5 + 0.8 + 2 / 3) / 3)

    def test_macro_f1_counts_only_classes_with_images(self):
        # class 2 has no images but is predicted once: its F1 is 0 and left out of the mean
        confusion = M.confusion_matrix([0, 0, 1, 1], [0, 2, 1, 1], 3)
        precision, recall, f1 = M.precision_recall_f1(confusion)
        assert np.isnan(recall[2]) and f1[2] == 0.0
        assert M.macro_f1(confusion) == pytest.approx((2 / 3 + 1.0) / 2)

    def test_a_class_never_predicted_has_f1_zero(self):
        precision, recall, f1 = M.precision_recall_f1(M.confusion_matrix([0, 1], [0, 0], 2))
        assert precision[1] == 0.0 and recall[1] == 0.0 and f1[1] == 0.0

    def test_auroc_by_hand(self):
        pytest.importorskip("sklearn")  # a training extra
        # positives 0.35, 0.8 vs negatives 0.1, 0.4: 3 of 4 pairs ranked right
        scores = np.array([0.1, 0.4, 0.35, 0.8])
        probs = np.stack([1 - scores, scores, np.zeros(4)], axis=1)
        auroc = M.auroc_one_vs_rest([0, 0, 1, 1], probs)
        assert auroc[0] == pytest.approx(0.75) and auroc[1] == pytest.approx(0.75)
        assert auroc[2] is None  # class absent

    def test_summary_has_every_field_and_strict_json(self):
        pytest.importorskip("sklearn")  # a training extra
        probs = M.softmax(np.log(np.array([[0.7, 0.2, 0.1], [0.1, 0.8, 0.1], [0.5, 0.4, 0.1]])))
        summary = M.summarise([0, 1, 1], probs, ("normal", "pneumonia", "covid"))
        assert summary["n"] == 3 and summary["accuracy"] == pytest.approx(2 / 3)
        assert summary["support"] == {"normal": 1, "pneumonia": 2, "covid": 0}
        assert summary["f1"]["covid"] is None and summary["recall"]["covid"] is None
        json.dumps(summary, allow_nan=False)


class TestProbabilities:
    def test_softmax_and_nll_by_hand(self):
        logits = np.array([[0.0, math.log(3.0)]])
        np.testing.assert_allclose(M.softmax(logits), [[0.25, 0.75]])
        assert M.nll(logits, [1]) == pytest.approx(-math.log(0.75))
        # T = 2 halves the logits: p = sqrt(3) / (1 + sqrt(3))
        assert M.softmax(logits, 2.0)[0, 1] == pytest.approx(math.sqrt(3) / (1 + math.sqrt(3)))

    @pytest.mark.parametrize("true_t", [0.5, 2.0])
    def test_temperature_scaling_recovers_a_known_temperature(self, true_t):
        pytest.importorskip("scipy")  # a training extra
        rng = np.random.default_rng(0)
        logits = rng.normal(0.0, 3.0, size=(20000, 3))
        probs = M.softmax(logits, true_t)
        labels = (rng.random(len(probs))[:, None] > np.cumsum(probs, axis=1)).sum(axis=1)
        fitted = M.fit_temperature(logits, labels)
        assert fitted == pytest.approx(true_t, rel=0.05)
        assert M.nll(logits, labels, fitted) <= min(M.nll(logits, labels, 1.0), M.nll(logits, labels, true_t)) + 1e-9

    def test_temperature_never_changes_the_predicted_class(self):
        logits = np.random.default_rng(1).normal(size=(50, 3))
        np.testing.assert_array_equal(M.softmax(logits, 0.3).argmax(1), M.softmax(logits, 4.0).argmax(1))


class TestCalibration:
    # confidences 0.9 (right), 0.9 (wrong), 0.58 (right), 0.58 (right)
    PROBS = np.array([[0.9, 0.05, 0.05], [0.9, 0.05, 0.05], [0.58, 0.22, 0.20], [0.20, 0.58, 0.22]])
    LABELS = [0, 1, 0, 1]

    def test_reliability_bins_by_hand(self):
        bins = M.reliability_bins(self.PROBS, self.LABELS)
        assert len(bins["edges"]) == 16 and len(bins["count"]) == 15
        # 0.9 lies in (13/15, 14/15], bin 13; 0.58 in (8/15, 9/15], bin 8
        assert bins["count"][13] == 2 and bins["count"][8] == 2 and sum(bins["count"]) == 4
        assert bins["accuracy"][13] == pytest.approx(0.5) and bins["confidence"][13] == pytest.approx(0.9)
        assert bins["accuracy"][8] == pytest.approx(1.0) and bins["confidence"][8] == pytest.approx(0.58)
        assert bins["accuracy"][0] is None

    def test_ece_by_hand(self):
        # 2/4 * |0.5 - 0.9| + 2/4 * |1.0 - 0.58|
        assert M.expected_calibration_error(self.PROBS, self.LABELS) == pytest.approx(0.2 + 0.21)

    def test_certainty_lands_in_the_last_bin_and_perfect_calibration_is_zero(self):
        probs = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])
        assert M.reliability_bins(probs, [0, 1])["count"][14] == 2
        assert M.expected_calibration_error(probs, [0, 1]) == 0.0


class TestGroupMetrics:
    CLASSES = ("normal", "pneumonia", "covid")
    ROWS = [
        {"source": "A", "label": "normal", "pred": "normal"},
        {"source": "A", "label": "normal", "pred": "pneumonia"},
        {"source": "A", "label": "pneumonia", "pred": "pneumonia"},
        {"source": "B", "label": "covid", "pred": "covid"},
        {"source": "B", "label": "covid", "pred": "normal"},
    ]

    def test_by_hand(self):
        groups = M.group_metrics(self.ROWS, "source", self.CLASSES)
        a, b = groups["A"], groups["B"]
        assert a["n"] == 3 and a["accuracy"] == pytest.approx(2 / 3)
        assert a["recall"] == {"normal": 0.5, "pneumonia": 1.0}
        assert a["macro_f1"] == pytest.approx(2 / 3)  # F1 normal 2/3, pneumonia 2/3
        assert b["recall"] == {"covid": 0.5} and b["macro_f1"] is None
        assert b["predicted"] == {"normal": 1, "pneumonia": 0, "covid": 1}

    def test_ece_per_group_when_probabilities_are_given(self):
        probs = np.full((5, 3), 1 / 3)
        groups = M.group_metrics(self.ROWS, "source", self.CLASSES, probs)
        assert "ece" in groups["A"] and "ece" not in M.group_metrics(self.ROWS, "source", self.CLASSES)["A"]


class TestEvaluateHelpers:
    def test_lung_mask_covers_the_central_rectangle(self):
        from training.evaluate import lung_mask

        mask = lung_mask(100)
        assert mask.sum() == 75 * 70 and mask[15, 15] and mask[89, 84] and not mask[14, 50] and not mask[50, 85]

    def test_mask_lungs_fills_with_the_border_median_and_keeps_the_input(self):
        from training.evaluate import lung_mask, mask_lungs

        grey = np.random.default_rng(0).random((64, 64)).astype(np.float32)
        before = grey.copy()
        masked = mask_lungs(grey)
        np.testing.assert_array_equal(grey, before)
        assert np.all(masked[lung_mask(64)] == pytest.approx(float(np.median(grey[~lung_mask(64)]))))
        np.testing.assert_array_equal(masked[~lung_mask(64)], grey[~lung_mask(64)])

    def test_shortcut_checks_count_adult_pneumonia(self):
        from training.evaluate import shortcut_checks

        rows = [{"label": "pneumonia", "pred": p, "age_group": "adult", "source": "s"} for p in ("pneumonia", "covid")]
        rows.append({"label": "pneumonia", "pred": "pneumonia", "age_group": "pediatric", "source": "k"})
        checks = {c["check"]: c for c in shortcut_checks(rows)}
        adult = checks["adult pneumonia called pneumonia"]
        assert (adult["n"], adult["hits"], adult["rate"]) == (2, 1, 0.5)
        assert checks["pediatric pneumonia called pneumonia"]["rate"] == 1.0

    def test_bar_names_every_failed_criterion(self):
        from training.evaluate import check_bar

        ok, failures = check_bar({"accuracy": 0.95, "f1": {"normal": 0.95, "pneumonia": 0.89, "covid": 0.93},
                                  "ece": 0.06})
        assert not ok and len(failures) == 2
        assert any("pneumonia" in f for f in failures) and any("ECE" in f for f in failures)
        assert check_bar({"accuracy": 0.9, "f1": {"normal": 0.9}, "ece": 0.05}) == (True, [])
        ok, failures = check_bar({"accuracy": 0.9, "f1": {"normal": 0.9}, "ece": 0.05}, limit=300)
        assert not ok and "subset" in failures[0]

    def test_help(self):
        from training import evaluate, export

        for module in (evaluate, export):
            with pytest.raises(SystemExit) as exit_info:
                module.main(["--help"])
            assert exit_info.value.code == 0


# --------------------------------------------------------------------------- end to end

COLUMNS = ["path", "label", "source", "patient_id", "age_group", "split", "sample_weight", "licence"]


def write_manifest(rows: list[dict], path: Path) -> Path:
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, COLUMNS, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
    return path


def tiny_rows(cxr3_dir: Path) -> list[dict]:
    """One image per label x source in train, val and test (distinct patients); 2 per pair in test."""
    quota = {"train": 1, "val": 1, "test": 2}
    with open(cxr3_dir / "manifest.csv", newline="", encoding="utf-8") as handle:
        source_rows = list(csv.DictReader(handle))
    taken: dict[tuple, int] = {}
    patients, picked = set(), []
    for row in source_rows:
        if row["patient_id"] in patients:
            continue
        for split, n in quota.items():
            key = (split, row["label"], row["source"])
            if taken.get(key, 0) < n:
                taken[key] = taken.get(key, 0) + 1
                patients.add(row["patient_id"])
                picked.append({**row, "path": str(cxr3_dir / row["file"]), "split": split, "sample_weight": "1"})
                break
    return picked


def make_run(folder: Path, rows: list[dict], seed: int) -> Path:
    """A training-run folder with random efficientnet_b0 weights at 64 px."""
    import torch

    from cxr_engine.pixels.preprocessing import PREPROCESSING_VERSION
    from cxr_engine.models.registry import build_model
    from cxr_engine.models.weights import save_weights, sha256_file

    folder.mkdir(parents=True)
    manifest = write_manifest(rows, folder / "split_manifest.csv")
    torch.manual_seed(seed)
    save_weights(build_model("efficientnet_b0", num_classes=3), folder / "best.safetensors")
    command = f"python -m training.train --manifest {manifest} --arch efficientnet_b0 --size 64 --out {folder}"
    run = {"command": command, "preprocessing_version": PREPROCESSING_VERSION, "manifest": str(manifest),
           "manifest_sha256": sha256_file(manifest),
           "args": {"arch": "efficientnet_b0", "size": 64, "manifest": str(manifest), "split_manifest": str(manifest)}}
    (folder / "run.json").write_text(json.dumps(run), encoding="utf-8")
    (folder / "metrics.jsonl").write_text(json.dumps({"epoch": 1, "is_best": True}) + "\n", encoding="utf-8")
    return folder


@pytest.fixture(scope="module")
def evaluated(cxr3_dir, dicom_dir, tmp_path_factory):
    """A random-weights run, a LOSO run without covid_cxnet, and the evaluation of both."""
    torch = pytest.importorskip("torch")  # evaluation runs the torch model

    from training import evaluate

    torch.set_num_threads(1)
    tmp = tmp_path_factory.mktemp("evaluate")
    rows = tiny_rows(cxr3_dir)
    run = make_run(tmp / "run", rows, seed=0)
    loso = make_run(tmp / "loso", [r for r in rows if r["source"] != "covid_cxnet"], seed=1)
    out = tmp / "report"
    argv = ["--run", str(run), "--out", str(out), "--batch-size", "8", "--device", "cpu",
            "--montage-per-kind", "2", "--loso-run", str(loso), "--external", str(dicom_dir)]
    assert evaluate.main(argv) == 0
    return {"run": run, "out": out, "rows": rows, "tmp": tmp, "argv": argv}


def test_evaluate_writes_report_metrics_and_figures(evaluated):
    out, rows = evaluated["out"], evaluated["rows"]
    results = json.loads((out / "metrics.json").read_text())
    n_test = sum(r["split"] == "test" for r in rows)
    assert results["test"]["after_temperature"]["n"] == n_test == results["lungs_masked"]["n"]
    assert results["temperature"] > 0 and results["limit"] is None
    assert set(results["test"]["by_source"]) == {r["source"] for r in rows if r["split"] == "test"}
    assert results["loso"]["held_out_source"] == "covid_cxnet"
    assert results["loso"]["n"] == sum(r["source"] == "covid_cxnet" for r in rows)
    report = (out / "report.md").read_text()
    for heading in ("## Per source", "## Per age group", "## Lungs-masked test", "## Shortcut checks",
                    "## Processing-shift test", "## Framing-shift test", "## Populations a reading room meets",
                    "## Leave one source out", "## Unlabelled files from outside",
                    "## Grad-CAM montage", "python -m training.evaluate"):
        assert heading in report
    shifts = results["processing_shift"]["shifts"]
    assert set(shifts) == {"sharpen", "blur", "noise", "half resolution", "jpeg q40"}
    assert all(row["n"] == n_test for row in shifts.values())
    framing = results["framing_shift"]["shifts"]
    assert len(framing) == 5 and all(row["n"] == n_test for row in framing.values())
    assert "adult_pneumonia_rsna" in results["test"]["populations"]
    external = results["external"][0]
    assert len(external["files"]) == len(list(Path(external["folder"]).glob("*.dcm")))
    assert sum(external["predicted"].values()) == sum("predicted" in f for f in external["files"]) > 0
    for row in external["files"]:
        if "probabilities" in row:
            assert sum(row["probabilities"].values()) == pytest.approx(1.0)
    for figure in results["figures"].values():
        assert (out / figure).stat().st_size > 1000
        assert f"]({figure})" in report
    with np.load(out / "logits.npz") as cache:
        assert cache["test"].shape == (n_test, 3) and cache["test_masked"].shape == (n_test, 3)
        assert cache["test_shift_half_resolution"].shape == (n_test, 3)


def test_export_writes_a_verified_card_that_reproduces_the_test_accuracy(evaluated):
    from cxr_engine.models.torch_backend import Classifier
    from cxr_engine.reading.read import read_image
    from cxr_engine.models.model_card import ModelCard
    from cxr_engine.models.weights import sha256_file, verify_weights
    from training import export

    models = evaluated["tmp"] / "models"
    argv = ["--run", str(evaluated["run"]), "--name", "tiny-test", "--report", str(evaluated["out"] / "metrics.json"),
            "--models-dir", str(models), "--device", "cpu", "--batch-size", "8"]
    assert export.main(argv) == 0
    card = ModelCard.load(models / "tiny-test.json")
    assert verify_weights(card) == models / "tiny-test.safetensors"
    assert card.weights_path.stat().st_size < 16 * 2**20
    assert card.weights_dtype in ("float16", "float32")
    assert card.weights_dtype == ("float16" if card.test_metrics["fp16_check"]["within_tolerance"] else "float32")
    assert not card.meets_bar and "Does NOT meet" in card.notes
    assert "Random initialisation" in card.notes and "Distilled" not in card.notes
    assert card.temperature == json.loads((evaluated["out"] / "metrics.json").read_text())["temperature"]
    assert card.training_data["split_manifest_sha256"] == sha256_file(evaluated["run"] / "split_manifest.csv")
    assert "covid_cxnet" in card.training_data["sources"]
    assert card.validation_metrics["macro_f1"] is not None and card.intended_use.startswith("Research use only")
    assert "python -m training.export" in card.created_by_command
    assert "lungs_masked_accuracy" in card.test_metrics and "by_age_group" in card.test_metrics

    test = [r for r in evaluated["rows"] if r["split"] == "test"]
    predictions = Classifier(card, device="cpu").predict([read_image(r["path"]) for r in test])
    accuracy = np.mean([p.label == r["label"] for p, r in zip(predictions, test)])
    assert accuracy == pytest.approx(card.test_metrics["accuracy"])


def test_export_refuses_weights_that_changed_since_evaluation(evaluated, tmp_path):
    import shutil

    import torch

    from cxr_engine.models.registry import build_model
    from cxr_engine.models.weights import save_weights
    from training import export

    run = tmp_path / "run"
    shutil.copytree(evaluated["run"], run)
    torch.manual_seed(5)
    save_weights(build_model("efficientnet_b0", num_classes=3), run / "best.safetensors")
    with pytest.raises(ValueError, match="evaluate again"):
        export.main(["--run", str(run), "--name", "x", "--report", str(evaluated["out"] / "metrics.json"),
                     "--models-dir", str(tmp_path / "models")])


def test_a_loso_run_distilled_from_a_teacher_that_saw_the_source_is_refused(cxr3_dir, tmp_path):
    pytest.importorskip("torch")  # make_run writes weights
    from training.evaluate import held_out_source

    rows = tiny_rows(cxr3_dir)
    loso = make_run(tmp_path / "loso", [r for r in rows if r["source"] != "covid_cxnet"], seed=1)
    assert held_out_source(loso, rows, None) == "covid_cxnet"
    run = json.loads((loso / "run.json").read_text())
    teacher_run = make_run(tmp_path / "loso_teacher", [r for r in rows if r["source"] != "covid_cxnet"], seed=2)
    (teacher_run / "best.json").write_text(json.dumps({"training_data": {"split_manifest": str(
        teacher_run / "split_manifest.csv")}}))
    run["args"]["teacher"] = str(teacher_run / "best.json")
    (loso / "run.json").write_text(json.dumps(run))
    assert held_out_source(loso, rows, None) == "covid_cxnet"  # a LOSO teacher is fine
    run["args"]["teacher"] = str(teacher_run)  # named by its run folder (training.train --teacher RUN)
    (loso / "run.json").write_text(json.dumps(run))
    assert held_out_source(loso, rows, None) == "covid_cxnet"

    bundled = Path(__file__).resolve().parents[1] / "resources/models/efficientnet-lite0.json"
    run["args"]["teacher"] = str(bundled)  # trained on covid_cxnet: the held-out source leaks through it
    (loso / "run.json").write_text(json.dumps(run))
    with pytest.raises(ValueError, match="through the teacher"):
        held_out_source(loso, rows, None)


def test_shortcut_checks_fail_a_model_that_reads_outside_the_lungs():
    from training.evaluate import check_shortcuts

    masked = {"accuracy": 0.72, "majority_class_accuracy": 0.44}
    loso = {"accuracy": 0.93, "held_out_source": "covid_cxnet"}
    failures = check_shortcuts(masked, loso)
    assert len(failures) == 1 and "reads something other than the lungs" in failures[0]
    assert check_shortcuts({"accuracy": 0.50, "majority_class_accuracy": 0.44}, loso) == []
    assert "not evaluated" in check_shortcuts({"accuracy": 0.4, "majority_class_accuracy": 0.44}, None)[0]
    low = check_shortcuts({"accuracy": 0.4, "majority_class_accuracy": 0.44}, {**loso, "accuracy": 0.6})
    assert "0.600 on covid_cxnet" in low[0]


def test_processing_shift_section_and_check_by_hand():
    pytest.importorskip("sklearn")  # a training extra (AUROC inside metrics.summarise)
    from training.processing_shift import SHIFT_MARGIN, check_shifts, shift_section

    labels = [0, 0, 1, 2]
    plain = np.log(np.array([[.8, .1, .1], [.8, .1, .1], [.1, .8, .1], [.1, .1, .8]]))
    noisy = plain.copy()
    noisy[0] = np.log([.1, .1, .8])  # one normal turned COVID-19
    section = shift_section(labels, plain, {"noise": noisy, "blur": plain.copy()}, 1.0)
    assert section["plain_accuracy"] == 1.0 and section["margin"] == SHIFT_MARGIN
    row = section["shifts"]["noise"]
    assert row["accuracy"] == 0.75 and row["accuracy_drop"] == 0.25 and row["changed"] == 0.25
    assert row["predicted"] == {"normal": 1, "pneumonia": 1, "covid": 2} and row["recall"]["normal"] == 0.5
    assert section["shifts"]["blur"]["accuracy_drop"] == 0.0
    failures = check_shifts(section)
    assert len(failures) == 1 and "'noise' drops 0.250" in failures[0]
    assert check_shifts(None) == []


def test_shifted_images_stay_in_range_and_noise_is_fixed_per_file(cxr3_dir):
    from training.processing_shift import SHIFTS, shifted_display

    path = str(next((cxr3_dir / "images" / "covid").glob("*.jpg")))
    for name in SHIFTS:
        image = shifted_display(path, 224, name)
        assert image.shape == (224, 224) and image.dtype == np.float32 and 0 <= image.min() <= image.max() <= 1
    np.testing.assert_array_equal(shifted_display(path, 224, "noise"), shifted_display(path, 224, "noise"))


def test_the_cards_confounding_note_counts_age_per_label(tmp_path):
    from training.export import confounding_note

    rows = [{"path": f"{i}.png", "label": label, "source": "s", "patient_id": str(i), "age_group": age,
             "split": split, "sample_weight": "1", "licence": ""}
            for i, (label, age, split) in enumerate([("pneumonia", "pediatric", "train"), ("pneumonia", "adult", "train"),
                                                     ("pneumonia", "pediatric", "train"), ("normal", "adult", "train"),
                                                     ("covid", "pediatric", "train"), ("normal", "pediatric", "test")])]
    note = confounding_note(write_manifest(rows, tmp_path / "m.csv"))
    assert note.startswith("Confounding: 2 of the 3 training pneumonia films are of children (1 adults)")
    assert "1 of the 2 normal and COVID-19 films are of adults" in note
    assert "could not be read" in confounding_note(tmp_path / "absent.csv")
