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
