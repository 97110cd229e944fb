"""``python -m training.ensemble_card`` on real cxr3 films with two random-weight members, and
``training.evaluate --card`` on the ensemble card it writes."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from cxr_engine.models.ensemble import ensemble_logits  # noqa: E402
from cxr_engine.models.ensemble_card import EnsembleCard  # noqa: E402
from cxr_engine.models.model_card import load_card  # noqa: E402
from training import metrics as M  # noqa: E402
from training.evaluate import CACHE_FILE, LogitCache, label_indices  # noqa: E402
from training.operating_point import choose  # noqa: E402

from model_factory import make_random_model  # noqa: E402
from test_evaluate import tiny_rows, write_manifest  # noqa: E402


@pytest.fixture(scope="module")
def made(cxr3_dir, tmp_path_factory):
    from training import ensemble_card

    torch.set_num_threads(1)
    tmp = tmp_path_factory.mktemp("ensemble_tool")
    models, reports = tmp / "models", tmp / "reports"
    rows = tiny_rows(cxr3_dir)
    manifest = write_manifest(rows, tmp / "split_manifest.csv")
    for name, seed in (("member-a", 1), ("member-b", 2)):
        make_random_model(models, name=name, input_size=64, seed=seed)
    argv = ["--member", "member-a:2", "--member", "member-b", "--name", "avg", "--manifest", str(manifest),
            "--models-dir", str(models), "--reports-dir", str(reports), "--device", "cpu", "--batch-size", "8"]
    assert ensemble_card.main(argv) == 0
    return {"models": models, "reports": reports, "rows": rows, "manifest": manifest, "tmp": tmp, "argv": argv}


def test_the_card_is_written_with_offsets_and_temperature_from_validation(made):
    card = load_card(made["models"] / "avg.json")
    assert isinstance(card, EnsembleCard) and not card.meets_bar
    assert [(m["card"], m["weight"]) for m in card.members] == [("member-a", 2.0), ("member-b", 1.0)]
    assert [m["weights_sha256"] for m in card.members] == [c.weights_sha256 for c in card.member_cards]
    val = [r for r in made["rows"] if r["split"] == "val"]
    labels = label_indices(val)
    # The members' validation logits, as cached by the tool in each member's evaluation cache.
    logits = []
    for name in ("member-a", "member-b"):
        cache = LogitCache(made["reports"] / name / CACHE_FILE)
        assert cache.arrays["val"].shape == (len(val), 3)
        logits.append(cache.arrays["val"])
    averaged = ensemble_logits(logits, [2.0, 1.0], np.zeros(3))
    offsets, _, _ = choose(val, averaged)
    assert card.logit_offsets == offsets.tolist() and card.logit_offsets[0] == 0.0
    assert card.temperature == pytest.approx(M.fit_temperature(averaged + offsets, labels))
    assert card.validation_metrics["n"] == len(val)
    assert set(card.validation_metrics["members_alone"]) == {"member-a", "member-b"}
    assert "training.ensemble_card" in card.created_by_command


def test_a_nested_ensemble_or_a_missing_member_is_refused(made):
    from training import ensemble_card

    base = ["--manifest", str(made["manifest"]), "--models-dir", str(made["models"]), "--device", "cpu",
            "--reports-dir", str(made["reports"])]
    assert ensemble_card.main(["--member", "avg", "--member", "member-a", "--name", "nested", *base]) == 2
    assert ensemble_card.main(["--member", "absent", "--member", "member-a", "--name", "other", *base]) == 2
    assert ensemble_card.main(["--member", "member-a", "--member", "member-b", "--name", "member-a", *base]) == 2
    assert not (made["models"] / "nested.json").exists() and not (made["models"] / "other.json").exists()


def test_evaluate_accepts_the_ensemble_card(made, dicom_dir):
    from training import evaluate

    out = made["tmp"] / "report"
    argv = ["--card", str(made["models"] / "avg.json"), "--manifest", str(made["manifest"]), "--out", str(out),
            "--batch-size", "8", "--device", "cpu", "--montage-per-kind", "1", "--no-shift-test",
            "--no-lung-checks", "--heatmap-films-per-class", "1", "--reports-dir", str(made["reports"])]
    assert evaluate.main(argv) == 0
    results = json.loads((out / "metrics.json").read_text(encoding="utf-8"))
    card = load_card(made["models"] / "avg.json")
    # The average's test logits are its members' cached test logits combined by the engine's formula.
    test = [r for r in made["rows"] if r["split"] == "test"]
    member_test = [LogitCache(made["reports"] / name / CACHE_FILE).arrays["test"] for name in ("member-a", "member-b")]
    z = ensemble_logits(member_test, card.member_weights, card.logit_offsets)
    accuracy = float(np.mean(z.argmax(axis=1) == label_indices(test)))
    assert results["test"]["after_temperature"]["accuracy"] == pytest.approx(accuracy)
    assert results["model"] == "avg" and results["architecture"] == "ensemble"
    assert results["weights_sha256"] == card.weights_sha256
    assert results["test"]["after_temperature"]["n"] == sum(r["split"] == "test" for r in made["rows"])
    assert isinstance(results["bar"]["meets_bar"], bool) and (out / "gradcam_montage.png").is_file()
    from training import ensemble_card

    record = ["--name", "avg", "--models-dir", str(made["models"]), "--record", str(out / "metrics.json")]
    assert ensemble_card.main(record) == 0
    recorded = load_card(made["models"] / "avg.json")
    assert recorded.test_metrics["accuracy"] == results["test"]["after_temperature"]["accuracy"]
    assert recorded.meets_bar == results["bar"]["meets_bar"]
    assert recorded.test_metrics["bar_failures"] == results["bar"]["failures"]  # what the app shows
    assert recorded.temperature == results["temperature"] and recorded.members == card.members
    assert "training.evaluate" in recorded.created_by_command
    other = made["tmp"] / "other_metrics.json"
    other.write_text(json.dumps({**results, "weights_sha256": "0" * 64}), encoding="utf-8")
    assert ensemble_card.main([*record[:-1], str(other)]) == 2  # another ensemble's evaluation


def test_the_averages_logits_from_member_caches_are_the_engines_own(made, cxr3_dir):
    """What training.evaluate combines from the members' caches equals what the app's averaged model
    computes on the same films (its logits z, up to a per-film constant that softmax ignores)."""
    from cxr_engine.models.backends import create_classifier
    from cxr_engine.reading.read import read_image
    from training.evaluate import split_logits, parse_args

    card = load_card(made["models"] / "avg.json")
    rows = [r for r in made["rows"] if r["split"] == "test"][:3]
    args = parse_args(["--card", str(made["models"] / "avg.json"), "--manifest", str(made["manifest"]),
                       "--device", "cpu", "--reports-dir", str(made["tmp"] / "fresh_reports")])
    from_members = split_logits(args, None, card, None, "first3", rows)
    classifier = create_classifier(card, backend="torch", device="cpu")
    engine_z, _ = classifier.logits_and_features([read_image(r["path"]) for r in rows])
    classifier.close()
    assert np.allclose(M.softmax(from_members), M.softmax(engine_z), atol=1e-5)
    assert (made["tmp"] / "fresh_reports" / "member-a" / CACHE_FILE).is_file()


def test_an_averaged_models_loso_averages_one_twin_per_member(made):
    from test_evaluate import make_run
    from training import evaluate

    rows = [r for r in made["rows"] if r["source"] != "covid_cxnet"]
    twins = [make_run(made["tmp"] / f"twin_{i}", rows, seed=10 + i) for i in range(2)]
    base = ["--card", str(made["models"] / "avg.json"), "--manifest", str(made["manifest"]), "--batch-size", "8",
            "--device", "cpu", "--montage-per-kind", "1", "--no-shift-test", "--no-lung-checks",
            "--heatmap-films-per-class", "1", "--reports-dir", str(made["reports"])]
    out = made["tmp"] / "report_loso"
    with pytest.raises(ValueError, match="one twin per member"):
        evaluate.main([*base, "--out", str(out), "--loso-run", str(twins[0])])
    assert evaluate.main([*base, "--out", str(out), "--loso-run", str(twins[0]), "--loso-run", str(twins[1])]) == 0
    loso = json.loads((out / "metrics.json").read_text(encoding="utf-8"))["loso"]
    assert loso["held_out_source"] == "covid_cxnet" and loso["run"] == f"{twins[0]} + {twins[1]}"
    assert loso["n"] == sum(r["source"] == "covid_cxnet" for r in made["rows"])
    caches = [LogitCache(made["reports"] / name / CACHE_FILE) for name in ("member-a", "member-b")]
    twin_val = [c.arrays["loso_covid_cxnet_val"] for c in caches]
    offsets, _, _ = choose([r for r in rows if r["split"] == "val"], ensemble_logits(twin_val, [2.0, 1.0], np.zeros(3)))
    assert loso["with_offsets_replayed"]["offsets"] == offsets.tolist()
    assert "chosen on the twins' validation split" in (out / "report.md").read_text(encoding="utf-8")
    z = ensemble_logits([c.arrays["loso_covid_cxnet"] for c in caches], [2.0, 1.0], np.zeros(3))
    held_out = [r for r in made["rows"] if r["source"] == "covid_cxnet"]
    replayed = float(np.mean((z + offsets).argmax(axis=1) == label_indices(held_out)))
    assert loso["with_offsets_replayed"]["accuracy"] == pytest.approx(replayed)
    assert loso["accuracy"] == pytest.approx(float(np.mean(z.argmax(axis=1) == label_indices(held_out))))


def test_scope_score_gives_an_averaged_model_an_msp_threshold_from_validation(made, tmp_path):
    """training.scope_score on an ensemble card: MSP and energy from z (no pooled features, so no
    Mahalanobis), the MSP threshold chosen on validation and written where the engine reads it."""
    import csv
    import shutil

    from cxr_engine.models.scope_score import SCORE_KEY, msp_score, threshold
    from training import scope_score

    models = tmp_path / "models"
    shutil.copytree(made["models"], models)
    films = [Path(r["path"]) for r in made["rows"][:4]]  # stand-ins for films with other findings
    other = tmp_path / "other.csv"
    with open(other, "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, ["file", "finding", "age_group"])
        writer.writeheader()
        writer.writerows({"file": str(f), "finding": "effusion", "age_group": "adult"} for f in films)
    argv = ["--card", str(models / "avg.json"), "--manifest", str(made["manifest"]), "--other", str(other),
            "--report", str(tmp_path / "report"), "--reports-dir", str(made["reports"]), "--write-card"]
    assert scope_score.main(argv) == 0
    summary = json.loads((tmp_path / "report" / "summary.json").read_text(encoding="utf-8"))
    assert set(summary["scores"]) == {"msp", "energy"}
    card = load_card(models / "avg.json")
    entry = json.loads((models / "avg.json").read_text(encoding="utf-8"))[SCORE_KEY]
    assert threshold(card) == entry["threshold"] == summary["scores"]["msp"]["threshold"]
    val = [r for r in made["rows"] if r["split"] == "val"]
    member_val = [LogitCache(made["reports"] / name / CACHE_FILE).arrays["val"] for name in ("member-a", "member-b")]
    z = ensemble_logits(member_val, card.member_weights, card.logit_offsets)
    flagged = float(np.mean(msp_score(card, z) > entry["threshold"]))
    assert flagged == pytest.approx(summary["scores"]["msp"]["val_flagged"]) and flagged <= 0.5
    assert len(val) == len(z) and "--reports-dir" in entry["created_by_command"]


def test_a_member_is_evaluated_from_the_run_its_float16_weights_came_from(made, tmp_path):
    """--member-run NAME=RUN: the run's float32 weights stand in for the shipped float16 member (its
    evaluation cache then serves), after checking they round to exactly the shipped weights."""
    import dataclasses

    from cxr_engine.models.weights import load_model, save_weights
    from test_evaluate import make_run
    from training.evaluate import card_from_run, members, parse_args

    run = make_run(tmp_path / "run_a", made["rows"], seed=21)
    run_model = load_model(card_from_run(run))
    models = tmp_path / "models"
    models.mkdir()
    for name in ("member-a", "member-b", "avg"):
        (models / f"{name}.json").write_bytes((made["models"] / f"{name}.json").read_bytes())
    (models / "member-b.safetensors").write_bytes((made["models"] / "member-b.safetensors").read_bytes())
    member_a = load_card(models / "member-a.json")
    sha = save_weights(run_model, models / "member-a.safetensors", half=True)
    dataclasses.replace(member_a, architecture="efficientnet_b0", input_size=64, weights_sha256=sha,
                        weights_dtype="float16").save(models / "member-a.json")
    avg = json.loads((models / "avg.json").read_text(encoding="utf-8"))
    avg["members"][0]["weights_sha256"] = sha
    (models / "avg.json").write_text(json.dumps(avg), encoding="utf-8")
    card = load_card(models / "avg.json")
    argv = ["--card", str(models / "avg.json"), "--manifest", str(made["manifest"]), "--device", "cpu",
            "--reports-dir", str(tmp_path / "reports"), "--member-run", f"member-a={run}"]
    evaluated = [m[0] for m in members(parse_args(argv), card)]
    assert evaluated[0].weights_sha256 != sha and evaluated[0].weights_dtype == "float32"
    assert evaluated[1].weights_sha256 == card.member_cards[1].weights_sha256
    other_run = make_run(tmp_path / "run_b", made["rows"], seed=22)
    with pytest.raises(ValueError, match="not this run's"):
        members(parse_args([*argv[:-1], f"member-a={other_run}"]), card)
    # training.ensemble_card takes the same --member-run: the run's validation logits, in the given cache.
    from training import ensemble_card
    from training.evaluate import fingerprint

    cache_file = tmp_path / "run_a_logits.npz"
    assert ensemble_card.main(["--member", "member-a", "--member", "member-b", "--name", "avg2", "--manifest",
                               str(made["manifest"]), "--models-dir", str(models), "--reports-dir",
                               str(tmp_path / "reports"), "--device", "cpu", "--member-run", f"member-a={run}",
                               "--member-cache", f"member-a={cache_file}"]) == 0
    val_paths = [r["path"] for r in made["rows"] if r["split"] == "val"]
    assert LogitCache(cache_file).get("val", fingerprint(card_from_run(run), val_paths, "plain")) is not None
