"""training.curate: duplicate detection, patient-disjoint splits, weights and outputs."""
from __future__ import annotations

import csv
import hashlib
import json
import random
import shutil
from collections import defaultdict
from pathlib import Path

import cv2
import numpy as np
import pytest

from training import curate


def read_csv(path: Path) -> list[dict]:
    with open(path, newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def splits_by(rows: list[dict], key: str) -> dict[str, set[str]]:
    out: dict[str, set[str]] = defaultdict(set)
    for row in rows:
        out[row[key]].add(row["split"])
    return out


# ----------------------------------------------------------------------------- pure functions

class TestNearDuplicatePairs:
    def test_matches_brute_force(self):
        rng = np.random.default_rng(0)
        base = rng.integers(0, 2**63, size=40, dtype=np.uint64)
        flips = np.uint64(1) << rng.integers(0, 64, size=40).astype(np.uint64)
        hashes = [int(h) for h in np.concatenate([base, base ^ flips])]  # each base has a copy 1 bit away
        expected = {(i, j, bin(hashes[i] ^ hashes[j]).count("1"))
                    for i in range(len(hashes)) for j in range(i + 1, len(hashes))
                    if bin(hashes[i] ^ hashes[j]).count("1") <= 6}
        assert set(curate.near_duplicate_pairs(hashes, 6, block=7)) == expected
        assert {(i, i + 40, 1) for i in range(40)} <= expected

    @pytest.mark.parametrize("numpy_has_bitwise_count", [True, False])
    def test_popcount(self, monkeypatch, numpy_has_bitwise_count):
        if not numpy_has_bitwise_count:
            monkeypatch.delattr(np, "bitwise_count", raising=False)
        x = np.array([[0, 1], [2**64 - 1, 0xF0F0]], dtype=np.uint64)
        assert curate._popcount64(x).tolist() == [[0, 1], [64, 8]]


class TestUnionFind:
    def test_components_and_smallest_root(self):
        uf = curate.UnionFind(6)
        uf.union(4, 1)
        uf.union(1, 3)
        uf.union(5, 2)
        assert [uf.find(i) for i in range(6)] == [0, 1, 2, 1, 1, 2]


def _groups(sizes_by_stratum: dict[tuple, list[int]]) -> list[curate.Group]:
    groups, n = [], 0
    for stratum, sizes in sizes_by_stratum.items():
        for size in sizes:
            groups.append(curate.Group(f"g{n:05d}", list(range(size)), {stratum[0]}, stratum))
            n += 1
    return groups


class TestAssignSplits:
    FRACTIONS = {"train": 0.7, "val": 0.15, "test": 0.15}

    def test_ratios_per_stratum_and_determinism(self):
        strata = {("normal", "a", "adult"): [1] * 200, ("covid", "b", "adult"): [3] * 20 + [1] * 40}
        first = curate.assign_splits(_groups(strata), self.FRACTIONS, seed=3)
        assert first == curate.assign_splits(_groups(strata), self.FRACTIONS, seed=3)
        assert first != curate.assign_splits(_groups(strata), self.FRACTIONS, seed=4)
        for stratum in strata:
            counts = defaultdict(int)
            for g in _groups(strata):
                if g.stratum == stratum:
                    counts[first[g.group_id]] += len(g.members)
            total = sum(counts.values())
            for split, fraction in self.FRACTIONS.items():
                assert abs(counts[split] - fraction * total) <= 3

    def test_check_disjoint_raises_on_leak(self):
        rows = [{"patient_id": "p1", "group_id": "g1", "pixel_sha256": "a", "split": "train"},
                {"patient_id": "p1", "group_id": "g2", "pixel_sha256": "b", "split": "test"}]
        with pytest.raises(curate.LeakageError, match="patient_id"):
            curate.check_disjoint(rows)


class TestWeights:
    def test_source_floor_shrinks_tiny_sources(self):
        rows = ([{"split": "train", "label": "normal", "source": "big"} for _ in range(100)]
                + [{"split": "train", "label": "normal", "source": "one"}])
        curate.sample_weights(rows, source_floor=1)
        assert float(rows[-1]["sample_weight"]) == pytest.approx(101 / 2)
        curate.sample_weights(rows, source_floor=50)
        # shares 1 and 1/50, renormalised: the single image holds 1/51 of the class mass
        assert float(rows[-1]["sample_weight"]) == pytest.approx(101 / 51, rel=1e-5)
        assert sum(float(r["sample_weight"]) for r in rows) == pytest.approx(101, rel=1e-5)


    def test_classes_and_sources_share_weight_equally(self):
        rows = ([{"split": "train", "label": "pneumonia", "source": "kids"}] * 90
                + [{"split": "train", "label": "pneumonia", "source": "adults"}] * 10
                + [{"split": "train", "label": "normal", "source": "adults"}] * 50)
        rows = [dict(r) for r in rows]
        curate.sample_weights(rows)
        mass = defaultdict(float)
        for r in rows:
            mass[(r["label"], r["source"])] += float(r["sample_weight"])
        n = len(rows)
        assert mass[("normal", "adults")] == pytest.approx(n / 2, rel=1e-5)
        assert mass[("pneumonia", "kids")] == pytest.approx(n / 4, rel=1e-5)
        assert mass[("pneumonia", "adults")] == pytest.approx(n / 4, rel=1e-5)
        curate.sample_weights(rows, source_floor=10)  # every source reaches the floor: unchanged
        adults = [float(r["sample_weight"]) for r in rows if r["source"] == "adults" and r["label"] == "pneumonia"]
        assert sum(adults) == pytest.approx(n / 4, rel=1e-5)
        weights = curate.class_weights(rows)["weights"]
        assert weights == {"normal": pytest.approx(150 / (2 * 50)), "pneumonia": pytest.approx(150 / (2 * 100))}


    def test_source_power_shares_a_class_by_square_root_frequency(self):
        rows = ([{"split": "train", "label": "normal", "source": "big"} for _ in range(400)]
                + [{"split": "train", "label": "normal", "source": "small"} for _ in range(100)])
        curate.sample_weights(rows, source_floor=1, source_power=0.5)
        mass = defaultdict(float)
        for r in rows:
            mass[r["source"]] += float(r["sample_weight"])
        # sqrt(400) : sqrt(100) = 2 : 1 of the class's 500 draws (power 0 would give 1 : 1)
        assert mass["big"] == pytest.approx(500 * 2 / 3, rel=1e-5)
        assert mass["small"] == pytest.approx(500 / 3, rel=1e-5)
        curate.sample_weights(rows, source_floor=1, source_power=1.0)  # proportional: every image weighs 1
        assert [float(r["sample_weight"]) for r in rows] == pytest.approx([1.0] * len(rows))

    def test_age_balance_splits_each_class_between_children_and_adults(self):
        def rows_of(n, label, source, age):
            return [{"split": "train", "label": label, "source": source, "age_group": age} for _ in range(n)]

        rows = (rows_of(900, "pneumonia", "kids_hospital", "pediatric")
                + rows_of(100, "pneumonia", "adult_hospital", "adult")
                + rows_of(100, "pneumonia", "papers", "unknown(likely adult)")
                + rows_of(300, "normal", "kids_hospital", "pediatric")
                + rows_of(700, "normal", "adult_hospital", "adult(presumed)")
                + rows_of(500, "covid", "papers", "adult")
                + rows_of(5, "covid", "papers", "pediatric"))
        curate.sample_weights(rows, source_floor=1, age_floor=100)
        mass = defaultdict(float)
        for r in rows:
            mass[(r["label"], curate.coarse_age(r["age_group"]))] += float(r["sample_weight"])
        n = len(rows)
        for label in ("pneumonia", "normal"):
            assert mass[(label, "pediatric")] == pytest.approx(n / 6, rel=1e-5)
            assert mass[(label, "adult")] == pytest.approx(n / 6, rel=1e-5)
        # five pediatric COVID-19 films sit below the age floor: 5/100 of an equal share, not half the class
        assert mass[("covid", "pediatric")] == pytest.approx(n / 3 * 0.05 / 1.05, rel=1e-5)
        # the two adult pneumonia sources share the adult half equally
        adult = [float(r["sample_weight"]) for r in rows if r["source"] == "papers" and r["label"] == "pneumonia"]
        assert sum(adult) == pytest.approx(n / 12, rel=1e-5)
        counts = {(c["label"], c["source"], c["age_group"]): c for c in curate.count_rows(
            [dict(r, patient_id=str(i)) for i, r in enumerate(rows)])}
        assert counts[("pneumonia", "kids_hospital", "pediatric")]["draw_share"] == pytest.approx(1 / 6, abs=1e-4)


def test_folder_class_names():
    assert curate.folder_class("COVID-19") == curate.folder_class("covid19") == "covid"
    assert curate.folder_class("Pneumonia") == "pneumonia"
    assert curate.folder_class("other") is None


def test_help_exits_cleanly(capsys):
    with pytest.raises(SystemExit) as exc:
        curate.parse_args(["--help"])
    assert exc.value.code == 0
    assert "--near-distance" in capsys.readouterr().out


# ----------------------------------------------------------------------------- real data

@pytest.fixture(scope="module")
def manifest_runs(cxr3_dir, tmp_path_factory):
    """Two runs on the same 400-image subset with the same seed, one with another seed."""
    outs = {}
    for name, seed in (("a", 7), ("b", 7), ("c", 8)):
        out = tmp_path_factory.mktemp(f"curated_{name}")
        curate.main(["--manifest", str(cxr3_dir / "manifest.csv"), "--out", str(out),
                     "--limit", "400", "--seed", str(seed)])
        outs[name] = out
    return outs


class TestManifestSubset:
    def test_outputs_written(self, manifest_runs):
        out = manifest_runs["a"]
        for name in ("split_manifest.csv", "counts.md", "counts.csv", "duplicates.csv", "curate.log",
                     "summary.json", "class_weights.json"):
            assert (out / name).is_file(), name
        counts_md = (out / "counts.md").read_text()
        assert "| class | train | val | test | all |" in counts_md
        assert "kermany_pediatric" in counts_md
        summary = json.loads((out / "summary.json").read_text())
        assert summary["split_manifest_sha256"] == hashlib.sha256((out / "split_manifest.csv").read_bytes()).hexdigest()
        assert "--limit 400" in summary["command"]
        assert summary["input"]["selected"] == 400

    def test_patient_disjoint_and_complete(self, manifest_runs):
        out = manifest_runs["a"]
        rows = read_csv(out / "split_manifest.csv")
        removed = [r for r in read_csv(out / "duplicates.csv") if r["action"] == "removed"]
        assert len(rows) + len(removed) == 400
        for key in ("patient_id", "group_id", "pixel_sha256"):
            assert all(len(s) == 1 for s in splits_by(rows, key).values()), key
        assert {r["split"] for r in rows} == set(curate.SPLITS)
        assert all(Path(r["path"]).is_file() for r in rows[:20])
        assert {"id", "orig_sha256", "split", "group_id", "phash", "sample_weight"} <= set(rows[0])

    def test_deterministic(self, manifest_runs):
        sha = {k: json.loads((v / "summary.json").read_text())["split_manifest_sha256"]
               for k, v in manifest_runs.items()}
        assert sha["a"] == sha["b"]
        assert sha["a"] != sha["c"]


def _brighten_and_reencode(src: Path, dst: Path) -> None:
    grey = cv2.imread(str(src), cv2.IMREAD_GRAYSCALE)
    cv2.imwrite(str(dst), cv2.convertScaleAbs(grey, alpha=1.0, beta=12), [cv2.IMWRITE_JPEG_QUALITY, 70])


@pytest.fixture(scope="module")
def folder_run(cxr3_dir, tmp_path_factory):
    """A ROOT/<class>/ tree of 30 real images plus planted duplicates, curated once."""
    manifest = read_csv(cxr3_dir / "manifest.csv")
    rng = random.Random(5)
    root = tmp_path_factory.mktemp("folder") / "mini"
    picked = {}
    for label, folder in (("normal", "Normal"), ("pneumonia", "PNEUMONIA"), ("covid", "COVID-19")):
        (root / folder).mkdir(parents=True)
        for row in rng.sample([r for r in manifest if r["label"] == label], 10):
            dst = root / folder / Path(row["file"]).name
            shutil.copyfile(cxr3_dir / row["file"], dst)
            picked.setdefault(label, []).append(dst)
    normal, pneumonia, covid = picked["normal"], picked["pneumonia"], picked["covid"]
    shutil.copyfile(normal[0], root / "Normal" / "zz_copy.jpg")  # exact (same bytes)
    same_pixels = cv2.imread(str(normal[0]), cv2.IMREAD_GRAYSCALE)
    cv2.imwrite(str(root / "Normal" / "zz_copy.png"), same_pixels)  # exact pixels, other bytes
    _brighten_and_reencode(covid[0], root / "COVID-19" / "zz_near_copy.jpg")
    shutil.copyfile(pneumonia[0], root / "Normal" / "zz_mislabelled.jpg")  # same image under two labels
    with open(root / "patients.csv", "w", newline="") as f:
        f.write(f"file,patient_id\nPNEUMONIA/{pneumonia[1].name},P1\nPNEUMONIA/{pneumonia[2].name},P1\n")
    out = tmp_path_factory.mktemp("folder_out")
    curate.main(["--folder", str(root), "--out", str(out), "--seed", "1"])
    return {"root": root, "out": out, "picked": picked,
            "rows": {r["file"]: r for r in read_csv(out / "split_manifest.csv")},
            "dups": read_csv(out / "duplicates.csv")}


class TestFolder:
    def test_labels_and_source(self, folder_run):
        rows = folder_run["rows"].values()
        assert {r["label"] for r in rows} == {"normal", "pneumonia", "covid"}
        assert {r["source"] for r in rows} == {"folder:mini"}
        assert {r["age_group"] for r in rows} == {"unknown"}

    def test_exact_duplicates_removed(self, folder_run):
        first = f"Normal/{folder_run['picked']['normal'][0].name}"
        removed = {d["file"] for d in folder_run["dups"] if d["reason"] == "exact_duplicate"}
        assert removed == {"Normal/zz_copy.jpg", "Normal/zz_copy.png"}
        assert first in folder_run["rows"]

    def test_near_duplicate_linked_into_one_split(self, folder_run):
        original = folder_run["rows"][f"COVID-19/{folder_run['picked']['covid'][0].name}"]
        near = folder_run["rows"]["COVID-19/zz_near_copy.jpg"]
        assert near["group_id"] == original["group_id"]
        assert near["split"] == original["split"]
        links = {frozenset((d["id"], d["related_id"])) for d in folder_run["dups"] if d["reason"] == "near_duplicate"}
        assert frozenset((original["id"], near["id"])) in links

    def test_conflicting_labels_dropped(self, folder_run):
        name = folder_run["picked"]["pneumonia"][0].name
        assert f"PNEUMONIA/{name}" not in folder_run["rows"]
        assert "Normal/zz_mislabelled.jpg" not in folder_run["rows"]
        conflicts = {d["file"] for d in folder_run["dups"] if d["reason"] == "label_conflict"}
        assert {f"PNEUMONIA/{name}", "Normal/zz_mislabelled.jpg"} <= conflicts

    def test_patients_csv_keeps_patient_together(self, folder_run):
        p1 = [r for r in folder_run["rows"].values() if r["patient_id"] == "P1"]
        assert len(p1) == 2 and p1[0]["split"] == p1[1]["split"]
        rows = list(folder_run["rows"].values())
        assert all(len(s) == 1 for s in splits_by(rows, "patient_id").values())
        assert (folder_run["out"] / "counts.md").read_text().count("folder:mini") >= 3


def test_folder_reads_dicom_through_the_engine(dicom_dir, tmp_path):
    if curate.dicom_reader() is None:
        pytest.skip("cxr_engine.reading.read.read_image is not available: .dcm files are skipped")
    root = tmp_path / "dcm"
    (root / "normal").mkdir(parents=True)
    for name in ("CR-MONO1-10-chest.dcm", "Fake_MONOHR1.dcm"):
        shutil.copyfile(dicom_dir / name, root / "normal" / name)
    shutil.copyfile(dicom_dir / "Fake_MONOHR1.dcm", root / "normal" / "copy.dcm")
    curate.main(["--folder", str(root), "--out", str(tmp_path / "out")])
    rows = read_csv(tmp_path / "out" / "split_manifest.csv")
    assert {r["file"] for r in rows} == {"normal/CR-MONO1-10-chest.dcm", "normal/Fake_MONOHR1.dcm"}
    removed = read_csv(tmp_path / "out" / "duplicates.csv")
    assert [(r["file"], r["reason"]) for r in removed] == [("normal/copy.dcm", "exact_duplicate")]
