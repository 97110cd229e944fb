"""The app lists a SOP Instance stored as several files once (tester: copies appeared once per file in the
study tree and in exports): the file whose path sorts first, its tooltip naming the other files, each
copies in one Problems row per image; a study export has one page per instance; different images that share a
SOP Instance UID are both shown, with a Problems row and a note on their PDF pages. Real DICOM files in tmp folders."""
from __future__ import annotations

import shutil

import pytest

pytest.importorskip("PySide6")
pytest.importorskip("pytestqt")

from PySide6.QtWidgets import QApplication  # noqa: E402

from cxr_engine.reading.copies import copies_note, copy_reason  # noqa: E402
from cxr_desktop.problems_panel import TOOLTIP_PATHS  # noqa: E402
from cxr_desktop.report_export import ExportRequest  # noqa: E402

from test_desktop import (WAIT_MS, card, export, make_window, open_and_wait, pdf_text,  # noqa: E402,F401
                          private_settings, wait_classified)

CR = "CR-MONO1-10-chest.dcm"
SIIM = "1.2.276.0.7230010.3.1.4.8323329.6904.1517875201.850819.dcm"
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
    assert (str(kept), copy_reason(kept, 1)) in window.problems.problems()
    window.browser.select_path(kept)  # the result panel says so too, as cxr-classify's row does
    qtbot.waitUntil(lambda: copies_note((copy,)) in window.result.image_warnings, timeout=WAIT_MS)

    pytest.importorskip("pypdf")
    wait_classified(qtbot, window)
    paths = window.browser.study_paths(kept)
    assert paths.count(kept) == 1 and copy not in paths
    pages, _ = pdf_text(export(qtbot, window, ExportRequest(tuple(paths), tmp_path / "r.pdf", False, "")))
    assert pages == len(paths) + 1  # and the model's known limits


def test_200_identical_copies_are_one_problems_row_and_not_called_errors(qtbot, make_window, tmp_path, dicom_dir):
    """Tester: 200 copies of one film gave "⚠ 199 file(s) left out" and 199 Problems rows. Now one row for
    the group (its tooltip names the copies) and a status text that says they are identical copies."""
    folder = tmp_path / "copies200"
    folder.mkdir()
    for number in range(1, 201):
        shutil.copy(dicom_dir / SIIM, folder / f"c{number}.dcm")
    window = make_window(show=True)
    open_and_wait(qtbot, window, folder)
    kept = folder / "c1.dcm"
    assert window.browser.image_paths() == [kept]
    assert window.problems.problems() == [(str(kept), copy_reason(kept, 199))]
    assert window.problems.problem_count() == 0 and window.problems.copy_count() == 199
    assert window.problems_button.isVisibleTo(window)
    assert window.problems_button.text() == "199 identical copies listed once"
    tip = window.problems.item(0, 0).toolTip().splitlines()
    assert window.problems.item(0, 0).text() == "199 identical copies of c1.dcm"
    assert tip[:2] == [str(folder / "c10.dcm"), str(folder / "c100.dcm")]
    assert len(tip) == TOOLTIP_PATHS + 1 and tip[-1].startswith(f"… and {199 - TOOLTIP_PATHS} more")
    window.problems.selectRow(0)  # every copy's path can be copied, not only those the tooltip names
    window.problems.copy_paths()
    assert set(QApplication.clipboard().text().splitlines()) == {str(folder / f"c{n}.dcm") for n in range(2, 201)}

    window.problems.add(folder / "broken.dcm", "empty file")  # a real problem is still counted as one
    assert window.problems_button.text() == "⚠ 1 file(s) left out · 199 identical copies listed once"


def test_images_that_share_a_uid_are_both_shown_with_a_problems_row_and_a_pdf_note(qtbot, make_window, tmp_path,
                                                                                     dicom_dir):
    """Tester: Fake_MONOHR1 and the SIIM film share a SOP Instance UID; both were shown but the PDF printed the
    same Image UID on both pages without a word."""
    pytest.importorskip("pypdf")
    from pypdf import PdfReader

    from cxr_engine.reading.uid_clashes import clash_note

    folder = tmp_path / "clash"
    folder.mkdir()
    for name in (SIIM, "Fake_MONOHR1.dcm"):
        shutil.copy(dicom_dir / name, folder / name)
    uid, paths = SIIM.removesuffix(".dcm"), (folder / SIIM, folder / "Fake_MONOHR1.dcm")
    window = make_window(show=True)
    open_and_wait(qtbot, window, folder)
    qtbot.waitUntil(lambda: window.browser.image_count() == 2, timeout=WAIT_MS)  # never merged
    assert window.problems.problems() == [(str(paths[0]), clash_note(uid, paths))]
    assert window.problems_button.text() == "⚠ 1 shared SOP Instance UID(s)"

    wait_classified(qtbot, window)
    for path in paths:  # the panel (and the result JSON) carry the note as the CSV row and the PDF page do
        window.browser.select_path(path)
        qtbot.waitUntil(lambda: clash_note(uid, paths) in window.result.image_warnings, timeout=WAIT_MS)
        assert clash_note(uid, paths) in window.result_panel.warnings_label.text()
    pdf = export(qtbot, window, ExportRequest(tuple(window.browser.image_paths()), tmp_path / "r.pdf", False, ""))
    pages = film_pages(pdf)
    assert len(pages) == 2
    assert all(f"two different files claim the same SOP Instance UID {uid}" in page for page in pages), pages
    hidden = export(qtbot, window, ExportRequest(tuple(window.browser.image_paths()), tmp_path / "d.pdf", True, ""))
    pages = film_pages(hidden)
    note = "another of the opened files claims this image's SOP Instance UID too"
    assert all(note in page and uid not in page for page in pages), pages


def film_pages(pdf) -> list[str]:
    """Each film's text in the PDF, its continuation page (a full page's sections moved on) joined to it; the
    closing limits page left out."""
    from pypdf import PdfReader

    films: list[str] = []
    for page in PdfReader(str(pdf)).pages[:-1]:
        text = " ".join(page.extract_text().split())
        if "Continued from page" in text and films:
            films[-1] += " " + text
        else:
            films.append(text)
    return films


def test_files_that_fail_to_decode_are_told_apart_by_file_name(qtbot, make_window, tmp_path, dicom_dir):
    """Tester: three damaged copies of one film showed as three identical rows, "Image 1 / CR / ⚠ error"."""
    folder = tmp_path / "damaged"
    folder.mkdir()
    data = (dicom_dir / CR).read_bytes()
    paths = [folder / "cut_early.dcm", folder / "cut_late.dcm"]
    for path, share in zip(paths, (0.6, 0.8)):  # the header whole, the pixel data cut short
        path.write_bytes(data[: int(len(data) * share)])
    window = make_window(show=True)
    window.open_paths([folder])
    qtbot.waitUntil(lambda: window.browser.image_count() == 2, timeout=WAIT_MS)
    for path in paths:
        window.browser.select_path(path)
        qtbot.waitUntil(lambda: window.browser._images[path].text(1) == "⚠ error", timeout=WAIT_MS)
    labels = [window.browser._images[path].text(0).split("\n")[0] for path in paths]
    assert labels[0] != labels[1] and all(path.name in label for path, label in zip(paths, labels)), labels


def test_the_pdf_names_the_copies_left_out_and_a_deidentified_one_counts_them(qtbot, make_window, tmp_path,
                                                                             dicom_dir):
    """Tester: the CSV row of a film stored as two identical files says so, the app's PDF page did not. It does
    now, and a de-identified PDF counts the copies without naming a file (a name may be the patient's)."""
    pytest.importorskip("pypdf")
    from pypdf import PdfReader

    root = tmp_path / "study"
    for folder in ("a", "b"):
        (root / folder).mkdir(parents=True)
    kept, copy = root / "a" / CR, root / "b" / "jane_roe_chest.dcm"
    shutil.copy(dicom_dir / CR, kept)
    shutil.copy(dicom_dir / CR, copy)
    window = make_window(show=True)
    open_and_wait(qtbot, window, root)
    qtbot.waitUntil(lambda: window.browser.image_paths() == [kept], timeout=WAIT_MS)
    wait_classified(qtbot, window)

    def first_page(deidentify: bool) -> str:
        pdf = export(qtbot, window, ExportRequest((kept,), tmp_path / f"r{deidentify:d}.pdf", deidentify, ""))
        return "".join(PdfReader(str(pdf)).pages[0].extract_text().split())  # a long path wraps anywhere

    said = "".join(copies_note((copy,)).split())
    assert said in first_page(False)
    hidden = first_page(True)
    assert "".join("the same SOP Instance is also stored as 1 other identical file, left out".split()) in hidden
    assert "jane" not in hidden.lower() and str(root).replace(" ", "") not in hidden


def test_a_file_reached_by_two_paths_is_listed_once_with_the_other_path_named(qtbot, make_window, tmp_path,
                                                                              dicom_dir):
    """A hard link (or a symbolic link) is one file: listed once, as cxr-classify classifies it once, and the
    tooltip and the result's notes name the other path as the CLI's row does."""
    import os

    from cxr_engine.reading.copies import aliases_note

    folder = tmp_path / "linked"
    folder.mkdir()
    shutil.copy(dicom_dir / CR, folder / "a.dcm")
    os.link(folder / "a.dcm", folder / "b.dcm")
    window = make_window(show=True)
    open_and_wait(qtbot, window, folder)
    qtbot.waitUntil(lambda: window.browser.image_count() == 1, timeout=WAIT_MS)
    kept = folder / "a.dcm"
    assert window.browser.has_image(kept) and not window.browser.has_image(folder / "b.dcm")
    note = aliases_note((folder / "b.dcm",))
    assert note in window.browser._images[kept].toolTip(0)
    window.browser.select_path(kept)
    qtbot.waitUntil(lambda: note in window.result.image_warnings, timeout=WAIT_MS)
    assert not any("b.dcm" in n for n in window.workspace.file_notes(kept, deidentified=True))
