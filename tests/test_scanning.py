"""Tests of cxr_engine.reading.scanning on the real DICOMs and on generated synthetic folders."""
from __future__ import annotations

import logging
import os
import shutil
import threading
from pathlib import Path

import pydicom
import pytest
from pydicom.fileset import FileSet
from pydicom.uid import ExplicitVRLittleEndian, ImplicitVRLittleEndian

from benchmarks.make_dicom_folder import make_dicom_folder
from cxr_engine.reading.scanning import NO_PATIENT_ID, ScanResult, scan

N_FILES, N_PATIENTS, N_STUDIES, N_SERIES = 40, 3, 2, 2
N_JUNK = 5

# 966_fixed.dcm has a 56-character AccessionNumber; pydicom warns when the scan reads it.
pytestmark = pytest.mark.filterwarnings("ignore:The value length:UserWarning")


@pytest.fixture(scope="module")
def generated(tmp_path_factory, cxr3_dir) -> Path:
    """A read-only synthetic folder: 40 files, 3 patients × 2 studies × 2 series, plus junk."""
    out = tmp_path_factory.mktemp("generated")
    make_dicom_folder(
        out, N_FILES, cxr3_dir=cxr3_dir, n_patients=N_PATIENTS,
        studies_per_patient=N_STUDIES, series_per_study=N_SERIES,
    )
    return out


@pytest.fixture
def folder(generated, tmp_path) -> Path:
    """A private copy of the generated folder, for tests that change it."""
    return Path(shutil.copytree(generated, tmp_path / "copy"))


def _dicoms(root: Path) -> list[Path]:
    return sorted(root.rglob("*.dcm"))


class TestRealDicoms:
    @pytest.fixture
    def result(self, dicom_dir, tmp_path) -> ScanResult:
        shutil.copytree(dicom_dir, tmp_path / "dicom")
        return scan(tmp_path / "dicom")

    def test_all_eight_found(self, result):
        assert len(result.all_instances()) == 8
        assert result.errors == ()
        assert result.skipped_non_dicom == 1  # manifest.csv
        assert result.files_seen == 9

    def test_meta_less_file_is_read(self, result, tmp_path):
        inst = result.find_instance(tmp_path / "dicom" / "CR-MONO1-10-chest.dcm")
        assert inst is not None
        assert (inst.rows, inst.columns, inst.modality) == (440, 440, "CR")
        assert inst.transfer_syntax == ImplicitVRLittleEndian

    def test_people_without_patient_id_are_not_merged(self, result):
        # CR-MONO1-10-chest.dcm and JPEG2KLossless_1s_1f_u_16_16.dcm: different names, studies,
        # no Patient ID. They were once shown as one patient (issue 15).
        no_id = [p for p in result.patients if p.patient_id == NO_PATIENT_ID]
        assert len(no_id) == 2
        assert [len(p.studies) for p in no_id] == [1, 1]
        assert len({p.key for p in no_id}) == 2


class TestGrouping:
    def test_counts(self, generated):
        result = scan(generated)
        assert len(result.patients) == N_PATIENTS
        assert len(result.all_studies()) == N_PATIENTS * N_STUDIES
        assert len(result.all_series()) == N_PATIENTS * N_STUDIES * N_SERIES
        assert len(result.all_instances()) == N_FILES
        assert (result.files_seen, result.dicom_files) == (N_FILES + N_JUNK, N_FILES)
        assert not result.cancelled

    def test_sort_order(self, generated):
        result = scan(generated)
        assert [p.patient_id for p in result.patients] == ["SYNTH0000", "SYNTH0001", "SYNTH0002"]
        for patient in result.patients:
            dates = [s.date for s in patient.studies]
            assert dates == sorted(dates)
            # ST02 holds the earlier study, so date order is not folder order.
            assert patient.studies[0].series[0].instances[0].path.parts[-3] == "ST02"
            for study in patient.studies:
                assert [s.number for s in study.series] == [1, 2]
                for series in study.series:
                    numbers = [i.instance_number for i in series.instances]
                    assert numbers == list(range(1, len(numbers) + 1))

    def test_instance_number_beats_file_name(self, folder):
        series_dir = folder / "P0000" / "ST01" / "SE01"
        files = sorted(series_dir.glob("*.dcm"))
        for i, path in enumerate(files):
            path.rename(series_dir / f"z{len(files) - i}.dcm")
        series = scan(series_dir).all_series()[0]
        assert [i.instance_number for i in series.instances] == [1, 2, 3, 4]
        assert [i.path.name for i in series.instances] == ["z4.dcm", "z3.dcm", "z2.dcm", "z1.dcm"]

    def test_instance_fields(self, generated):
        inst = scan(generated).all_instances()[0]
        assert (inst.photometric, inst.modality, inst.body_part) == ("MONOCHROME2", "DX", "CHEST")
        assert inst.transfer_syntax == ExplicitVRLittleEndian
        assert inst.bits_stored == 8 and inst.is_image and inst.number_of_frames == 1

    def test_junk_skipped_quietly(self, generated):
        result = scan(generated)
        assert result.skipped_non_dicom == N_JUNK
        assert result.errors == ()
        assert all(i.path.suffix == ".dcm" for i in result.all_instances())

    def test_missing_uids_do_not_crash(self, folder):
        for path in _dicoms(folder)[:2]:
            ds = pydicom.dcmread(path)
            del ds.PatientID, ds.StudyInstanceUID, ds.SeriesInstanceUID
            ds.save_as(path)
        result = scan(folder)
        assert len(result.all_instances()) == N_FILES
        no_id = [p for p in result.patients if p.patient_id == NO_PATIENT_ID]
        assert len(no_id) == 1
        assert [s.uid for s in no_id[0].studies] == ["", ""]  # one study per file

    def test_single_file(self, generated):
        path = _dicoms(generated)[0]
        result = scan(path)
        assert [i.path for i in result.all_instances()] == [path]


class TestErrors:
    def test_bad_files_are_errors_and_the_rest_succeed(self, folder, dicom_dir):
        (folder / "cut.dcm").write_bytes((dicom_dir / "966_fixed.dcm").read_bytes()[:1200])
        (folder / "x.dcm").write_bytes(b"this is not a DICOM file\n" * 20)
        (folder / "IM_NOEXT").write_bytes(b"garbage without an extension\n" * 20)
        (folder / "IM_MAGIC").write_bytes(bytes(128) + b"DICM" + bytes(range(256)) * 2)
        result = scan(folder)
        reasons = {e.path.name: e.reason for e in result.errors}
        assert set(reasons) == {"cut.dcm", "x.dcm", "IM_MAGIC"}
        assert reasons["cut.dcm"].startswith("truncated DICOM header")
        assert reasons["x.dcm"] == "a text file, not a DICOM file"
        assert reasons["IM_MAGIC"].startswith("not a valid DICOM file")
        assert len(result.all_instances()) == N_FILES
        assert result.skipped_non_dicom == N_JUNK + 1

    def test_file_ending_before_pixel_data_is_an_error(self, folder):
        path = _dicoms(folder)[0]
        data = path.read_bytes()
        path.write_bytes(data[: data.rindex(b"\xe0\x7f\x10\x00") + 4])  # cut after the (7FE0,0010) tag
        (error,) = scan(folder).errors
        assert error.path == path and error.reason.startswith("truncated DICOM file") \
            and "before its pixel data" in error.reason

    def test_a_whole_file_without_pixel_data_says_so(self, shared_data, tmp_path):
        """Tester: a real RSNA film saved without its Pixel Data (a whole file, nothing cut) was reported as
        "truncated DICOM file: it ends at byte 994, before its pixel data". The scan (the app's list), the
        decoder (the app's viewer) and cxr-classify's row now say it holds no pixel data, in one wording."""
        import csv

        from cxr_engine.cli import main
        from cxr_engine.errors import ImageReadError
        from cxr_engine.messages import no_pixel_data
        from cxr_engine.reading.read import read_image

        from model_factory import BUNDLED_CARD

        source = shared_data / "dicom_rsna" / "0004cfab-14fd-4e49-80ba-63a80b6bddd6.dcm"
        if not source.exists():
            pytest.skip(f"{source} not found")
        ds = pydicom.dcmread(source)
        del ds.PixelData
        folder = tmp_path / "study"
        folder.mkdir()
        path = folder / "header_only.dcm"
        ds.save_as(path)
        expected = no_pixel_data(1024, 1024)
        assert expected.startswith("no pixel data: the header describes a 1024 × 1024 image")
        (error,) = scan(folder).errors
        assert error.reason == expected
        with pytest.raises(ImageReadError) as raised:
            read_image(path)
        assert raised.value.reason == expected
        out = tmp_path / "out" / "rows.csv"
        assert main([str(folder), "--csv", str(out), "--model", str(BUNDLED_CARD), "--backend", "onnx",
                     "--no-isolation", "-q"]) == 1
        with open(out, newline="") as handle:
            (row,) = list(csv.DictReader(handle))
        assert (row["status"], row["message"]) == ("error", expected)

    def test_explicit_non_dicom_file_is_reported(self, generated):
        result = scan(generated / "preview.png")
        assert len(result.errors) == 1 and result.skipped_non_dicom == 0

    def test_missing_path_raises(self, tmp_path):
        with pytest.raises(FileNotFoundError, match="nope"):
            scan(tmp_path / "nope")


class TestPixelsNeverRead:
    def test_truncated_pixel_data_still_scans(self, dicom_dir, tmp_path):
        data = (dicom_dir / "966_fixed.dcm").read_bytes()
        (tmp_path / "half.dcm").write_bytes(data[: len(data) // 2])
        result = scan(tmp_path)
        assert result.errors == ()
        assert result.all_instances()[0].rows == 2128

    def test_headers_only(self, generated, monkeypatch):
        real_dcmread = pydicom.dcmread

        def checked_dcmread(*args, **kwargs):
            assert kwargs.get("stop_before_pixels") is True
            return real_dcmread(*args, **kwargs)

        monkeypatch.setattr(pydicom, "dcmread", checked_dcmread)
        assert len(scan(generated).all_instances()) == N_FILES


class TestDicomdir:
    @pytest.fixture
    def fileset_dir(self, generated, tmp_path) -> Path:
        fs = FileSet()
        for path in _dicoms(generated)[:6]:
            fs.add(path)
        fs.write(tmp_path / "fs")
        return tmp_path / "fs"

    def test_dicomdir_file(self, fileset_dir):
        result = scan(fileset_dir / "DICOMDIR")
        assert len(result.all_instances()) == 6
        assert result.errors == ()

    def test_folder_with_dicomdir_not_double_counted(self, fileset_dir):
        result = scan(fileset_dir)
        assert len(result.all_instances()) == 6
        assert (result.files_seen, result.dicom_files) == (7, 7)

    def test_missing_reference_is_an_error(self, fileset_dir):
        victim = next(p for p in fileset_dir.rglob("IM*") if p.is_file())
        victim.unlink()
        result = scan(fileset_dir / "DICOMDIR")
        assert len(result.all_instances()) == 5
        assert [e.path for e in result.errors] == [victim]


def test_symlink_loop_terminates(folder):
    os.symlink(folder, folder / "P0000" / "loop")
    os.symlink(folder / "P0001", folder / "again")
    box: list[ScanResult] = []
    worker = threading.Thread(target=lambda: box.append(scan(folder)), daemon=True)
    worker.start()
    worker.join(timeout=10)
    assert not worker.is_alive(), "scan did not finish: symlink loop followed"
    assert len(box[0].all_instances()) == N_FILES


def test_cancel_returns_partial_result(generated):
    done_files = []

    def progress(done, total, path):
        if total is not None:
            done_files.append(done)

    result = scan(generated, progress=progress, should_cancel=lambda: len(done_files) >= 10)
    assert result.cancelled
    assert 0 < len(result.all_instances()) < N_FILES


def test_progress_reports_every_file(generated):
    calls = []
    result = scan(generated, progress=lambda done, total, path: calls.append((done, total)))
    per_file = [c for c in calls if c[1] is not None]
    assert [done for done, _ in per_file] == list(range(1, result.files_seen + 1))
    assert {total for _, total in per_file} == {result.files_seen}


def test_patient_names_stay_out_of_logs_and_repr(generated, caplog):
    with caplog.at_level(logging.DEBUG, logger="cxr_engine"):
        result = scan(generated)
    assert "SYNTH^PATIENT" not in caplog.text
    assert "SYNTH^PATIENT" not in repr(result)
    assert result.patients[0].name == "SYNTH^PATIENT^0000"


def test_links_out_of_the_chosen_folder_are_not_followed_but_named(tmp_path, dicom_dir):
    """A link to the parent folder, to another patient's folder or file is not followed (one problem
    each); links inside the chosen folder, and the chosen folder given as a link, still are."""
    from cxr_engine import find_images

    chosen, other = tmp_path / "chosen", tmp_path / "other"
    (chosen / "sub").mkdir(parents=True)
    other.mkdir()
    shutil.copy(dicom_dir / "CR-MONO1-10-chest.dcm", chosen / "sub" / "film.dcm")
    shutil.copy(dicom_dir / "RG1_J2KI.dcm", other / "someone_else.dcm")
    outside = {chosen / "up": "..", chosen / "theirs": "../other", chosen / "their_film.dcm": "../other/someone_else.dcm"}
    for link, target in outside.items():
        link.symlink_to(target)
    (chosen / "again").symlink_to("sub")  # inside: followed, the film still found once
    (chosen / "sub" / "loop").symlink_to("..")  # inside, a loop: ends
    (tmp_path / "chosen_link").symlink_to("chosen")

    for root in (chosen, tmp_path / "chosen_link"):
        result = scan(root, include_raster=True)
        assert [inst.path.name for inst in result.all_instances()] == ["film.dcm"]
        assert sorted(e.path.name for e in result.errors) == sorted(p.name for p in outside)
        assert all("outside the chosen folder" in e.reason and "not followed" in e.reason for e in result.errors)
    inputs = find_images([chosen])
    assert [p.name for p in inputs.files if p not in inputs.problems] == ["film.dcm"]
    assert not any("someone_else" in str(p) for p in inputs.files)


def _png_header_only(width: int, height: int) -> bytes:
    """A PNG whose IHDR claims ``width`` × ``height`` 8-bit grey pixels, with one tiny IDAT."""
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(b"\0" * 16)) + chunk(b"IEND", b""))


class TestMessages:
    """What a scan says, worded alike in the scan, the reader and the CLI (tester finding 13)."""

    def test_a_huge_png_header_reads_image_too_large(self, tmp_path):
        from cxr_engine.reading.dicom_io import MAX_PIXELS
        from cxr_engine.errors import UnsupportedImageError
        from cxr_engine.reading.read import read_image

        (tmp_path / "bomb.png").write_bytes(_png_header_only(50_000, 50_000))
        expected = f"image too large: 2,500,000,000 pixels exceeds {MAX_PIXELS:,} pixels"
        assert [e.reason for e in scan(tmp_path, include_raster=True).errors] == [expected]
        with pytest.raises(UnsupportedImageError, match=f"^{tmp_path / 'bomb.png'}: {expected}$"):
            read_image(tmp_path / "bomb.png")

    def test_a_jpeg_named_dcm_is_read_by_content(self, tmp_path, cxr3_dir):
        import numpy as np

        from cxr_engine.reading.read import read_image

        jpeg = next((cxr3_dir / "images" / "normal").glob("*.jpg"))
        shutil.copy(jpeg, tmp_path / "exported.dcm")
        result = scan(tmp_path, include_raster=True)
        assert result.errors == ()
        [instance] = result.all_instances()
        assert instance.file_format == "jpeg" and instance.path.name == "exported.dcm"
        assert np.array_equal(read_image(tmp_path / "exported.dcm").stored, read_image(jpeg).stored)
        # a scan for DICOM only names what the file is instead of a DICOM parser's complaint
        assert [e.reason for e in scan(tmp_path).errors] == ["a JPEG image, not a DICOM file"]

    def test_a_broken_link_is_named(self, tmp_path, dicom_dir):
        shutil.copy(dicom_dir / "CR-MONO1-10-chest.dcm", tmp_path / "film.dcm")
        (tmp_path / "gone.dcm").symlink_to(tmp_path / "deleted.dcm")
        (tmp_path / ".hidden.dcm").symlink_to(tmp_path / "deleted.dcm")  # hidden: quiet, as hidden files are
        result = scan(tmp_path, include_raster=True)
        assert [inst.path.name for inst in result.all_instances()] == ["film.dcm"]
        assert [(e.path.name, e.reason) for e in result.errors] == [
            ("gone.dcm", f"broken symbolic link: its target {tmp_path / 'deleted.dcm'} does not exist")]
