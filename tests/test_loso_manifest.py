"""Leave-one-source-out manifests."""
from __future__ import annotations

import pytest

from training.loso_manifest import exclude_source


def rows():
    out = []
    for label, source, n in (("normal", "a", 6), ("covid", "a", 2), ("covid", "b", 4), ("pneumonia", "c", 4)):
        out += [{"label": label, "source": source, "split": "train", "sample_weight": "1"} for _ in range(n)]
    return out


def test_the_source_is_gone_and_classes_keep_equal_shares():
    kept = exclude_source(rows(), "b")
    assert all(r["source"] != "b" for r in kept) and len(kept) == 12
    share = {}
    for r in kept:
        share[r["label"]] = share.get(r["label"], 0) + float(r["sample_weight"])
    assert share["normal"] == pytest.approx(share["covid"]) == pytest.approx(share["pneumonia"])


def test_an_unknown_source_is_refused():
    with pytest.raises(ValueError, match="not in the manifest"):
        exclude_source(rows(), "nowhere")


def test_without_a_source_only_the_weights_change(tmp_path):
    import csv

    from training.loso_manifest import main

    manifest = tmp_path / "split_manifest.csv"
    with open(manifest, "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, ["label", "source", "split", "sample_weight", "patient_id", "age_group"])
        writer.writeheader()
        writer.writerows({**r, "patient_id": f"p{i}", "age_group": "adult"} for i, r in enumerate(rows()))
    assert main(["--manifest", str(manifest), "--source-power", "0.5", "--source-floor", "1", "--out", str(tmp_path / "out")]) == 0
    with open(tmp_path / "out" / "split_manifest.csv", newline="", encoding="utf-8") as handle:
        kept = list(csv.DictReader(handle))
    assert len(kept) == len(rows())
    covid = {s: sum(float(r["sample_weight"]) for r in kept if r["label"] == "covid" and r["source"] == s)
             for s in ("a", "b")}
    assert covid["b"] / covid["a"] == pytest.approx((4 / 2) ** 0.5, rel=1e-4)  # sqrt(4) : sqrt(2)
    assert "draw share" in (tmp_path / "out" / "counts.md").read_text(encoding="utf-8")


def test_a_boost_moves_draws_within_the_label_and_keeps_its_share():
    from training.loso_manifest import boosted

    before = rows()
    after = boosted([dict(r) for r in before], ["a:covid:2"])
    total = lambda rs, label, source=None: sum(float(r["sample_weight"]) for r in rs  # noqa: E731
                                               if r["label"] == label and source in (None, r["source"]))
    assert total(after, "covid") == pytest.approx(total(before, "covid"))
    assert total(after, "normal") == pytest.approx(total(before, "normal"))
    # a's two covid rows against b's four: 2 : 4 before, 4 : 4 after
    assert total(after, "covid", "a") / total(after, "covid", "b") == pytest.approx(1.0, rel=1e-4)


@pytest.mark.parametrize("boost", ["a:covid", "a:covid:x", "a:covid:0", "a:pneumonia:2"])
def test_a_malformed_or_empty_boost_is_refused(boost):
    from training.loso_manifest import boosted

    with pytest.raises(ValueError, match="--boost"):
        boosted(rows(), [boost])
