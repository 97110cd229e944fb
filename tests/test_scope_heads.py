"""The out-of-scope heads on the classifier's pooled features (issue 17): the bundled parameters and their
check, the child head gated by the header's age, both backends' pooled features, and the reasons reaching
the CSV's ``out_of_scope`` column, on real films."""
from __future__ import annotations

import csv
import hashlib
import json
import shutil
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from cxr_engine.errors import ModelIntegrityError
from cxr_engine.models.model_card import ModelCard
from cxr_engine.models.scope_heads import (CARD_KEY, CHILD, OTHER_FINDINGS, Head, ScopeHeads, entry,
                                           header_gives_age, heads_for, load_heads)
from cxr_engine.models.scope_score import out_of_scope
from cxr_engine.reading.read import read_image

from conftest import REPO_ROOT, kermany_children
from model_factory import BUNDLED_CARD

SIIM_FILM = "1.2.276.0.7230010.3.1.4.8323329.6904.1517875201.850819.dcm"  # post-operative: sternotomy wires


@pytest.fixture(scope="module")
def card() -> ModelCard:
    return ModelCard.load(BUNDLED_CARD)


@pytest.fixture(scope="module")
def classifier(card):
    pytest.importorskip("onnxruntime")
    from cxr_engine.models.onnx_backend import OnnxClassifier

    return OnnxClassifier(card).load()


def _test_rows(shared_data, source: str, label: str, count: int) -> list[Path]:
    curated = REPO_ROOT / "training" / "work" / "curated" / "split_manifest.csv"
    if not curated.exists():
        pytest.skip(f"the curated split is not on this machine ({curated}; made by python -m training.curate)")
    with open(curated, newline="") as handle:
        rows = [r for r in csv.DictReader(handle)
                if r["split"] == "test" and r["source"] == source and r["label"] == label]
    return [shared_data / "cxr3" / r["file"] for r in rows[:count]]


class TestParameters:
    def test_bundled_entry_names_checked_parameters_beside_the_card(self, card):
        value = entry(card)
        params = BUNDLED_CARD.parent / value["file"]
        assert params.suffix != ".json"  # the models folder's *.json are cards
        assert hashlib.sha256(params.read_bytes()).hexdigest() == value["sha256"]
        assert value["created_by_command"].startswith("python -m training.scope_heads")
        heads = load_heads(card)
        # The other-findings head ships only past its validation gate (training.scope_heads), recorded in the card.
        gate = value["other_findings"]
        assert isinstance(gate["shipped"], bool) and "validation RSNA adult pneumonia" in gate["why"]
        assert list(heads.heads) == [OTHER_FINDINGS, CHILD] if gate["shipped"] else [CHILD]
        assert all(h.weights.shape == (value["features"],) and np.isfinite(h.threshold) for h in heads.heads.values())

    def test_tampered_parameters_are_refused_and_give_no_reasons(self, tmp_path, card, caplog):
        data = json.loads(BUNDLED_CARD.read_text())
        params = tmp_path / data[CARD_KEY]["file"]
        shutil.copy(BUNDLED_CARD.parent / data[CARD_KEY]["file"], params)
        with open(params, "ab") as handle:
            handle.write(b" ")
        (tmp_path / "c.json").write_text(json.dumps(data))
        copy = replace(card, path=tmp_path / "c.json")
        with pytest.raises(ModelIntegrityError):
            load_heads(copy)
        assert heads_for(copy) is None
        assert "out-of-scope heads unavailable" in caplog.text

    def test_both_bundles_ship_the_parameters(self, card):
        from test_packaging import load

        bundles = load("bundles")
        for variant in ("lite", "full"):
            assert entry(card)["file"] in {f.source.name for f in bundles.model_files(variant)}, variant

    def test_a_card_without_heads_gives_no_reasons(self, tmp_path, card):
        data = {k: v for k, v in json.loads(BUNDLED_CARD.read_text()).items() if k != CARD_KEY}
        (tmp_path / "plain.json").write_text(json.dumps(data))
        assert load_heads(replace(card, path=tmp_path / "plain.json")) is None

    def test_json_round_trip_keeps_every_value(self, card):
        heads = load_heads(card)
        again = ScopeHeads.from_json(heads.to_json(), heads.heads[CHILD].mean.size, "round trip")
        x = np.random.default_rng(0).normal(size=(4, heads.heads[CHILD].mean.size)).astype(np.float32)
        for name, head in heads.heads.items():
            np.testing.assert_array_equal(again.heads[name].logits(x), head.logits(x))


class TestReasons:
    HEADS = ScopeHeads({OTHER_FINDINGS: Head(np.zeros(2, np.float32), np.ones(2, np.float32),
                                             np.array([1, 0], np.float32), 0.0, 0.5),
                        CHILD: Head(np.zeros(2, np.float32), np.ones(2, np.float32),
                                    np.array([0, 1], np.float32), 0.0, 0.5)})

    def test_child_only_without_an_age_in_the_header(self):
        both = np.array([1.0, 1.0], np.float32)
        assert self.HEADS.reasons(both, age_known=False) == "other-findings;child-chest"
        assert self.HEADS.reasons(both, age_known=True) == "other-findings"
        assert self.HEADS.reasons(np.zeros(2, np.float32), age_known=False) == ""

    def test_header_age_or_birth_date_counts_as_an_age(self, dicom_dir):
        meta = read_image(dicom_dir / "CR-MONO1-10-chest.dcm").metadata
        assert not header_gives_age(replace(meta, patient_age="", patient_birth_date=""))
        assert header_gives_age(replace(meta, patient_age="004Y", patient_birth_date=""))
        assert header_gives_age(replace(meta, patient_age="", patient_birth_date="20200101"))
        assert not header_gives_age(replace(meta, patient_age="old", patient_birth_date=""))
        assert not header_gives_age(None)

    def test_heads_follow_the_header_and_the_image_checks(self):
        assert out_of_scope("", (0.9, 0.05, 0.05), None, "", "child-chest") == "child-chest"
        # The heads were made for upright frontal films: the checks' or the header's reasons replace them.
        assert out_of_scope("inverted", (0.9, 0.05, 0.05), None, "", "other-findings") == "inverted"
        assert out_of_scope("", (0.9, 0.05, 0.05), None, "LL", "other-findings") == "lateral"
        assert out_of_scope("", (0.4, 0.3, 0.3), 0.2, "", "other-findings") == "other-findings;uncertain"


class TestRealFilms:
    def test_young_children_are_flagged_unless_the_header_gives_an_age(self, classifier, shared_data):
        children = [read_image(p) for p in _test_rows(shared_data, "kermany_pediatric", "pneumonia", 6)]
        adults = [read_image(p) for p in _test_rows(shared_data, "covid19_radiography_db", "normal", 6)]
        flagged = [CHILD in p.scope_reasons.split(";") for p in classifier.predict(children)]
        assert sum(flagged) >= 5, flagged
        assert sum(CHILD in p.scope_reasons.split(";") for p in classifier.predict(adults)) <= 1
        aged = [replace(im, metadata=replace(im.metadata, patient_age="004Y")) for im in children]
        assert all(CHILD not in p.scope_reasons for p in classifier.predict(aged))

    def test_heat_map_pass_gives_the_same_reasons(self, classifier, dicom_dir):
        image = read_image(dicom_dir / SIIM_FILM)
        assert classifier.predict_with_heatmap(image).prediction.scope_reasons == classifier.predict([image])[0].scope_reasons

    def test_torch_backend_pools_the_same_features(self, card, classifier, dicom_dir):
        pytest.importorskip("torch")
        from cxr_engine.models.torch_backend import Classifier

        image = read_image(dicom_dir / SIIM_FILM)
        batch = classifier.preprocess(image)[None]
        torch_classifier = Classifier(card, device="cpu")
        try:
            logits, pooled = torch_classifier._logits_and_features(batch)
            heatmap_prediction = torch_classifier.predict_with_heatmap(image).prediction
        finally:
            torch_classifier.close()
        onnx_logits, onnx_pooled = classifier._logits_and_features(batch)
        np.testing.assert_allclose(pooled, onnx_pooled, atol=2e-2, rtol=2e-2)
        np.testing.assert_allclose(logits, onnx_logits, atol=2e-2)
        assert heatmap_prediction.scope_reasons == classifier.predict([image])[0].scope_reasons

    def test_csv_column_on_real_files(self, tmp_path, dicom_dir, shared_data):
        """A child's JPEG (no header, so no age) gets the child head's reason in the CSV; the SIIM film
        stored as a negative gets the image check's reason only (the heads read upright films)."""
        from cxr_engine.cli import main

        child = kermany_children(shared_data, 1)[0]
        out = tmp_path / "r.csv"
        assert main([str(child), str(dicom_dir / "Fake_MONOHR1.dcm"), "--csv", str(out),
                     "--model", str(BUNDLED_CARD), "--backend", "onnx", "--no-isolation"]) == 0
        with open(out, newline="") as handle:
            rows = {Path(r["path"]).name: r for r in csv.DictReader(handle)}
        assert CHILD in rows[child.name]["out_of_scope"].split(";")
        assert "out of scope: looks like a child's chest" in rows[child.name]["warnings"]  # worded too
        assert rows["Fake_MONOHR1.dcm"]["out_of_scope"].split(";")[0] == "inverted"
        assert CHILD not in rows["Fake_MONOHR1.dcm"]["out_of_scope"]


def test_heads_run_without_torch(shared_data):
    """The lite bundle's path: ONNX Runtime and numpy only."""
    pytest.importorskip("onnxruntime")
    from test_without_torch import PRELUDE, run_python

    code = PRELUDE + """
from cxr_engine.models.model_card import ModelCard
from cxr_engine.models.onnx_backend import OnnxClassifier
from cxr_engine.reading.read import read_image
classifier = OnnxClassifier(ModelCard.load(sys.argv[2])).load()
prediction = classifier.predict([read_image(sys.argv[1])])[0]
print(json.dumps({"reasons": prediction.scope_reasons,
                  "torch": any(m.split(".")[0] == "torch" for m in sys.modules)}))
"""
    child = kermany_children(shared_data, 1)[0]
    assert run_python(code, child, BUNDLED_CARD) == {"reasons": CHILD, "torch": False}


class TestFeatureCache:
    def test_features_of_other_weights_or_another_split_are_never_read_back(self, tmp_path):
        """The cache folder names the weights and the manifest: a retrained model under the same name, or
        a new curation, gets its own features instead of the previous model's."""
        import dataclasses

        from cxr_engine.models.model_card import ModelCard
        from training.scope_features import features_folder

        card = ModelCard.load(Path(__file__).resolve().parents[1] / "resources/models/efficientnet-lite0.json")
        manifest = tmp_path / "split_manifest.csv"
        manifest.write_text("id,split\na,train\n")
        first = features_folder(tmp_path, card, manifest)
        assert first.name.startswith(card.name + "-") and first.parent == tmp_path
        retrained = dataclasses.replace(card, weights_sha256="f" * 64)
        assert features_folder(tmp_path, retrained, manifest) != first
        manifest.write_text("id,split\na,val\n")
        assert features_folder(tmp_path, card, manifest) != first
