"""Curate chest X-rays into patient-disjoint, duplicate-aware train / val / test splits.

Pipeline: load rows (the shared ``cxr3`` manifest, or a ``ROOT/<class>/`` folder) -> decode each
image as 8-bit greyscale -> sha256 of the pixels (exact duplicates), a 64-bit DCT pHash and ORB
keypoints (near duplicates: pHash candidates confirmed by matched keypoints) -> union-find over
patient ids and duplicate links into groups -> drop groups whose members carry conflicting
labels, then exact copies beyond the first -> split whole groups, stratified by class x source x
age group -> sampling weights -> files in ``--out``.

Every member of a group lands in the same split, so no patient and no copy of an image crosses
splits. Nothing is thrown away for balance by default; ``sample_weight`` balances sampling
instead (see :func:`sample_weights`).

Run: ``python -m training.curate --manifest ../shared/data/cxr3/manifest.csv --out training/work/curated``
"""
from __future__ import annotations

import argparse
import csv
import hashlib
import json
import logging
import random
import shlex
import sys
import threading
import time
from collections import Counter, defaultdict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Sequence

import cv2
import numpy as np
from tqdm import tqdm

from .script_logging import script_logging

log = logging.getLogger("training.curate")  # not __name__: that is __main__ under -m

CLASSES = ("normal", "pneumonia", "covid")
SPLITS = ("train", "val", "test")
FOLDER_CLASS_NAMES = {"normal": "normal", "pneumonia": "pneumonia", "covid": "covid",
                      "covid-19": "covid", "covid19": "covid", "covid_19": "covid"}
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")
DICOM_SUFFIX = ".dcm"
FOLDER_COLUMNS = ["id", "file", "label", "source", "patient_id", "age_group"]
ADDED_COLUMNS = ["split", "group_id", "pixel_sha256", "phash", "sample_weight", "path"]
DUPLICATE_COLUMNS = ["id", "file", "label", "source", "patient_id", "group_id",
                     "action", "reason", "related_id", "hamming", "detail"]


class LeakageError(AssertionError):
    """A patient, group or image landed in more than one split (an AssertionError that survives -O)."""


@dataclass
class Group:
    """A connected component of rows linked by patient id, exact or near duplicates."""

    group_id: str
    members: list[int]
    labels: set[str] = field(default_factory=set)
    stratum: tuple[str, str, str] = ("", "", "")


# ----------------------------------------------------------------------------- input

def load_manifest(path: Path) -> tuple[list[dict], list[str]]:
    """Rows of a cxr3-style manifest with an absolute ``path``; image paths are relative to its folder."""
    with open(path, newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        columns = list(reader.fieldnames or [])
        rows = list(reader)
    missing = {"id", "file", "label", "source", "patient_id"} - set(columns)
    if missing:
        raise ValueError(f"{path}: manifest lacks columns {sorted(missing)}")
    for row in rows:
        row["path"] = str((path.parent / row["file"]).resolve())
        row["patient_id"] = row["patient_id"] or f"img-{row['id']}"  # the cxr3 convention
        row.setdefault("age_group", "unknown")
    if "age_group" not in columns:
        columns.append("age_group")
    return rows, columns


def folder_class(name: str) -> str | None:
    """The class a folder name stands for (case-insensitive), or None."""
    return FOLDER_CLASS_NAMES.get(name.strip().lower())


def _read_patients(path: Path) -> dict[str, str]:
    """``file`` (relative to ROOT, forward slashes) -> ``patient_id`` from a patients.csv."""
    with open(path, newline="", encoding="utf-8") as f:
        return {r["file"].replace("\\", "/"): r["patient_id"] for r in csv.DictReader(f)}


def load_folder(root: Path, patients_csv: Path | None = None,
                allow_dicom: bool = False) -> tuple[list[dict], list[str]]:
    """Rows for images under ``ROOT/<class>/``; one patient per image unless patients.csv says otherwise."""
    root = root.resolve()
    patients = _read_patients(patients_csv) if patients_csv else {}
    suffixes = IMAGE_SUFFIXES + ((DICOM_SUFFIX,) if allow_dicom else ())
    rows = []
    for class_dir in sorted(p for p in root.iterdir() if p.is_dir()):
        label = folder_class(class_dir.name)
        if label is None:
            log.warning("skipping folder %s: not one of %s", class_dir.name, sorted(FOLDER_CLASS_NAMES))
            continue
        for file in sorted(p for p in class_dir.rglob("*") if p.is_file()):
            if file.suffix.lower() not in suffixes:
                continue
            rel = file.relative_to(root).as_posix()
            file_id = hashlib.sha256(file.read_bytes()).hexdigest()[:16]
            rows.append({"id": file_id, "file": rel, "label": label, "source": f"folder:{root.name}",
                         "patient_id": patients.get(rel, f"img-{file_id}"), "age_group": "unknown",
                         "path": str(file)})
    if not rows:
        raise ValueError(f"{root}: no images found under <class>/ folders")
    return rows, list(FOLDER_COLUMNS)


def dicom_reader() -> Callable | None:
    """``cxr_engine.reading.read.read_image`` when the engine provides it, else None (DICOM is then skipped)."""
    try:
        from cxr_engine.reading.read import read_image
    except ImportError:
        return None
    return read_image


def random_subset(rows: list[dict], limit: int | None, seed: int) -> list[dict]:
    """A seeded random subset of ``limit`` rows, in input order (all rows when limit is None)."""
    if limit is None or limit >= len(rows):
        return rows
    keep = set(random.Random(f"{seed}-limit").sample(range(len(rows)), limit))
    return [r for i, r in enumerate(rows) if i in keep]


# ----------------------------------------------------------------------------- pixels and hashes

def _to_uint8(arr: np.ndarray) -> np.ndarray:
    """Greyscale uint8; other dtypes are scaled linearly from their min..max to 0..255."""
    arr = np.asarray(arr)
    if arr.ndim == 3:
        arr = arr.mean(axis=2)
    if arr.dtype == np.uint8:
        return arr
    arr = arr.astype(np.float64)
    low, high = float(arr.min()), float(arr.max())
    scaled = (arr - low) / (high - low) * 255.0 if high > low else np.zeros_like(arr)
    return np.round(scaled).astype(np.uint8)


def read_grey(path: str | Path, read_dicom: Callable | None = None) -> np.ndarray:
    """Decode an image file as 2-D uint8 greyscale; DICOM goes through ``read_dicom``."""
    path = Path(path)
    if path.suffix.lower() == DICOM_SUFFIX:
        if read_dicom is None:
            raise ValueError(f"{path}: DICOM needs cxr_engine.reading.read.read_image")
        image = read_dicom(path)
        if hasattr(image, "display"):  # a CxrImage: display() is the VOI-applied [0, 1] image
            return np.clip(np.round(image.display() * 255.0), 0, 255).astype(np.uint8)
        return _to_uint8(image)
    data = np.fromfile(str(path), dtype=np.uint8)  # imdecode handles non-ASCII paths; imread does not
    grey = cv2.imdecode(data, cv2.IMREAD_GRAYSCALE) if data.size else None
    if grey is None:
        raise ValueError(f"{path}: not a decodable image")
    return grey


def pixel_sha256(grey: np.ndarray) -> str:
    """sha256 over the shape and the raw uint8 pixels: equal only for identical decoded images."""
    h = hashlib.sha256(f"{grey.shape[0]}x{grey.shape[1]}:".encode())
    h.update(np.ascontiguousarray(grey, dtype=np.uint8).tobytes())
    return h.hexdigest()


def phash64(grey: np.ndarray) -> int:
    """64-bit DCT perceptual hash: 32x32 area-resampled image, 8x8 lowest DCT terms vs their median."""
    small = cv2.resize(grey, (32, 32), interpolation=cv2.INTER_AREA).astype(np.float32)
    low = cv2.dct(small)[:8, :8]
    bits = (low > np.median(low)).ravel()
    return int.from_bytes(np.packbits(bits).tobytes(), "big")


@dataclass(frozen=True)
class Keypoints:
    """ORB keypoint positions (n x 2 float32, pixels) and descriptors (n x 32 uint8, or None)."""

    points: np.ndarray
    descriptors: np.ndarray | None


_thread = threading.local()


def orb_keypoints(grey: np.ndarray) -> Keypoints:
    """Up to 500 ORB keypoints of the histogram-equalised image (so re-windowed copies still match).

    One detector per thread because cv2 objects are not thread-safe.
    """
    if not hasattr(_thread, "orb"):
        _thread.orb = cv2.ORB_create(nfeatures=500)
    keypoints, descriptors = _thread.orb.detectAndCompute(cv2.equalizeHist(grey), None)
    return Keypoints(np.float32([k.pt for k in keypoints]).reshape(-1, 2), descriptors)


def matched_inliers(a: Keypoints, b: Keypoints) -> int:
    """One-to-one keypoint matches consistent with one similarity transform from a to b.

    Matches pass Lowe's ratio test (0.8) and keep only the best match per keypoint of b, then
    RANSAC fits rotation + uniform scale + shift with a 3-pixel tolerance; a fit that scales by
    less than 1/3 or more than 3 is degenerate and counts 0. A copy that was re-encoded,
    re-windowed, cropped or rescaled keeps dozens to hundreds of inliers.
    """
    if a.descriptors is None or b.descriptors is None or len(a.points) < 2 or len(b.points) < 2:
        return 0
    if not hasattr(_thread, "matcher"):
        _thread.matcher = cv2.BFMatcher(cv2.NORM_HAMMING)
    best: dict[int, cv2.DMatch] = {}
    for m in _thread.matcher.knnMatch(a.descriptors, b.descriptors, k=2):
        if len(m) == 2 and m[0].distance < 0.8 * m[1].distance:
            if m[0].trainIdx not in best or m[0].distance < best[m[0].trainIdx].distance:
                best[m[0].trainIdx] = m[0]
    if len(best) < 3:
        return 0
    good = list(best.values())
    src = a.points[[m.queryIdx for m in good]]
    dst = b.points[[m.trainIdx for m in good]]
    transform, inliers = cv2.estimateAffinePartial2D(src, dst, method=cv2.RANSAC, ransacReprojThreshold=3.0)
    if transform is None or not 1 / 3 <= float(np.hypot(*transform[0, :2])) <= 3:
        return 0
    return int(inliers.sum())


def describe_row(row: dict, read_dicom: Callable | None) -> tuple[str, int, Keypoints] | str:
    """(pixel sha256, pHash, ORB keypoints) of a row's image, or the reason it could not be read."""
    try:
        grey = read_grey(row["path"], read_dicom)
    except Exception as exc:  # any decoder failure removes the row, it must not stop the run
        return f"{type(exc).__name__}: {exc}"
    return pixel_sha256(grey), phash64(grey), orb_keypoints(grey)


def describe_rows(rows: list[dict], workers: int,
                  read_dicom: Callable | None) -> tuple[list[Keypoints | None], list[tuple[int, str]]]:
    """Fill ``pixel_sha256`` and ``phash`` in place.

    Returns keypoints aligned with ``rows`` (None where unreadable) and (row index, reason) of
    the unreadable rows.
    """
    keypoints: list[Keypoints | None] = []
    failed = []
    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:  # cv2 releases the GIL
        results = pool.map(lambda r: describe_row(r, read_dicom), rows)
        for i, result in enumerate(tqdm(results, total=len(rows), desc="decoding", unit="img")):
            if isinstance(result, str):
                failed.append((i, result))
                keypoints.append(None)
                continue
            rows[i]["pixel_sha256"], ph, kp = result
            rows[i]["phash"] = f"{ph:016x}"
            keypoints.append(kp)
    return keypoints, failed


def _popcount64(x: np.ndarray) -> np.ndarray:
    """Set bits per uint64 element."""
    if hasattr(np, "bitwise_count"):  # numpy >= 2.0
        return np.bitwise_count(x)
    table = np.array([bin(i).count("1") for i in range(256)], dtype=np.uint8)
    return table[x.view(np.uint8)].reshape(*x.shape, 8).sum(axis=-1)


def near_duplicate_pairs(hashes: Sequence[int], max_distance: int,
                         block: int = 512) -> list[tuple[int, int, int]]:
    """All (i, j, hamming) with i < j and pHash Hamming distance <= ``max_distance``.

    Exhaustive and exact: XOR + popcount of one block of rows against every later hash, so
    memory stays at ``block x n`` uint64 (about 54 MB for 13k hashes).
    """
    h = np.asarray(hashes, dtype=np.uint64)
    pairs = []
    for start in range(0, len(h), block):
        dist = _popcount64(h[start:start + block, None] ^ h[None, start:])
        i, j = np.nonzero(dist <= max_distance)
        upper = j > i  # block rows sit at columns 0..block-1 of their own slice
        for a, b in zip(i[upper], j[upper]):
            pairs.append((start + int(a), start + int(b), int(dist[a, b])))
    return pairs


def verify_pairs(pairs: list[tuple[int, int, int]], keypoints: list[Keypoints], min_inliers: int,
                 min_fraction: float, workers: int, chunk: int = 1024) -> list[dict]:
    """Candidate pairs (row a, row b, hamming) confirmed by matched keypoints, as link dicts.

    A pair is confirmed when it keeps ``min_inliers`` inliers that are also ``min_fraction`` of
    the smaller image's keypoint count. The fraction is what separates different children in
    Kermany, whose rib cages look alike (20-60 inliers, but nearly always under 10% of ~500
    keypoints), from copies and repeat films of one adult, which mostly keep more than 10%.
    """
    def check(batch):
        return [matched_inliers(keypoints[a], keypoints[b]) for a, b, _ in batch]

    batches = [pairs[i:i + chunk] for i in range(0, len(pairs), chunk)]  # one future per batch, not per pair
    links = []
    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool, \
            tqdm(total=len(pairs), desc="verifying", unit="pair") as bar:
        for batch, counts in zip(batches, pool.map(check, batches)):
            bar.update(len(batch))
            for (a, b, dist), n in zip(batch, counts):
                fraction = n / max(1, min(len(keypoints[a].points), len(keypoints[b].points)))
                if n >= min_inliers and fraction >= min_fraction:
                    links.append({"a": a, "b": b, "hamming": dist, "inliers": n, "fraction": round(fraction, 3)})
    return links


# ----------------------------------------------------------------------------- grouping

class UnionFind:
    """Disjoint sets over 0..n-1 with path halving; the root is always the smallest index."""

    def __init__(self, n: int):
        self.parent = list(range(n))

    def find(self, x: int) -> int:
        while self.parent[x] != x:
            self.parent[x] = self.parent[self.parent[x]]
            x = self.parent[x]
        return x

    def union(self, a: int, b: int) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            self.parent[max(ra, rb)] = min(ra, rb)


def find_near_duplicates(rows: list[dict], keypoints: list[Keypoints], max_distance: int,
                         min_inliers: int, min_fraction: float, workers: int) -> tuple[list[dict], int]:
    """Near-duplicate links between distinct images, and the number of pHash candidates checked.

    pHash alone is not enough for radiographs: chest films of different patients are alike at
    8x8 DCT resolution (in cxr3, distance <= 6 gives some 5,400 candidate pairs, nearly all of
    different people), and crops or borders push true copies beyond distance 10, so each
    candidate must also share geometrically consistent ORB keypoints (see :func:`verify_pairs`);
    ``min_inliers`` 0 keeps every candidate. Only the first row of each pixel hash takes part.
    """
    first: dict[str, int] = {}
    for i, row in enumerate(rows):
        first.setdefault(row["pixel_sha256"], i)
    reps = sorted(first.values())
    candidates = [(reps[a], reps[b], d)
                  for a, b, d in near_duplicate_pairs([int(rows[i]["phash"], 16) for i in reps], max_distance)]
    if min_inliers <= 0:
        return [{"a": a, "b": b, "hamming": d} for a, b, d in candidates], len(candidates)
    return verify_pairs(candidates, keypoints, min_inliers, min_fraction, workers), len(candidates)


def link_rows(rows: list[dict], near_links: list[dict]) -> UnionFind:
    """Union rows that share a patient id or a pixel hash, or are near duplicates."""
    uf = UnionFind(len(rows))
    first_of: dict[tuple[str, str], int] = {}
    for i, row in enumerate(rows):
        for key in (("patient", row["patient_id"]), ("pixels", row["pixel_sha256"])):
            uf.union(first_of.setdefault(key, i), i)
    for link in near_links:
        uf.union(link["a"], link["b"])
    return uf


def _majority(values: Iterable[str]) -> str:
    """Most common value; ties go to the alphabetically first."""
    counts = Counter(values)
    return min(counts, key=lambda v: (-counts[v], v))


def build_groups(rows: list[dict], uf: UnionFind) -> list[Group]:
    """Groups in order of their first row; ids ``g00000``... are stable for the same input."""
    members: dict[int, list[int]] = defaultdict(list)
    for i in range(len(rows)):
        members[uf.find(i)].append(i)
    groups = []
    for n, root in enumerate(sorted(members)):
        idx = members[root]
        group = Group(f"g{n:05d}", idx, {rows[i]["label"] for i in idx})
        group.stratum = (_majority(rows[i]["label"] for i in idx),
                         _majority(rows[i]["source"] for i in idx),
                         _majority(rows[i].get("age_group", "unknown") for i in idx))
        groups.append(group)
        for i in idx:
            rows[i]["group_id"] = group.group_id
    return groups


def removal(row: dict, reason: str, related: dict | None = None, hamming: int | str = "",
            detail: str = "", action: str = "removed") -> dict:
    """One duplicates.csv record."""
    return {"id": row["id"], "file": row["file"], "label": row["label"], "source": row["source"],
            "patient_id": row["patient_id"], "group_id": row.get("group_id", ""), "action": action,
            "reason": reason, "related_id": related["id"] if related else "", "hamming": hamming,
            "detail": detail}


def drop_label_conflicts(rows: list[dict], groups: list[Group],
                         duplicate_rows: set[int]) -> tuple[list[Group], list[dict]]:
    """Drop whole groups whose members carry more than one label; log each one.

    ``detail`` says whether the conflict involves duplicate images or only different films of
    one patient (e.g. an early normal film and a later COVID film).
    """
    kept, records = [], []
    for group in groups:
        if len(group.labels) == 1:
            kept.append(group)
            continue
        via = "duplicates" if duplicate_rows & set(group.members) else "patient only"
        labels = "/".join(sorted(group.labels))
        patients = sorted({rows[i]["patient_id"] for i in group.members})
        log.warning("dropping group %s (%d images, patients %s): conflicting labels %s via %s",
                    group.group_id, len(group.members), ", ".join(patients), labels, via)
        records += [removal(rows[i], "label_conflict", detail=f"labels {labels} via {via}")
                    for i in group.members]
    return kept, records


def drop_exact_duplicates(rows: list[dict], groups: list[Group]) -> list[dict]:
    """Keep the first row of each pixel hash within its group; remove the rest from ``members``."""
    records = []
    for group in groups:
        first: dict[str, int] = {}
        keep = []
        for i in group.members:
            sha = rows[i]["pixel_sha256"]
            if sha in first:
                records.append(removal(rows[i], "exact_duplicate", rows[first[sha]], 0))
            else:
                first[sha] = i
                keep.append(i)
        group.members = keep
    return records


# ----------------------------------------------------------------------------- splitting

def assign_splits(groups: list[Group], fractions: dict[str, float], seed: int) -> dict[str, str]:
    """group_id -> split: greedy, stratum by stratum, each group to the split furthest below target.

    Within a stratum (class, source, age group) groups are taken in seeded random order. Not
    largest first: that would send every many-film patient to train and leave val and test
    with single-film patients. A stratum misses its targets by at most its largest group.
    """
    rng = random.Random(seed)
    strata: dict[tuple, list[Group]] = defaultdict(list)
    for group in groups:
        strata[group.stratum].append(group)
    assignment = {}
    for stratum in sorted(strata):
        members = strata[stratum]
        rng.shuffle(members)
        total = sum(len(g.members) for g in members)
        filled = dict.fromkeys(fractions, 0)
        for group in members:
            split = max(fractions, key=lambda s: fractions[s] * total - filled[s])
            filled[split] += len(group.members)
            assignment[group.group_id] = split
    return assignment


def check_disjoint(rows: list[dict]) -> None:
    """Raise LeakageError when a patient, group or pixel hash appears in two splits."""
    for key in ("patient_id", "group_id", "pixel_sha256"):
        splits: dict[str, set[str]] = defaultdict(set)
        for row in rows:
            splits[row[key]].add(row["split"])
        leaked = sorted(k for k, s in splits.items() if len(s) > 1)
        if leaked:
            raise LeakageError(f"{len(leaked)} {key} values span splits, e.g. {leaked[:5]}")


def cap_train(rows: list[dict], cap: int, seed: int) -> tuple[list[dict], list[dict]]:
    """Keep at most ``cap`` random train rows per (class, source); val and test stay whole."""
    rng = random.Random(f"{seed}-cap")
    by_key: dict[tuple, list[int]] = defaultdict(list)
    for i, row in enumerate(rows):
        if row["split"] == "train":
            by_key[(row["label"], row["source"])].append(i)
    dropped = set()
    for key in sorted(by_key):
        idx = by_key[key]
        if len(idx) > cap:
            dropped |= set(rng.sample(idx, len(idx) - cap))
    records = [removal(rows[i], "cap_per_class_source", detail=f"cap {cap}") for i in sorted(dropped)]
    return [r for i, r in enumerate(rows) if i not in dropped], records


# ----------------------------------------------------------------------------- weights

ADULT_GROUPS = ("adult", "adult(presumed)", "unknown(likely adult)")


def coarse_age(age_group: str) -> str:
    """``pediatric`` or ``adult`` (the manifest's adult, presumed and likely-adult groups); else ``unknown``."""
    if age_group == "pediatric":
        return "pediatric"
    return "adult" if age_group in ADULT_GROUPS else "unknown"


def _floored_shares(counts: Counter, floor: int, power: float = 0.0) -> dict:
    """key -> min(1, n / floor) * n ** power: an equal share (power 0), shrunk for keys with fewer
    than ``floor`` images; power 0.5 gives larger keys a share growing with sqrt(n)."""
    return {key: min(1.0, n / max(1, floor)) * n ** power for key, n in counts.items()}


def sample_weights(rows: list[dict], source_floor: int = 1, age_floor: int | None = None,
                   source_power: float = 0.0) -> None:
    """Set ``sample_weight`` per split so that classes, age groups within a class and sources are drawn equally.

    Without ``age_floor``: w(row) = N / (K * S_c * n_cs), with N the images in the row's split, K
    the classes present in it, S_c the sources of class c in it and n_cs the images of class c
    from source s. Each class then holds 1/K of the total weight, shared equally by its sources;
    the mean weight is 1.

    With ``age_floor`` the class's 1/K is first shared equally by its coarse age groups
    (:func:`coarse_age`: pediatric / adult), then by the sources within each (class, age group).
    Why: 93% of cxr3's pneumonia films are children, so a source-balanced draw still lets the
    model answer "pneumonia" by recognising a child; with the class's mass split half and half
    by age, a child's chest carries no information on normal vs pneumonia.

    A source (or an age group) with fewer than ``source_floor`` (``age_floor``) images gets only
    n / floor of an equal share (shares renormalised). Without this floor a single image (cxr3
    keeps one ieee8023 normal in train) would draw a third of all normal samples, and the 10
    pediatric COVID-19 training films would draw half of all COVID-19 samples.

    ``source_power`` p > 0 shares a (class, age group)'s mass between its sources in proportion
    to floor_share * n ** p instead of equally (p 0.5: square-root frequency). Why: with equal
    shares a large source is drawn far less per class than its size (cxr3's 3,149 adult normals
    of ``covid19_radiography_db`` got a fifth of the normal draws, its 1,780 COVID-19 films a
    third of the COVID-19 draws), which teaches "this source's look means COVID-19", while a
    32-film source is repeated twenty-fold.
    """
    for split in SPLITS:
        members = [r for r in rows if r["split"] == split]
        if age_floor is None:
            age = {id(r): "all" for r in members}
        else:
            age = {id(r): coarse_age(r.get("age_group", "unknown")) for r in members}
        n_cas = Counter((r["label"], age[id(r)], r["source"]) for r in members)
        n_ca = Counter((r["label"], age[id(r)]) for r in members)
        source_share = _floored_shares(n_cas, source_floor, source_power)
        age_share = _floored_shares(n_ca, age_floor or 1)
        source_total, age_total = Counter(), Counter()
        for (label, group, _), value in source_share.items():
            source_total[(label, group)] += value
        for (label, _), value in age_share.items():
            age_total[label] += value
        k = len(age_total)
        for row in members:
            label, group = row["label"], age[id(row)]
            key = (label, group, row["source"])
            weight = (len(members) / k * age_share[(label, group)] / age_total[label]
                      * source_share[key] / source_total[(label, group)] / n_cas[key])
            row["sample_weight"] = f"{weight:.6g}"


def class_weights(rows: list[dict], split: str = "train") -> dict:
    """Inverse-frequency class weights N / (K * n_c) over one split (sklearn's "balanced")."""
    counts = Counter(r["label"] for r in rows if r["split"] == split)
    total = sum(counts.values())
    labels = [c for c in CLASSES if c in counts] + sorted(set(counts) - set(CLASSES))
    return {"split": split, "formula": "N / (K * n_c)", "classes": labels,
            "counts": {c: counts[c] for c in labels},
            "weights": {c: round(total / (len(labels) * counts[c]), 6) for c in labels}}


# ----------------------------------------------------------------------------- outputs

def write_csv(path: Path, rows: Iterable[dict], columns: list[str]) -> None:
    """CSV with fixed columns and \\n line endings (so the file hash is platform independent)."""
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=columns, extrasaction="ignore", lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)


def count_rows(rows: list[dict]) -> list[dict]:
    """Images, patients, each image's sampling weight and the stratum's share of the split's draws,
    per split x class x source x age group, in split and class order."""
    images: Counter = Counter()
    mass: Counter = Counter()
    split_mass: Counter = Counter()
    patients: dict[tuple, set] = defaultdict(set)
    for row in rows:
        key = (row["split"], row["label"], row["source"], row.get("age_group", "unknown"))
        images[key] += 1
        patients[key].add(row["patient_id"])
        weight = float(row.get("sample_weight") or 0.0)
        mass[key] += weight
        split_mass[row["split"]] += weight
    order = {name: i for i, name in enumerate(SPLITS + CLASSES)}
    keys = sorted(images, key=lambda k: (order.get(k[0], 99), order.get(k[1], 99), k[2], k[3]))
    return [{"split": k[0], "label": k[1], "source": k[2], "age_group": k[3],
             "images": images[k], "patients": len(patients[k]),
             "weight": round(mass[k] / images[k], 4),
             "draw_share": round(mass[k] / split_mass[k[0]], 4) if split_mass[k[0]] else 0.0} for k in keys]


def _md_table(header: list[str], body: list[list]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return lines + ["| " + " | ".join(str(c) for c in row) + " |" for row in body]


def counts_markdown(counts: list[dict]) -> str:
    """counts.md: totals per split x class, then the full split x class x source x age table."""
    totals: Counter = Counter()
    for c in counts:
        totals[(c["split"], c["label"])] += c["images"]
    labels = [c for c in CLASSES if any(k[1] == c for k in totals)]
    body = [[label] + [totals[(s, label)] for s in SPLITS] + [sum(totals[(s, label)] for s in SPLITS)]
            for label in labels]
    body.append(["**all**"] + [sum(totals[(s, c)] for c in labels) for s in SPLITS] + [sum(totals.values())])
    lines = ["# Curated split counts", "", "## Images per split x class", ""]
    lines += _md_table(["class", *SPLITS, "all"], body)
    lines += ["", "## Images (patients) per split x class x source x age group", "",
              "`weight`: each image's `sample_weight`; `draw share`: the stratum's share of a split's "
              "weighted draws (what training samples from the train split).", ""]
    lines += _md_table(["split", "class", "source", "age group", "images", "patients", "weight", "draw share"],
                       [[c["split"], c["label"], c["source"], c["age_group"], c["images"], c["patients"],
                         c.get("weight", ""), c.get("draw_share", "")] for c in counts])
    return "\n".join(lines) + "\n"


def file_sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


# ----------------------------------------------------------------------------- CLI

def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m training.curate", description=__doc__.split("\n\n")[0])
    source = p.add_mutually_exclusive_group(required=True)
    source.add_argument("--manifest", type=Path, help="cxr3-style manifest.csv (image paths relative to it)")
    source.add_argument("--folder", type=Path, help="ROOT laid out ROOT/<normal|pneumonia|covid>/<images>")
    p.add_argument("--patients", type=Path, help="with --folder: CSV with columns file,patient_id "
                   "(default ROOT/patients.csv when present; otherwise one patient per image)")
    p.add_argument("--out", type=Path, default=Path("training/work/curated"), help="output folder")
    p.add_argument("--seed", type=int, default=20240601, help="seed for --limit, the split and caps")
    p.add_argument("--fractions", type=float, nargs=3, default=(0.70, 0.15, 0.15),
                   metavar=("TRAIN", "VAL", "TEST"), help="split fractions (normalised to sum 1)")
    p.add_argument("--near-distance", type=int, default=12,
                   help="pHash Hamming distance at or below which two images are near-duplicate candidates "
                   "(run time grows with it: 12 checks ~560k pairs of cxr3, 10 ~160k)")
    p.add_argument("--min-inliers", type=int, default=20,
                   help="ORB keypoint matches (one similarity transform) that confirm a candidate; 0: pHash alone")
    p.add_argument("--min-inlier-fraction", type=float, default=0.10,
                   help="...and the share of the smaller image's keypoints those matches must reach")
    p.add_argument("--source-floor", type=int, default=50, metavar="N",
                   help="sample_weight: a source with fewer than N images in a class gets a smaller share "
                   "(1: every source gets an equal share however small)")
    p.add_argument("--source-power", type=float, default=0.0, metavar="P",
                   help="sample_weight: share a class x age group between its sources in proportion to n**P "
                   "(0: equally, the default; 0.5: square-root frequency)")
    p.add_argument("--age-balance", action=argparse.BooleanOptionalAction, default=True,
                   help="sample_weight: share each class's mass equally between pediatric and adult films "
                   "before sources (--no-age-balance: classes and sources only, as curations before 2026-11-29)")
    p.add_argument("--age-floor", type=int, default=150, metavar="N",
                   help="with --age-balance: an age group with fewer than N images in a class gets a smaller share")
    p.add_argument("--cap-per-class-source", type=int, metavar="N",
                   help="experiments only: keep at most N random train images per class x source")
    p.add_argument("--limit", type=int, metavar="N", help="smoke tests: a seeded random subset of N images")
    p.add_argument("--workers", type=int, default=2, help="decoder threads")
    args = p.parse_args(argv)
    if min(args.fractions) < 0 or sum(args.fractions) <= 0:
        p.error("--fractions must be non-negative with a positive sum")
    if args.near_distance < 0 or args.near_distance > 64:
        p.error("--near-distance must be within 0..64")
    return args


def _load(args: argparse.Namespace) -> tuple[list[dict], list[str], Callable | None]:
    """Rows, original columns and the DICOM reader (None when DICOM is unsupported)."""
    read_dicom = dicom_reader()
    if args.manifest:
        rows, columns = load_manifest(args.manifest)
        log.info("manifest %s: %d rows", args.manifest, len(rows))
        return rows, columns, read_dicom
    patients = args.patients or (args.folder / "patients.csv")
    if read_dicom is None:
        log.info("cxr_engine.reading.read.read_image not available: .dcm files are skipped")
    rows, columns = load_folder(args.folder, patients if patients.is_file() else None, read_dicom is not None)
    log.info("folder %s: %d images", args.folder, len(rows))
    return rows, columns, read_dicom


def _split_table(rows: list[dict]) -> dict:
    """{split: {class: images}} plus per-split totals and patient counts."""
    table: dict = {s: {"images": 0, "patients": 0, "by_class": {}} for s in SPLITS}
    for split in SPLITS:
        members = [r for r in rows if r["split"] == split]
        by_class = Counter(r["label"] for r in members)
        table[split] = {"images": len(members), "patients": len({r["patient_id"] for r in members}),
                        "by_class": {c: by_class[c] for c in CLASSES if c in by_class}}
    return table


def _warn_giant_group(groups: list[Group], n_rows: int) -> int:
    """Largest group size; warns when chained near-duplicate links may have merged unrelated images."""
    largest = max((len(g.members) for g in groups), default=0)
    if largest > max(50, n_rows // 100):
        log.warning("largest group holds %d of %d images: check --near-distance", largest, n_rows)
    return largest


def _describe(rows: list[dict], workers: int,
              read_dicom: Callable | None) -> tuple[list[dict], list[Keypoints], list[dict]]:
    """Readable rows with their hashes, their keypoints, and removal records of unreadable ones."""
    keypoints, failed = describe_rows(rows, workers, read_dicom)
    unreadable = [removal(rows[i], "unreadable", detail=reason) for i, reason in failed]
    for record in unreadable:
        log.warning("unreadable %s: %s", record["file"], record["detail"])
    readable = [i for i, kp in enumerate(keypoints) if kp is not None]
    return [rows[i] for i in readable], [keypoints[i] for i in readable], unreadable


def _duplicate_rows(rows: list[dict], links: list[dict]) -> set[int]:
    """Indices of rows with an exact copy or a near-duplicate link."""
    sha_counts = Counter(r["pixel_sha256"] for r in rows)
    exact = {i for i, r in enumerate(rows) if sha_counts[r["pixel_sha256"]] > 1}
    return exact | {i for link in links for i in (link["a"], link["b"])}


def _link_records(rows: list[dict], links: list[dict]) -> list[dict]:
    """duplicates.csv records of near-duplicate links (both images kept, in one group)."""
    return [removal(rows[x["a"]], "near_duplicate", rows[x["b"]], x["hamming"], action="linked",
                    detail=f"{x['inliers']} ORB inliers ({x['fraction']:.0%})" if "inliers" in x else "pHash only")
            for x in links]


def split_groups(rows: list[dict], groups: list[Group], fractions: dict[str, float], seed: int) -> list[dict]:
    """Kept rows in input order with ``split`` set; raises LeakageError if anything crosses splits."""
    assignment = assign_splits(groups, fractions, seed)
    kept = [rows[i] for i in sorted(i for g in groups for i in g.members)]
    for row in kept:
        row["split"] = assignment[row["group_id"]]
    check_disjoint(kept)
    return kept


def curate(args: argparse.Namespace, command: str) -> dict:
    """Run the whole pipeline and write every output into ``args.out``; returns the summary."""
    started = time.perf_counter()
    fractions = {s: f / sum(args.fractions) for s, f in zip(SPLITS, args.fractions)}
    rows, columns, read_dicom = _load(args)
    n_input = len(rows)
    rows = random_subset(rows, args.limit, args.seed)
    n_selected = len(rows)
    rows, keypoints, unreadable = _describe(rows, args.workers, read_dicom)

    links, n_candidates = find_near_duplicates(rows, keypoints, args.near_distance, args.min_inliers,
                                               args.min_inlier_fraction, args.workers)
    del keypoints  # about 20 kB per image
    log.info("%d of %d pHash candidates (distance <= %d) confirmed as near duplicates "
             "(>= %d ORB inliers and >= %.0f%% of keypoints)", len(links), n_candidates, args.near_distance,
             args.min_inliers, 100 * args.min_inlier_fraction)
    groups = build_groups(rows, link_rows(rows, links))
    groups, conflicts = drop_label_conflicts(rows, groups, _duplicate_rows(rows, links))
    exact = drop_exact_duplicates(rows, groups)
    largest = _warn_giant_group(groups, len(rows))
    log.info("%d exact duplicates removed; %d groups, the largest of %d images", len(exact), len(groups), largest)
    kept = split_groups(rows, groups, fractions, args.seed)

    capped: list[dict] = []
    if args.cap_per_class_source:
        kept, capped = cap_train(kept, args.cap_per_class_source, args.seed)
    sample_weights(kept, args.source_floor, args.age_floor if args.age_balance else None, args.source_power)

    sha_counts = Counter(r["pixel_sha256"] for r in rows)
    summary = {
        "command": command,
        "seed": args.seed,
        "parameters": {"fractions": fractions, "near_distance": args.near_distance,
                       "min_inliers": args.min_inliers, "min_inlier_fraction": args.min_inlier_fraction,
                       "source_floor": args.source_floor, "source_power": args.source_power,
                       "age_balance": args.age_balance, "age_floor": args.age_floor,
                       "cap_per_class_source": args.cap_per_class_source, "limit": args.limit},
        "input": {"rows": n_input, "selected": n_selected, "unreadable": len(unreadable)},
        "duplicates": {
            "exact_duplicate_sets": sum(n > 1 for n in sha_counts.values()),
            "exact_duplicates_removed": len(exact),
            "near_duplicate_candidates": n_candidates,
            "near_duplicate_links": len(links),
            "near_duplicate_images": len({i for x in links for i in (x["a"], x["b"])}),
            "label_conflict_groups": {r["group_id"]: r["detail"] for r in conflicts},
            "label_conflict_images_removed": len(conflicts),
        },
        "groups": {"count": len(groups), "largest": largest},
        "capped_removed": len(capped),
        "kept": len(kept),
        "splits": _split_table(kept),
    }
    records = unreadable + conflicts + exact + capped + _link_records(rows, links)
    _write_outputs(args.out, columns, kept, records, summary)
    summary["seconds"] = round(time.perf_counter() - started, 1)
    (args.out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    return summary


def _write_outputs(out: Path, columns: list[str], kept: list[dict], records: list[dict], summary: dict) -> None:
    """split_manifest.csv, duplicates.csv, counts.csv/.md and class_weights.json; records hashes in summary."""
    manifest = out / "split_manifest.csv"
    write_csv(manifest, kept, columns + [c for c in ADDED_COLUMNS if c not in columns])
    write_csv(out / "duplicates.csv", records, DUPLICATE_COLUMNS)
    counts = count_rows(kept)
    write_csv(out / "counts.csv", counts,
              ["split", "label", "source", "age_group", "images", "patients", "weight", "draw_share"])
    (out / "counts.md").write_text(counts_markdown(counts), encoding="utf-8")
    weights = class_weights(kept)
    (out / "class_weights.json").write_text(json.dumps(weights, indent=2) + "\n", encoding="utf-8")
    summary["class_weights"] = weights["weights"]
    summary["split_manifest_sha256"] = file_sha256(manifest)


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    with script_logging(args.out / "curate.log"):
        command = shlex.join(["python", "-m", "training.curate", *argv])
        log.info("command: %s", command)
        summary = curate(args, command)
        split_text = ", ".join(f"{s} {summary['splits'][s]['images']}" for s in SPLITS)
        log.info("done in %.1f s: %s; split_manifest sha256 %s", summary["seconds"], split_text,
                 summary["split_manifest_sha256"])
    print(f"curated {summary['kept']} images ({split_text}) into {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
