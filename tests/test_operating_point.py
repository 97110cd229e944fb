"""training.operating_point: offsets chosen on validation rows, written into a copy of the run's bias."""
import json

import numpy as np
import pytest

pytest.importorskip("safetensors")

from training import operating_point as op  # noqa: E402


def rows_and_logits():
    """Validation rows where the network under-calls adult pneumonia: its pneumonia logit sits
    0.5 below normal's for 20 adult pneumonia films, while every other film is clearly right."""
    rows, logits = [], []
    for i in range(20):
        rows.append({"label": "pneumonia", "source": "rsna_pneumonia", "age_group": "adult"})
        logits.append([1.0, 0.5, -2.0])
    for i in range(100):
        rows.append({"label": "normal", "source": "nih_cxr14", "age_group": "adult"})
        logits.append([3.0, -1.0, -1.0])
    for i in range(40):
        rows.append({"label": "normal", "source": "kermany_pediatric", "age_group": "pediatric"})
        logits.append([3.0, 0.0, -3.0])
    for i in range(60):
        rows.append({"label": "pneumonia", "source": "kermany_pediatric", "age_group": "pediatric"})
        logits.append([-2.0, 3.0, -2.0])
    for i in range(80):
        rows.append({"label": "covid", "source": "covid_cxnet", "age_group": "adult(presumed)"})
        logits.append([-2.0, -2.0, 3.0])
    return rows, np.array(logits)


def test_no_offset_misses_adult_pneumonia_and_the_chosen_one_finds_it():
    rows, logits = rows_and_logits()
    base = op.figures(rows, logits, np.zeros(3))
    assert base["adult_pneumonia_recall"] == 0.0
    offsets, chosen, table = op.choose(rows, logits)
    assert chosen["violation"] == 0
    assert chosen["adult_pneumonia_recall"] == 1.0
    assert 0.5 < offsets[1] - offsets[0] < 2.0, "pneumonia must gain more than the 0.5 gap, and no more than needed"
    assert chosen["pediatric_normal_called_pneumonia"] <= op.CONSTRAINTS["pediatric_normal_called_pneumonia_max"]
    assert len(table) == len(op.GRID) ** 2


def test_the_smallest_offsets_win_when_none_are_needed():
    rows, logits = rows_and_logits()
    logits[:20] = [-1.0, 2.0, -2.0]
    offsets, chosen, _ = op.choose(rows, logits)
    assert np.all(offsets == 0)


def test_write_run_adds_the_offsets_to_the_bias_only(tmp_path):
    from safetensors.numpy import load_file, save_file

    run, out = tmp_path / "run", tmp_path / "run_op"
    run.mkdir()
    bias = np.array([0.1, -0.2, 0.3], dtype=np.float32)
    weight = np.arange(12, dtype=np.float32).reshape(3, 4)
    save_file({"classifier.bias": bias, "classifier.weight": weight}, str(run / "best.safetensors"))
    (run / "run.json").write_text(json.dumps({"args": {"arch": "tf_efficientnet_lite0"}}))
    (run / "best.json").write_text("{}")
    offsets = np.array([0.0, 0.75, -0.5])
    op.write_run(run, out, offsets, {"accuracy": 1.0}, {"accuracy": 0.9}, "python -m training.operating_point")
    written = load_file(str(out / "best.safetensors"))
    np.testing.assert_allclose(written["classifier.bias"], bias + offsets, atol=1e-6)
    np.testing.assert_array_equal(written["classifier.weight"], weight)
    info = json.loads((out / "run.json").read_text())
    assert info["operating_point"]["logit_offsets"] == {"normal": 0.0, "pneumonia": 0.75, "covid": -0.5}
    assert info["args"]["arch"] == "tf_efficientnet_lite0"


def test_a_run_without_a_classifier_bias_is_refused(tmp_path):
    from safetensors.numpy import save_file

    run = tmp_path / "run"
    run.mkdir()
    save_file({"head.bias": np.zeros(3, dtype=np.float32)}, str(run / "best.safetensors"))
    (run / "run.json").write_text("{}")
    with pytest.raises(ValueError, match="classifier.bias"):
        op.write_run(run, tmp_path / "out", np.zeros(3), {}, {}, "")


def test_the_copied_draft_card_names_the_new_weights_so_the_best_epochs_size_is_kept(tmp_path):
    """A ``--size-schedule`` run's best epoch may be at 160 px: evaluation reads that size from ``best.json``
    only when it names the weights it sits beside (before the fix the copy named the run's, and a 160-px
    DenseNet121 epoch was evaluated at the run's last size)."""
    from safetensors.numpy import save_file

    from cxr_engine.models.weights import sha256_file
    from training.evaluate import best_input_size

    run, out = tmp_path / "run", tmp_path / "run_op"
    run.mkdir()
    save_file({"classifier.bias": np.zeros(3, dtype=np.float32)}, str(run / "best.safetensors"))
    (run / "run.json").write_text(json.dumps({"args": {"arch": "densenet121", "size": 224}}))
    (run / "best.json").write_text(json.dumps({"input_size": 160, "weights_sha256": sha256_file(run / "best.safetensors")}))
    op.write_run(run, out, np.array([0.0, 0.5, -0.25]), {}, {}, "")
    assert best_input_size(out, sha256_file(out / "best.safetensors")) == 160
    assert json.loads((out / "best.json").read_text())["weights_sha256"] != sha256_file(run / "best.safetensors")
