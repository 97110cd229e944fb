"""The app lists a SOP Instance stored as several files once (tester: copies appeared once per file in the
study tree and in exports): the file whose path sorts first, its tooltip naming the other files, each
copy in the Problems list; a study export has one page per instance. Real DICOM files in tmp folders."""
from __future__ import annotations

import shutil

import pytest

pytest.importorskip("PySide6")
pytest.importorskip("pytestqt")

from cxr_engine.reading.copies import copies_note, copy_reason  # noqa: E402
from cxr_desktop.report_export import ExportRequest  # noqa: E402

from test_desktop import (WAIT_MS, card, export, make_window, open_and_wait, pdf_text,  # noqa: E402,F401
                          private_settings, wait_classified)

CR = "CR-MONO1-10-chest.dcm"
J2K = "JPEG2KLossless_1s_1f_u_16_16.dcm"


@pytest.fixture()
def copied_study(tmp_path, dicom_dir):
    root = tmp_path / "study"
    for folder in ("a", "b"):
        (root / folder).mkdir(parents=True)
        shutil.copy(dicom_dir / CR, root / folder / CR)
    shutil.copy(dicom_dir / J2K, root / "b" / J2K)
    return root


def test_a_copied_instance_is_listed_once_with_its_copies_named(qtbot, make_window, copied_study, tmp_path):
    window = make_window(show=True)
    open_and_wait(qtbot, window, copied_study)
    qtbot.waitUntil(lambda: window.browser.image_count() == 2, timeout=WAIT_MS)
    kept, copy = copied_study / "a" / CR, copied_study / "b" / CR
    assert window.browser.has_image(kept) and not window.browser.has_image(copy)
    assert copies_note((copy,)) in window.browser._images[kept].toolTip(0)
    assert (str(copy), copy_reason(kept)) in window.problems.problems()

    pytest.importorskip("pypdf")
    wait_classified(qtbot, window)
    paths = window.browser.study_paths(kept)
    assert paths.count(kept) == 1 and copy not in paths
    pages, _ = pdf_text(export(qtbot, window, ExportRequest(tuple(paths), tmp_path / "r.pdf", False, "")))
    assert pages == len(paths)
