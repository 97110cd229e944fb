"""A file of zero bytes is refused at once: pydicom parses zeros as endless empty (0000,0000) elements, and a
new user's 2 GB file of zeros named ``.dcm`` held the folder scan for 13 minutes with nothing on screen.
The files here are sparse (no disk space); before the fix each would have taken about 20 s."""
from __future__ import annotations

import shutil

from cxr_engine.messages import NOT_DICOM_OR_IMAGE, NOT_DICOM_ZEROS
from cxr_engine.reading.scanning import scan

SIZE = 64 * 2**20


def sparse(path, head: bytes = b"") -> None:
    with open(path, "wb") as handle:
        handle.write(head)
        handle.truncate(SIZE)


def test_zero_files_named_as_dicom_or_with_the_prefix_are_refused_with_the_reason(tmp_path, dicom_dir):
    folder = tmp_path / "study"
    folder.mkdir()
    sparse(folder / "zeros.dcm")
    sparse(folder / "prefix_then_zeros", b"\0" * 128 + b"DICM")
    sparse(folder / "1.2.840.99")  # a UID-like name, no extension: tried, and skipped quietly
    shutil.copy(dicom_dir / "CR-MONO1-10-chest.dcm", folder / "film.dcm")
    result = scan(folder)
    reasons = {e.path.name: e.reason for e in result.errors}
    assert reasons == {"zeros.dcm": NOT_DICOM_ZEROS, "prefix_then_zeros": NOT_DICOM_ZEROS}
    assert [i.path.name for p in result.patients for st in p.studies for se in st.series for i in se.instances] == ["film.dcm"]


def test_a_zero_file_named_directly_is_refused(tmp_path):
    sparse(tmp_path / "notes")
    (error,) = scan(tmp_path / "notes").errors
    assert error.reason == NOT_DICOM_OR_IMAGE  # named directly, it claims nothing: neither DICOM nor an image
