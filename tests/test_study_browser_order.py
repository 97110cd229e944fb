"""The study browser keeps the scan's reading order (``scanning.patient_order`` … ``instance_order``), the
order ``cxr-classify`` lists a folder in: series without a Series Instance UID are each their own (as the
scan groups them), and a second scan merged into the tree (files opened from another folder) goes in by
patient name, study date and number, not at the end. Real RSNA DICOMs, copied and given the patients,
studies and series of each case (a new SOP Instance UID each, so none is a copy of another)."""
from __future__ import annotations

import shutil

import pytest

pytest.importorskip("PySide6")
pytest.importorskip("pytestqt")
pydicom = pytest.importorskip("pydicom")

from cxr_engine.reading.scanning import scan  # noqa: E402

RSNA_FILM = "0004cfab-14fd-4e49-80ba-63a80b6bddd6.dcm"


@pytest.fixture()
def rsna_film(shared_data):
    source = shared_data / "dicom_rsna" / RSNA_FILM
    if not source.exists():
        pytest.skip(f"{source} not found")
    return source


def film(source, path, name, patient_id, study_uid, study_date, series_number, series_uid, instance=1):
    """A copy of ``source`` at ``path`` as one image of the patient, study and series named."""
    path.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy(source, path)
    ds = pydicom.dcmread(path)
    ds.PatientName, ds.PatientID = name, patient_id
    ds.StudyInstanceUID, ds.StudyDate = study_uid, study_date
    ds.SeriesNumber, ds.InstanceNumber = series_number, instance
    if series_uid:
        ds.SeriesInstanceUID = series_uid
    else:
        del ds.SeriesInstanceUID
    ds.SOPInstanceUID = pydicom.uid.generate_uid()
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    ds.save_as(path)
    return path


@pytest.fixture()
def browser(qtbot):
    from cxr_desktop.study_browser import StudyBrowser

    widget = StudyBrowser()
    qtbot.addWidget(widget)
    return widget


def test_series_without_a_uid_are_each_their_own_in_the_scans_order(browser, rsna_film, tmp_path):
    study = "1.2.826.0.1.3680043.8.498.1"
    paths = [film(rsna_film, tmp_path / f"s{n}.dcm", "Cole^C", "11", study, "20240101", n,
                  "1.2.826.0.1.3680043.8.498.2" if n == 2 else "") for n in (1, 2, 3)]
    result = scan(tmp_path)
    browser.add_result(result)
    assert browser.image_paths() == result.image_files() == paths
    study_item = browser.topLevelItem(0).child(0)
    assert [study_item.child(i).text(0) for i in range(study_item.childCount())] == \
        [f"Series {n} · CR · view: PA" for n in (1, 2, 3)]


def test_a_second_scan_goes_in_by_patient_name_and_study_date(browser, rsna_film, tmp_path):
    adams, uid = ("Adams^Amy", "5"), "1.2.826.0.1.3680043.8.498.{}".format
    later = [film(rsna_film, tmp_path / "B" / "adams_2023.dcm", *adams, uid(23), "20230101", 1, uid(231)),
             film(rsna_film, tmp_path / "B" / "zed.dcm", "Zed^Z", "9", uid(90), "20200101", 1, uid(901))]
    first = [film(rsna_film, tmp_path / "A" / "aaron.dcm", "Aaron^A", "7", uid(70), "20200101", 1, uid(701)),
             film(rsna_film, tmp_path / "A" / "adams_2022_i2.dcm", *adams, uid(22), "20220101", 1, uid(221), 2),
             film(rsna_film, tmp_path / "A" / "adams_2021.dcm", *adams, uid(21), "20210101", 1, uid(211)),
             film(rsna_film, tmp_path / "A" / "adams_2022_i10.dcm", *adams, uid(22), "20220101", 1, uid(221), 10)]
    browser.add_result(scan(tmp_path / "B"))
    browser.add_result(scan(tmp_path / "A"))
    names = [p.name for p in browser.image_paths()]
    assert names == ["aaron.dcm", "adams_2021.dcm", "adams_2022_i2.dcm", "adams_2022_i10.dcm", "adams_2023.dcm",
                     "zed.dcm"]
    # the same as one scan of both folders: the order cxr-classify lists them in
    assert browser.image_paths() == scan(tmp_path).image_files()
    assert browser.topLevelItemCount() == 3  # Adams^Amy of both folders is one patient
    assert len(first) + len(later) == browser.image_count()
