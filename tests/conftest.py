"""Shared fixtures: where the real data lives, skipping with a reason when it is absent."""
from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("CXR_DATA", REPO_ROOT.parent / "shared" / "data"))

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")


def _need(path: Path) -> Path:
    if not path.exists():
        pytest.skip(f"real data not found at {path} (set CXR_DATA to the shared data folder)")
    return path


@pytest.fixture(scope="session")
def shared_data() -> Path:
    return _need(SHARED_DATA)


@pytest.fixture(scope="session")
def dicom_dir() -> Path:
    return _need(SHARED_DATA / "dicom")


@pytest.fixture(scope="session")
def cxr3_dir() -> Path:
    return _need(SHARED_DATA / "cxr3")


def film_folder(tmp_path: Path, dicom_dir: Path, names) -> Path:
    """``tmp_path/films`` holding copies of the real DICOM files ``names`` and one damaged file."""
    folder = tmp_path / "films"
    folder.mkdir()
    for name in names:
        shutil.copy(dicom_dir / name, folder / name)
    (folder / "damaged.dcm").write_bytes(b"DICM" * 40)
    return folder


def real_films(folder: Path, dicom_dir: Path, names) -> Path:
    """``folder``, created, holding copies of the real DICOM files ``names``; skips the test, naming the
    files, when any of them is not in ``dicom_dir``."""
    missing = [name for name in names if not (dicom_dir / name).exists()]
    if missing:
        pytest.skip(f"not in {dicom_dir}: {', '.join(missing)}")
    folder.mkdir(parents=True)
    for name in names:
        shutil.copy(dicom_dir / name, folder / name)
    return folder


def set_attributes(ds, attributes: dict) -> None:
    """Set each keyword of ``attributes`` on the pydicom dataset ``ds``; a None value removes the attribute
    (when present)."""
    for keyword, value in attributes.items():
        if value is None:
            if keyword in ds:
                delattr(ds, keyword)
        else:
            setattr(ds, keyword, value)


def real_lung_masks(cxr3_dir: Path, count: int) -> list:
    """The first ``count`` lung masks of cxr3 as bool arrays, each full size, inverted (many background
    pieces and holes) and at a lung model's coarser grid (every 5th pixel)."""
    import numpy as np
    from PIL import Image

    files = sorted((cxr3_dir / "lung_masks").glob("*.png"))[:count]
    if not files:
        pytest.skip(f"no lung masks in {cxr3_dir / 'lung_masks'}")
    masks = []
    for path in files:
        mask = np.asarray(Image.open(path).convert("L")) > 127
        masks += [mask, ~mask, mask[::5, ::5]]
    return masks


def kermany_children(shared_data: Path, count: int) -> list[Path]:
    """The first ``count`` Kermany pneumonia films of cxr3 by id: children aged 1–5, JPEGs (so no age
    in a header). Skips when the manifest is absent."""
    import csv

    manifest = shared_data / "cxr3" / "manifest.csv"
    if not manifest.exists():
        pytest.skip(f"{manifest} is not on this machine")
    with open(manifest, newline="") as handle:
        rows = sorted((r for r in csv.DictReader(handle)
                       if r["source"] == "kermany_pediatric" and r["label"] == "pneumonia"), key=lambda r: r["id"])
    return [shared_data / "cxr3" / r["file"] for r in rows[:count]]
