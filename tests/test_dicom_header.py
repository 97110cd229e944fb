"""The header viewer's engine side (issue 18 item 2): every data element of real files as safe
rows, sequences as items, private elements marked, values escaped and elided, search."""
from __future__ import annotations

import pytest

from cxr_engine.reading.dicom_header import MAX_VALUE_CHARS, filter_elements, read_header, value_text
from cxr_engine.errors import ImageReadError

SIIM = "1.2.276.0.7230010.3.1.4.8323329.6904.1517875201.850819.dcm"


def _walk(elements):
    for element in elements:
        yield element
        for item in element.items:
            yield from _walk(item.elements)


def test_every_element_of_a_real_file_is_listed_in_tag_order(dicom_dir):
    import pydicom

    path = dicom_dir / SIIM
    rows = read_header(path)
    ds = pydicom.dcmread(path, force=True)
    meta = [r for r in rows if r.tag.startswith("(0002,")]
    body = [r for r in rows if not r.tag.startswith("(0002,")]
    assert len(meta) == len(ds.file_meta) and len(body) == len(ds)
    assert [r.tag for r in body] == [f"({e.tag.group:04X},{e.tag.element:04X})" for e in ds]
    name = next(r for r in rows if r.keyword == "PatientName")
    assert name.tag == "(0010,0010)" and name.vr == "PN" and name.value == str(ds.PatientName)
    spacing = next(r for r in rows if r.keyword == "PixelSpacing")
    assert spacing.value == "\\".join(str(v) for v in ds.PixelSpacing)  # multi-values as in the file
    syntax = next(r for r in rows if r.keyword == "TransferSyntaxUID")
    uid = ds.file_meta.TransferSyntaxUID
    assert syntax.value == f"{uid} ({uid.name})"  # a registered UID with its name (PS3.6 Annex A)
    pixels = next(r for r in rows if r.keyword == "PixelData")
    assert pixels.value.startswith("<") and "bytes" in pixels.value


def test_sequences_hold_their_items_and_private_elements_are_marked(dicom_dir):
    rows = read_header(dicom_dir / "RG1_J2KI.dcm")
    source = next(r for r in rows if r.keyword == "SourceImageSequence")
    assert source.vr == "SQ" and source.items and source.value == f"{len(source.items)} item" + (
        "s" if len(source.items) != 1 else "")
    assert any(e.keyword == "ReferencedSOPClassUID" for e in source.items[0].elements)
    private = [r for r in _walk(read_header(dicom_dir / "966_fixed.dcm")) if r.private]
    assert private and all(int(r.tag[1:5], 16) % 2 == 1 for r in private)
    assert not any(r.private for r in _walk(rows) if int(r.tag[1:5], 16) % 2 == 0)


def test_values_are_escaped_and_long_values_elided(tmp_path, dicom_dir):
    import pydicom

    ds = pydicom.dcmread(dicom_dir / SIIM)
    ds.StudyDescription = "CHEST\x07\x08PA"
    ds.add_new(0x00291010, "OB", bytes(range(40)))
    ds.add_new(0x00091001, "LT", "x" * 1000)
    path = tmp_path / "crafted.dcm"
    ds.save_as(path)
    rows = {r.tag: r for r in read_header(path)}
    assert rows["(0008,1030)"].value == "CHEST\\x07\\x08PA"
    assert rows["(0029,1010)"].value.startswith("<40 bytes: 00 01 02") and rows["(0029,1010)"].private
    long = rows["(0009,1001)"].value
    assert len(long) < MAX_VALUE_CHARS + 20 and long.endswith("… (1,000 characters)")
    assert value_text(None) == "" and value_text(["A", "B"]) == "A\\B"


def test_search_finds_a_tag_by_keyword_number_or_value_inside_sequences(dicom_dir):
    rows = read_header(dicom_dir / "RG1_J2KI.dcm")
    assert [r.keyword for r in filter_elements(rows, "pixelspacing")] == ["PixelSpacing"]
    assert [r.tag for r in filter_elements(rows, "0028,0030")] == ["(0028,0030)"]
    assert [r.tag for r in filter_elements(rows, "00280030")] == ["(0028,0030)"]
    inside = filter_elements(rows, "ReferencedSOPInstanceUID")
    assert inside and all(r.vr == "SQ" for r in inside)  # kept for the match inside
    assert all(e.keyword == "ReferencedSOPInstanceUID" for r in inside for item in r.items for e in item.elements)
    assert filter_elements(rows, "") == rows
    assert filter_elements(rows, "no such text anywhere") == ()


def test_a_file_that_is_not_dicom_is_refused_with_its_name(tmp_path):
    path = tmp_path / "notes.txt"
    path.write_text("not a DICOM file")
    with pytest.raises(ImageReadError, match="notes.txt"):
        read_header(path)


def test_damaged_and_crafted_files_end_in_rows_or_a_clear_refusal(shared_data, tmp_path):
    """Seeded mutations of the real files (benchmarks.fuzz_cases): every one is listed (a damaged
    value as "<cannot be read: …>") or refused with ImageReadError, never another exception."""
    import time
    import warnings

    from benchmarks.fuzz_cases import load_seeds, make_case

    seeds = load_seeds(shared_data)
    outcomes = {"listed": 0, "refused": 0}
    for index in range(300):
        case = make_case(index, seeds, seed=11)
        path = tmp_path / f"case{index}{case.suffix}"
        path.write_bytes(case.data)
        started = time.perf_counter()
        try:
            with warnings.catch_warnings():  # pydicom warns about most damaged values
                warnings.simplefilter("ignore")
                read_header(path)
            outcomes["listed"] += 1
        except ImageReadError as exc:
            assert exc.path == path and exc.reason
            outcomes["refused"] += 1
        assert time.perf_counter() - started < 5.0, case.mutation
    assert outcomes["listed"] >= 50 and outcomes["refused"] >= 50, outcomes


def test_one_damaged_value_is_shown_as_such_and_the_others_are_listed(tmp_path, dicom_dir):
    import pydicom

    ds = pydicom.dcmread(dicom_dir / SIIM)
    ds.save_as(tmp_path / "clean.dcm", enforce_file_format=True)
    data = (tmp_path / "clean.dcm").read_bytes()
    rows_element = b"\x28\x00\x10\x00US\x02\x00" + int(ds.Rows).to_bytes(2, "little")
    assert data.count(rows_element) == 1  # explicit VR little endian, as the file is written
    damaged = data.replace(rows_element, b"\x28\x00\x10\x00US\x03\x00" + int(ds.Rows).to_bytes(2, "little") + b"\x00")
    path = tmp_path / "damaged.dcm"
    path.write_bytes(damaged)
    rows = {r.tag: r for r in read_header(path)}
    assert rows["(0028,0010)"].value.startswith("<cannot be read: ")
    assert rows["(0028,0011)"].value == str(ds.Columns) and rows["(0010,0020)"].value == str(ds.PatientID)
