"""Why DICOMDIR references are read by ``cxr_engine.reading.dicomdir`` and not by ``pydicom.fileset.FileSet``.

On the bug case ``dicomdir-lowercase`` (a CD's DICOMDIR listing upper-case File IDs, copied with lower-case
names) FileSet drops the only reference, and one reference outside the folder makes it refuse the whole
set. When a pydicom release passes these, FileSet can replace the hand reading.
"""
from __future__ import annotations

import os
import shutil
import warnings
from pathlib import Path

import pydicom
import pytest
from pydicom.fileset import FileSet

from cxr_engine.reading.dicomdir import dicomdir_references

BUGCASES = Path(os.environ.get("CXR_BUGCASES", Path(__file__).resolve().parents[2] / "shared" / "bugcases"))
LOWERCASE = BUGCASES / "dicomdir-lowercase"


@pytest.fixture()
def lowercase_cd() -> Path:
    if not (LOWERCASE / "DICOMDIR").exists():
        pytest.skip(f"bug case not found at {LOWERCASE} (set CXR_BUGCASES to the shared bugcases folder)")
    return LOWERCASE


def test_fileset_misses_the_lower_case_copy_the_engine_finds(lowercase_cd):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # FileSet warns that the referenced file does not exist
        assert len(FileSet(lowercase_cd / "DICOMDIR")) == 0
    refs = dicomdir_references(lowercase_cd / "DICOMDIR")
    assert [problem for _, problem in refs] == [None]
    assert refs[0][0].is_file() and refs[0][0].name == "im000000"


def test_one_reference_outside_the_folder_fileset_refuses_all_the_engine_judges_alone(lowercase_cd, tmp_path):
    cd = tmp_path / "cd"
    shutil.copytree(lowercase_cd, cd)
    ds = pydicom.dcmread(cd / "DICOMDIR")
    record = next(r for r in ds.DirectoryRecordSequence if "ReferencedFileID" in r)
    extra = pydicom.Dataset()
    extra.update(record)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # ".." is not a valid CS value: that is the point
        extra.ReferencedFileID = ["..", "OUTSIDE"]
    ds.DirectoryRecordSequence.append(extra)  # an orphan record: outside the hierarchy
    ds.save_as(cd / "DICOMDIR")
    with pytest.raises(PermissionError, match="inside the DICOMDIR root"):
        FileSet(cd / "DICOMDIR")
    problems = [problem for _, problem in dicomdir_references(cd / "DICOMDIR")]
    assert problems[0] is None and "outside its folder" in problems[1]
