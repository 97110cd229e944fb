"""benchmarks.card_split: the card's sources of cxr3, laid out so that training.curate reads cxr3's real files."""
import csv
from collections import Counter

import pytest

from benchmarks.card_split import card_training_data, write_source_manifest
from training.curate import load_manifest


@pytest.fixture(scope="module")
def cxr3_manifest(shared_data):
    path = shared_data / "cxr3" / "manifest.csv"
    if not path.is_file():
        pytest.skip(f"cxr3 manifest not found at {path}")
    return path


def test_the_lite0_cards_sources_keep_cxr3s_rows_columns_and_order_and_resolve_to_its_files(cxr3_manifest, tmp_path):
    sources = set(card_training_data("efficientnet-lite0")["sources"])
    assert "kermany_pediatric" in sources

    manifest = write_source_manifest(cxr3_manifest, sources, tmp_path / "sources")

    with open(cxr3_manifest, newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        cxr3_columns, cxr3_rows = reader.fieldnames, list(reader)
    expected = [row for row in cxr3_rows if row["source"] in sources]
    rows, columns = load_manifest(manifest)
    assert columns == cxr3_columns
    assert [row["id"] for row in rows] == [row["id"] for row in expected]
    assert Counter(row["source"] for row in rows) == Counter(row["source"] for row in expected)
    one_source, _ = load_manifest(write_source_manifest(cxr3_manifest, {"kermany_pediatric"}, tmp_path / "one"))
    assert 0 < len(one_source) < len(cxr3_rows)  # other sources' rows are left out
    assert {row["source"] for row in one_source} == {"kermany_pediatric"}
    real_folder = cxr3_manifest.parent.resolve()
    for row in rows[:: max(1, len(rows) // 200)]:
        assert row["path"] == str((real_folder / row["file"]).resolve())
        assert (real_folder / row["file"]).is_file()


def test_a_source_missing_from_cxr3_is_named(cxr3_manifest, tmp_path):
    with pytest.raises(ValueError, match="no_such_source") as error:
        write_source_manifest(cxr3_manifest, {"kermany_pediatric", "no_such_source"}, tmp_path / "sources")
    assert str(cxr3_manifest) in str(error.value)
