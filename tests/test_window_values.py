"""Multi-valued VOI attributes as modalities write them (PS3.3 C.11.2.1.2): an empty value (``550\\`` and
``1024\\``, a trailing backslash) is no window and is skipped without a warning; a real invalid window still
warns; one Window Center & Width Explanation is the whole text, not its first letter. Real CR film
``CR-MONO1-10-chest.dcm`` (Window Center 550, Width 1024) with its window values rewritten as raw DS text."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pydicom
import pytest

from cxr_engine.pixels.rendering import render
from cxr_engine.pixels.windowing import LINEAR, Window
from cxr_engine.reading.read import read_image

FILM = "CR-MONO1-10-chest.dcm"


def _with_values(dicom_dir: Path, folder: Path, name: str, center: bytes | None, width: bytes | None,
                 explanation: bytes | None = None) -> Path:
    """The real film with Window Center / Width (and Explanation) as the raw values given (None: removed)."""
    ds = pydicom.dcmread(dicom_dir / FILM, force=True)
    for tag, vr, value in ((0x00281050, "DS", center), (0x00281051, "DS", width), (0x00281055, "LO", explanation)):
        if tag in ds:
            del ds[tag]
        if value is not None:
            ds[tag] = pydicom.DataElement(tag, vr, value)
    path = folder / name
    ds.save_as(path)
    return path


def test_a_trailing_empty_value_is_no_window_and_no_warning(dicom_dir, tmp_path):
    plain = read_image(_with_values(dicom_dir, tmp_path, "plain.dcm", b"550", b"1024"))
    trailing = read_image(_with_values(dicom_dir, tmp_path, "trailing.dcm", b"550\\", b"1024\\"))
    assert trailing.windows == (Window(550.0, 1024.0, LINEAR, ""),)
    assert trailing.warnings == plain.warnings
    assert not any("window" in w.lower() for w in trailing.warnings), trailing.warnings
    np.testing.assert_array_equal(render(trailing), render(plain))


def test_an_empty_value_between_windows_is_skipped(dicom_dir, tmp_path):
    image = read_image(_with_values(dicom_dir, tmp_path, "film.dcm", b"550\\\\600", b"1024\\\\400"))
    assert [(w.center, w.width) for w in image.windows] == [(550, 1024), (600, 400)]
    assert not any("window" in w.lower() for w in image.warnings), image.warnings


def test_only_empty_values_are_no_window_at_all(dicom_dir, tmp_path):
    """As a film without Window Center / Width: its automatic window, no warning."""
    none = read_image(_with_values(dicom_dir, tmp_path, "none.dcm", None, None))
    empty = read_image(_with_values(dicom_dir, tmp_path, "empty.dcm", b"\\", b"\\"))
    assert empty.windows == () and empty.preferred_voi is None
    assert empty.default_voi() == none.default_voi()
    assert empty.warnings == none.warnings
    np.testing.assert_array_equal(render(empty), render(none))


@pytest.mark.parametrize("center, width, shown", [(b"550\\600", b"1024\\0", "600/0"),
                                                   (b"550\\600\\", b"1024\\0.5\\", "600/0.5")])
def test_a_real_invalid_window_still_warns(dicom_dir, tmp_path, center, width, shown):
    image = read_image(_with_values(dicom_dir, tmp_path, "film.dcm", center, width))
    assert [(w.center, w.width) for w in image.windows] == [(550, 1024)]
    [warning] = [w for w in image.warnings if "Window Width (0028,1051)" in w]
    assert f"invalid window {shown} " in warning and "left out" in warning


def test_one_explanation_is_its_whole_text(dicom_dir, tmp_path):
    image = read_image(_with_values(dicom_dir, tmp_path, "film.dcm", b"550", b"1024", b"LUNG"))
    assert image.windows[0].explanation == "LUNG"
    two = read_image(_with_values(dicom_dir, tmp_path, "two.dcm", b"550\\600", b"1024\\400", b"LUNG\\BONE"))
    assert [w.explanation for w in two.windows] == ["LUNG", "BONE"]
