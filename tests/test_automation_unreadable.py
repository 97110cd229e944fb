"""``cxr-desktop FOLDER --screenshot``: an unreadable first image (a truncated DICOM) is skipped, named in
the log, and the outputs are made of the first image that can be read; with none readable, the message
names the file."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from model_factory import BUNDLED_CARD

pytest.importorskip("PySide6")
pytest.importorskip("onnxruntime")

REPO = Path(__file__).resolve().parents[1]


def run_app(folder: Path, tmp_path: Path, card: Path = BUNDLED_CARD) -> tuple[subprocess.CompletedProcess, Path, Path]:
    from cxr_desktop.settings import SETTINGS_ENV

    shot, result = tmp_path / "shot.png", tmp_path / "result.json"
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen", **{SETTINGS_ENV: str(tmp_path / "settings.ini")})
    proc = subprocess.run(
        [sys.executable, "-m", "cxr_desktop", str(folder), "--screenshot", str(shot), "--result-json", str(result),
         "--model", str(card), "--backend", "onnx", "--device", "cpu", "--timeout", "240"],
        capture_output=True, text=True, cwd=REPO, env=env, timeout=300,
    )
    return proc, shot, result


@pytest.fixture()
def truncated(tmp_path, dicom_dir) -> Path:
    folder = tmp_path / "study"
    folder.mkdir()
    data = (dicom_dir / "RG1_J2KI.dcm").read_bytes()
    path = folder / "a_truncated.dcm"  # sorted first
    path.write_bytes(data[: len(data) // 2])
    return path


def test_the_first_readable_image_is_used_and_the_skipped_one_named(truncated, cxr3_dir, tmp_path):
    film = truncated.parent / "b_film.jpg"
    shutil.copy(next((cxr3_dir / "images" / "covid").glob("*.jpg")), film)
    proc, shot, result = run_app(truncated.parent, tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert f"skipped {truncated}: it cannot be read: pixel data truncated" in proc.stderr
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    shown = json.loads(result.read_text(encoding="utf-8"))
    assert Path(shown["path"]) == film and shown["prediction"] is not None


def test_with_no_readable_image_the_message_names_the_file(truncated, tmp_path):
    proc, shot, _ = run_app(truncated.parent, tmp_path)
    assert proc.returncode == 1
    assert f"automation failed: no image can be read (1 tried); the last, {truncated}: pixel data truncated" \
        in proc.stderr
    assert not shot.exists()


def test_pydicom_warnings_about_damaged_headers_stay_off_standard_error(dicom_dir, tmp_path):
    """Tester: "UserWarning: The value length (56) exceeds the maximum length of 16 allowed for VR SH" on every
    run on the project's DICOM folder; the app names each file's problem itself (``--verbose`` shows them)."""
    proc, _, result = run_app(dicom_dir, tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "UserWarning" not in proc.stderr and "pydicom:" not in proc.stderr, proc.stderr[-3000:]
    assert json.loads(result.read_text(encoding="utf-8"))["prediction"] is not None
