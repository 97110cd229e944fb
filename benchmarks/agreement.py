"""What the agreement benchmarks share: a seeded per-class sample of the test split, one pass over the
groups of films that prints each group's summary, and the per-film CSV."""
from __future__ import annotations

import argparse
import csv
import json
import random
from pathlib import Path
from typing import Callable, Iterable

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared" / "data"


def add_film_arguments(parser: argparse.ArgumentParser) -> None:
    """The options every agreement benchmark takes: the split manifest, the real DICOM folders, the
    model, the per-film CSV and the sample's seed."""
    parser.add_argument("--manifest", type=Path, default=REPO / "training/work/curated/split_manifest.csv",
                        help="split manifest whose test rows are sampled")
    parser.add_argument("--dicom", type=Path, nargs="*", default=[SHARED / "dicom", SHARED / "dicom_rsna"],
                        help="folders of real DICOM films, each classified as a group")
    parser.add_argument("--model", default=None, help="model name or card (default: the default bundled model)")
    parser.add_argument("--out", type=Path, help="write the per-film results as CSV here")
    parser.add_argument("--seed", type=int, default=0, help="seed of the test-split sample")


def sample_test_split(manifest: Path, n: int, seed: int) -> list[dict]:
    """``n // classes`` seeded test-split rows of each class of the split manifest ``manifest``
    (all of a class when it has fewer), classes in name order, rows drawn from those sorted by id."""
    with open(manifest, newline="", encoding="utf-8") as handle:
        test = [row for row in csv.DictReader(handle) if row["split"] == "test"]
    by_label: dict[str, list[dict]] = {}
    for row in sorted(test, key=lambda r: r["id"]):
        by_label.setdefault(row["label"], []).append(row)
    rng = random.Random(seed)
    return [row for label in sorted(by_label)
            for row in rng.sample(by_label[label], min(len(by_label[label]), n // len(by_label)))]


def source_file(row: dict) -> Path:
    """The image file of a split-manifest row: its ``path``, else its ``file`` in ``shared/data/cxr3``."""
    return Path(row["path"]) if row.get("path") else SHARED / "cxr3" / row["file"]


def compare_groups(groups: dict[str, list], compare: Callable[[object], dict],
                   summarise: Callable[[list[dict]], dict]) -> tuple[list[dict], dict[str, dict]]:
    """(per-film rows with their ``group``, summary per group and ``"all"``): ``compare`` each film of each
    group, printing each group's summary as it is done."""
    rows, summary = [], {}
    for name, films in groups.items():
        results = [compare(film) for film in films]
        rows += [{"group": name, **r} for r in results]
        summary[name] = summarise(results)
        print(f"{name}: {json.dumps(summary[name])}", flush=True)
    summary["all"] = summarise(rows)
    print(f"all: {json.dumps(summary['all'])}")
    return rows, summary


def write_rows(path: Path, rows: Iterable[dict]) -> None:
    """The per-film rows as CSV (columns from the first row); nothing is written when there are none."""
    rows = list(rows)
    if not rows:
        return
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
