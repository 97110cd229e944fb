"""The study tree lists names with numbers in a reader's order (new-user test, finding 4b): j1, j2, j10,
j100, not j1, j10, j100, j2. Real films: a cxr3 JPEG copied under numbered names, and copies of a real
DICOM as patients "Case 2" and "Case 10"."""
from __future__ import annotations

import shutil

import pydicom
import pytest

from cxr_engine.reading.scanning import natural_key, scan

NAMES = ["j1", "j2", "j10", "j11", "j20", "j100"]


def test_natural_key_orders_numbers_by_value():
    shuffled = ["j100", "J2", "j10", "j1", "j20", "k", "j", "j01"]
    assert sorted(shuffled, key=natural_key) == ["j", "j01", "j1", "J2", "j10", "j20", "j100", "k"]


def test_hexadecimal_identifiers_keep_their_text_order():
    # anonymised names that are UUIDs (the RSNA films'): by value their digit runs would read 3 < 4 < 313
    uuids = ["00313ee0-9eaa-42f4-b0ab-c148ed3241cd", "003D8FA0-6bf1-40ed-b54c-ac657f8495c5",
             "0004cfab-14fd-4e49-80ba-63a80b6bddd6", "00322d4d-1c29-4943-afc9-b6754be640eb"]
    assert sorted(uuids, key=natural_key) == sorted(uuids, key=str.casefold)
    hashes = ["0a1f3000aaaa0000", "0a1f200000000000b", "0a1f1000aaaa0000"]  # 16+ hex digits: a hash, text order
    assert sorted(hashes, key=natural_key) == sorted(hashes)
    # a shorter name of hex letters and digits is a name, not an identifier (a reviewer's finding: ACE100000)
    assert sorted(["abc123", "abc45"], key=natural_key) == ["abc45", "abc123"]
    assert sorted(["ACE100000", "ACE20000"], key=natural_key) == ["ACE20000", "ACE100000"]
    # names and numbers with no hex letters keep the number order; so do mixed names that are not hex
    assert sorted(["1.2.10", "1.2.9"], key=natural_key) == ["1.2.9", "1.2.10"]
    assert sorted(["Case 10", "Case 9", "case2"], key=natural_key) == ["case2", "Case 9", "Case 10"]
    # any two keys still compare
    assert sorted(["j10", "0004cfab", "j2", "10"], key=natural_key)


def test_numbered_jpeg_files_are_listed_in_natural_order(tmp_path, cxr3_dir):
    film = next((cxr3_dir / "images" / "normal").glob("*.jpg"), None)
    if film is None:
        pytest.skip(f"no JPEG in {cxr3_dir / 'images' / 'normal'}")
    for name in reversed(NAMES):
        shutil.copy(film, tmp_path / f"{name}.jpg")
    result = scan(tmp_path, include_raster=True)
    listed = [i.path.stem for p in result.patients for s in p.studies for se in s.series for i in se.instances]
    assert listed == NAMES


def test_patients_and_files_sort_naturally_in_the_study_tree(qtbot, tmp_path, dicom_dir):
    pytest.importorskip("pytestqt")
    from cxr_desktop.study_browser import StudyBrowser

    source = pydicom.dcmread(dicom_dir / "CR-MONO1-10-chest.dcm", force=True)
    for number in (10, 2, 1):
        source.PatientName, source.PatientID = f"Case {number}", f"ID{number}"
        source.StudyInstanceUID = source.SeriesInstanceUID = source.SOPInstanceUID = pydicom.uid.generate_uid()
        source.save_as(tmp_path / f"case{number}.dcm")
    browser = StudyBrowser()
    qtbot.addWidget(browser)
    browser.add_result(scan(tmp_path))
    assert [browser.topLevelItem(i).text(0).split()[:2] for i in range(3)] == [["Case", "1"], ["Case", "2"],
                                                                              ["Case", "10"]]
    assert [p.name for p in browser.image_paths()] == ["case1.dcm", "case2.dcm", "case10.dcm"]
