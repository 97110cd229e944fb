"""``cxr-desktop PATH --result-json``: when the paths hold no image that can be read, the final message names
the files and their reasons in words that fit their kind (not "DICOM" for a JPEG)."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from model_factory import BUNDLED_CARD

pytest.importorskip("PySide6")

REPO = Path(__file__).resolve().parents[1]


def final_line(path: Path, tmp_path: Path) -> tuple[int, str]:
    """(exit status, the automation's last log line) of ``cxr-desktop PATH --result-json``."""
    from cxr_desktop.settings import SETTINGS_ENV

    env = dict(os.environ, QT_QPA_PLATFORM="offscreen", **{SETTINGS_ENV: str(tmp_path / "settings.ini")})
    proc = subprocess.run(
        [sys.executable, "-m", "cxr_desktop", str(path), "--result-json", str(tmp_path / "out" / "result.json"),
         "--model", str(BUNDLED_CARD), "--backend", "onnx", "--device", "cpu", "--timeout", "120"],
        capture_output=True, text=True, cwd=REPO, env=env, timeout=200)
    failed = [line for line in proc.stderr.splitlines() if "automation failed:" in line]
    return proc.returncode, failed[-1].split("automation failed: ", 1)[1] if failed else proc.stderr[-2000:]


@pytest.fixture()
def unreadable(tmp_path, cxr3_dir) -> Path:
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "zero.dcm").write_bytes(b"")
    jpeg = next((cxr3_dir / "images" / "normal").glob("*.jpg")).read_bytes()
    (folder / "readme.jpg").write_bytes(b"notes, not a picture\n" + jpeg[200:400])
    return folder


def test_an_empty_dicom_file_is_named_with_its_reason(unreadable, tmp_path):
    code, message = final_line(unreadable / "zero.dcm", tmp_path)
    assert code == 1 and message == f"no image can be read: {unreadable / 'zero.dcm'}: empty file"


def test_a_damaged_jpeg_is_not_called_dicom(unreadable, tmp_path):
    code, message = final_line(unreadable / "readme.jpg", tmp_path)
    assert code == 1 and message.startswith(f"no image can be read: {unreadable / 'readme.jpg'}: not a PNG or JPEG image")
    assert "DICOM" not in message


def test_a_folder_names_each_unreadable_file(unreadable, tmp_path):
    code, message = final_line(unreadable, tmp_path)
    assert code == 1 and f"{unreadable / 'zero.dcm'}: empty file" in message
    assert f"{unreadable / 'readme.jpg'}: not a PNG or JPEG image" in message


def test_the_text_names_dicom_objects_without_pixels_and_an_empty_scan(tmp_path, dicom_dir):
    import pydicom

    from cxr_desktop.formatting import NAMED_PROBLEMS, no_image_text
    from cxr_engine.reading.scanning import ScanError, scan

    ds = pydicom.dcmread(dicom_dir / "RG1_JLSN.dcm")
    for keyword in ("PixelData", "Rows", "Columns", "BitsAllocated", "BitsStored", "HighBit", "PixelRepresentation",
                    "SamplesPerPixel", "PhotometricInterpretation"):
        if keyword in ds:
            delattr(ds, keyword)
    ds.SOPClassUID = ds.file_meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.88.11"  # Basic Text SR
    sr = tmp_path / "report.dcm"
    ds.save_as(sr)
    assert no_image_text([scan(sr)]).startswith(f"no image to show: {sr} hold(s) no pixel data")
    empty = tmp_path / "empty"
    empty.mkdir()
    assert no_image_text([scan(empty)]) == "no DICOM, PNG or JPEG image was found in the paths given"
    result = scan(empty)
    many = [type(result)(**{**result.__dict__, "errors": tuple(ScanError(Path(f"/x/{i}.dcm"), "empty file")
                                                              for i in range(NAMED_PROBLEMS + 2))})]
    assert no_image_text(many).endswith("/x/2.dcm: empty file; 2 more")
