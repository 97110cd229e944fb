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


def test_a_file_that_is_not_dicom_says_what_it_is(tmp_path, dicom_dir):
    """A file named like a film that is something else (notes saved as .dcm, a report, an archive) is named for
    what it is; an old DICOM file without the DICM prefix is still read as DICOM."""
    import shutil

    folder = tmp_path / "study"
    folder.mkdir()
    (folder / "notes.dcm").write_text("Patient called back, see RIS\n")
    (folder / "report.dcm").write_bytes(b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj\n")
    (folder / "images.DCM").write_bytes(b"PK\x03\x04\x14\x00\x00\x00\x08\x00" + bytes(64))
    (folder / "latin.dcm").write_bytes("Rückruf nötig, siehe Befund\n".encode("utf-8"))
    (folder / "binary.dcm").write_bytes(bytes(range(1, 200)))
    shutil.copy(dicom_dir / "CR-MONO1-10-chest.dcm", folder / "old.dcm")  # no preamble, no DICM: raw elements
    result = scan(folder)
    reasons = {e.path.name: e.reason for e in result.errors}
    assert reasons == {"notes.dcm": "a text file, not a DICOM file", "report.dcm": "a PDF document, not a DICOM file",
                       "images.DCM": "a ZIP archive (or an Office document), not a DICOM file",
                       "latin.dcm": "a text file, not a DICOM file", "binary.dcm": reasons["binary.dcm"]}
    assert reasons["binary.dcm"].startswith("not a valid DICOM file")  # nothing tells what it is
    assert len(result.image_files()) == 1


def test_a_zero_file_named_directly_is_refused(tmp_path):
    sparse(tmp_path / "notes")
    (error,) = scan(tmp_path / "notes").errors
    assert error.reason == NOT_DICOM_OR_IMAGE  # named directly, it claims nothing: neither DICOM nor an image


def test_an_image_of_another_format_named_directly_is_not_called_no_image(tmp_path):
    """A tester's finding: a GIF named directly read "a GIF image, not a DICOM or image file"."""
    gif = tmp_path / "scan.gif"
    gif.write_bytes(b"GIF89a" + bytes(100))
    (error,) = scan(gif).errors
    assert error.reason == "a GIF image: this program reads DICOM, PNG and JPEG files only"
