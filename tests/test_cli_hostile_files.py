"""A tester's hostile folders (2026-11-30): files a batch used to leave out without a word, a file name that
is not UTF-8, and a disk that fills during the run. Each film is named with its reason; what was computed
is kept; one bad file never loses the others' results."""
from __future__ import annotations

import errno
import os
import shutil

import pydicom
import pytest
from PIL import Image

import cxr_engine.outputs.atomic
from cxr_engine.cli import main
from cxr_engine.outputs.undecodable import escape_undecodable
from cxr_engine.reading.scanning import scan

from test_cli import card, read_rows  # noqa: F401  (card is a fixture)

LATIN1_NAME = os.fsdecode(b"caf\xe9_\xff.dcm")  # a Windows share's Latin-1 name: bytes that are not UTF-8


@pytest.fixture()
def film(dicom_dir):
    return dicom_dir / "1.3.6.1.4.1.11129.5.5.110503645592756492463169821050252582267888.dcm"  # uncompressed SC


def by_name(rows) -> dict[str, dict]:
    return {row["path"].rsplit("/", 1)[-1]: row for row in rows}


def test_a_file_name_that_is_not_utf8_keeps_every_row_of_the_csv(film, card, tmp_path):
    folder = tmp_path / "study"
    folder.mkdir()
    shutil.copy(film, folder / "a_good.dcm")
    ds = pydicom.dcmread(film)
    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = "1.2.826.0.1.3680043.8.498.7"  # not a copy
    ds.save_as(folder / LATIN1_NAME)
    out = tmp_path / "results.csv"
    assert main([str(folder), "--model", str(card.path), "--csv", str(out), "--device", "cpu"]) == 0
    rows = by_name(read_rows(out)[1])
    assert set(rows) == {"a_good.dcm", "caf\\xe9_\\xff.dcm"}
    assert all(row["status"] == "ok" for row in rows.values())


def test_escape_undecodable_shows_the_bytes_and_leaves_unicode_alone():
    assert escape_undecodable("Müller_ø.dcm") == "Müller_ø.dcm"
    assert escape_undecodable(LATIN1_NAME) == "caf\\xe9_\\xff.dcm"
    assert os.fsencode(LATIN1_NAME) == b"caf\xe9_\xff.dcm"  # the path itself is untouched
    assert escape_undecodable("a\ud800b").encode("utf-8") == b"a\\ud800b"


def test_damaged_films_and_unread_image_formats_in_a_folder_get_a_row(film, card, tmp_path):
    folder = tmp_path / "study"
    folder.mkdir()
    shutil.copy(film, folder / "good.dcm")
    ds = pydicom.dcmread(film)
    ds.Rows = 0
    ds.save_as(folder / "rows0.dcm")
    ds = pydicom.dcmread(film)
    del ds.Rows
    ds.save_as(folder / "norows.dcm")
    Image.new("L", (64, 64), 128).save(folder / "film.tiff")
    Image.new("L", (64, 64), 128).save(folder / "film.bmp")
    (folder / "scan.tiff").write_text("not an image at all")  # named .tiff, but text
    out = tmp_path / "results.csv"
    assert main([str(folder), "--model", str(card.path), "--csv", str(out), "--device", "cpu"]) == 1
    rows = by_name(read_rows(out)[1])
    assert set(rows) == {"good.dcm", "rows0.dcm", "norows.dcm", "film.tiff", "film.bmp", "scan.tiff"}
    assert rows["good.dcm"]["status"] == "ok"
    assert rows["rows0.dcm"]["message"] == "invalid image size 0×1024"
    assert rows["norows.dcm"]["message"] == ("damaged DICOM image: the header has no Rows, so the pixels cannot "
                                             "be laid out")
    assert rows["film.tiff"]["message"] == "a TIFF image: this program reads DICOM, PNG and JPEG files only"
    assert rows["film.bmp"]["message"] == "a BMP image: this program reads DICOM, PNG and JPEG files only"
    assert rows["scan.tiff"]["message"] == "a text file: this program reads DICOM, PNG and JPEG files only"


def test_a_damaged_file_a_dicomdir_names_is_an_error_not_a_silent_skip(film, tmp_path):
    from pydicom.fileset import FileSet

    fs = FileSet()
    for uid in ("1.2.826.0.1.3680043.8.498.1", "1.2.826.0.1.3680043.8.498.2"):
        ds = pydicom.dcmread(film)
        ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = uid
        ds.StudyDate, ds.StudyTime, ds.StudyID, ds.SeriesNumber = "20200101", "120000", "1", 1
        ds.InstanceNumber = int(uid[-1])
        fs.add(ds)
    media = tmp_path / "media"
    fs.write(media)
    referenced = sorted(p for p in media.rglob("*") if p.is_file() and p.name != "DICOMDIR")
    referenced[0].write_text("junk")  # the CD's copy of a film, damaged
    result = scan(media / "DICOMDIR")
    errors = {e.path: e.reason for e in result.errors}
    assert errors[referenced[0]] == ("referenced by DICOMDIR, but a text file: this program reads DICOM, PNG and "
                                     "JPEG files only")
    assert result.image_files() == [referenced[1]]


def test_a_full_disk_for_the_heatmaps_keeps_the_classification(film, card, tmp_path, monkeypatch):
    def disk_full(path, data):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))

    real_write = cxr_engine.outputs.atomic.write_bytes_atomic

    def heatmaps_disk_full(path, data):
        return (disk_full if "heatmaps" in str(path) else real_write)(path, data)

    monkeypatch.setattr("cxr_engine.outputs.atomic.write_bytes_atomic", heatmaps_disk_full)
    out, heatmaps, dicom_out = tmp_path / "results.csv", tmp_path / "heatmaps", tmp_path / "to_pacs"
    # classified, but an output asked for is missing: the run says so and ends with status 1
    assert main([str(film), "--model", str(card.path), "--csv", str(out), "--heatmap-dir", str(heatmaps),
                 "--dicom-out", str(dicom_out), "--deidentify", "--device", "cpu"]) == 1
    (row,) = read_rows(out)[1]
    assert row["status"] == "ok" and row["prediction"] and not row["cam_path"] and not row["heatmap_path"]
    assert f"heat-map not written to {heatmaps}: No space left on device" in row["warnings"]
    # the local folder is no finding of the film: it stays out of the DICOM outputs bound for a PACS
    written = list(dicom_out.iterdir())
    assert written and not any(b"not written" in path.read_bytes() for path in written)


def test_a_full_disk_for_the_csv_is_one_line_not_a_traceback(film, card, tmp_path, monkeypatch, capsys):
    from contextlib import contextmanager

    class FullDisk:
        def write(self, text):
            return len(text)

        def flush(self):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    @contextmanager
    def full_disk_output(path, mode):
        yield FullDisk()

    monkeypatch.setattr("cxr_engine.outputs.atomic.atomic_output", full_disk_output)
    out = tmp_path / "results.csv"
    assert main([str(film), "--model", str(card.path), "--csv", str(out), "--device", "cpu"]) == 1
    err = capsys.readouterr().err
    assert f"cannot write --csv {out}: No space left on device; the rows of the 0 files done are not saved" in err
    assert "Traceback" not in err



def test_the_app_writes_the_shown_result_of_a_film_whose_name_is_not_utf8(film, tmp_path):
    """It used to raise in a Qt slot and wait for the time limit (300 s) without writing the JSON."""
    pytest.importorskip("PySide6")
    pytest.importorskip("onnxruntime")
    import json

    from test_automation_unreadable import run_app

    folder = tmp_path / "study"
    folder.mkdir()
    shutil.copy(film, folder / LATIN1_NAME)
    proc, _, result = run_app(folder, tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert json.loads(result.read_text(encoding="utf-8"))["path"] == str(folder / "caf\\xe9_\\xff.dcm")
