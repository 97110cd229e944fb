"""Different images that claim one SOP Instance UID (tester: ``Fake_MONOHR1.dcm`` is the SIIM film relabelled
MONOCHROME1 under the same UID; both were shown, but the study PDF printed one Image UID on two pages without
a word). Both stay separate images, and every place that reports copies says that they share a UID. The two
real files, copied into tmp folders."""
from __future__ import annotations

import csv
import shutil
import subprocess
import sys
from pathlib import Path

import pydicom
import pytest

from cxr_engine import find_images
from cxr_engine.reading.uid_clashes import clash_note

from model_factory import BUNDLED_CARD

SIIM = "1.2.276.0.7230010.3.1.4.8323329.6904.1517875201.850819.dcm"
FAKE_MONO1 = "Fake_MONOHR1.dcm"
UID = "1.2.276.0.7230010.3.1.4.8323329.6904.1517875201.850819"


@pytest.fixture()
def clashing(tmp_path, dicom_dir) -> Path:
    folder = tmp_path / "clash"
    folder.mkdir()
    for name in (SIIM, FAKE_MONO1):
        shutil.copy(dicom_dir / name, folder / name)
    shutil.copy(dicom_dir / FAKE_MONO1, folder / "copy_of_fake.dcm")  # a copy: listed once, not a third image
    return folder


def test_find_images_names_the_images_that_share_a_uid(clashing, dicom_dir):
    a, b = (pydicom.dcmread(dicom_dir / name, stop_before_pixels=True) for name in (SIIM, FAKE_MONO1))
    assert a.SOPInstanceUID == b.SOPInstanceUID == UID and (dicom_dir / SIIM).read_bytes() != (dicom_dir / FAKE_MONO1).read_bytes()
    found = find_images([clashing])
    assert sorted(p.name for p in found.files) == sorted([SIIM, FAKE_MONO1])  # the copy is listed once
    assert found.uid_clashes == {UID: (clashing / SIIM, clashing / FAKE_MONO1)}
    assert clash_note(UID, found.uid_clashes[UID]).startswith(f"two different files claim the same SOP Instance UID {UID}: ")


def test_no_clash_for_copies_or_distinct_uids(tmp_path, dicom_dir):
    for name in (SIIM, "CR-MONO1-10-chest.dcm"):
        shutil.copy(dicom_dir / name, tmp_path / name)
    shutil.copy(dicom_dir / SIIM, tmp_path / "copy.dcm")
    assert find_images([tmp_path]).uid_clashes == {}
    assert find_images([tmp_path / SIIM, tmp_path / SIIM]).uid_clashes == {}  # one file named twice


def test_cli_warns_and_both_rows_carry_the_note(clashing, tmp_path):
    pytest.importorskip("onnxruntime")
    (clashing / "copy_of_fake.dcm").unlink()
    out = tmp_path / "r.csv"
    dicom_out = tmp_path / "dicom"
    proc = subprocess.run([sys.executable, "-m", "cxr_engine", str(clashing), "--csv", str(out), "--model",
                           str(BUNDLED_CARD), "--backend", "onnx", "--no-isolation", "--dicom-out", str(dicom_out)],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    note = clash_note(UID, (clashing / SIIM, clashing / FAKE_MONO1))
    assert f"cxr-classify: warning: {note}" in proc.stderr.splitlines()
    with open(out, newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert sorted(Path(r["path"]).name for r in rows) == sorted([SIIM, FAKE_MONO1])  # both kept, never merged
    assert all(note in row["warnings"] for row in rows)

    # Not in the DICOM outputs: local paths have no place in the hospital record, and a shared UID is no
    # reason to flag a result out of scope there.
    reports = sorted(dicom_out.glob("*_sr.dcm"))
    assert len(reports) == 2
    for report in reports:
        texts = []
        pydicom.dcmread(report).walk(lambda _ds, elem: texts.append(str(elem.value)) if elem.keyword == "TextValue"
                                     else None)
        assert texts and not any("SOP Instance UID" in text or str(clashing) in text for text in texts), texts
