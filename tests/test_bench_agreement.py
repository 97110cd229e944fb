"""benchmarks.agreement: the seeded per-class test sample and the per-film CSV the agreement benchmarks share."""
import csv

from benchmarks.agreement import sample_test_split, write_rows


def _manifest(tmp_path):
    path = tmp_path / "split_manifest.csv"
    rows = [{"id": f"{label}{i:02d}", "label": label, "split": "test" if i % 4 else "train", "file": f"{label}{i}.png"}
            for label in ("normal", "pneumonia", "covid") for i in range(12)]
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return path


def test_the_sample_takes_the_same_number_of_test_rows_per_class_and_repeats_with_its_seed(tmp_path):
    manifest = _manifest(tmp_path)
    sample = sample_test_split(manifest, 6, seed=0)
    assert [r["label"] for r in sample] == ["covid"] * 2 + ["normal"] * 2 + ["pneumonia"] * 2
    assert all(r["split"] == "test" for r in sample)
    assert sample == sample_test_split(manifest, 6, seed=0)
    assert len(sample_test_split(manifest, 300, seed=0)) == 27  # every test row: 9 per class


def test_rows_are_written_with_the_first_rows_columns_and_nothing_for_no_rows(tmp_path):
    write_rows(tmp_path / "none.csv", [])
    assert not (tmp_path / "none.csv").exists()
    write_rows(tmp_path / "rows.csv", [{"group": "g", "path": "a.dcm"}, {"group": "g", "path": "b.dcm"}])
    assert (tmp_path / "rows.csv").read_text().splitlines() == ["group,path", "g,a.dcm", "g,b.dcm"]
