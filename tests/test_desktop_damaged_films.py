"""Damaged films in the app (tester, 2026-11-30): a film that could not be classified left its "Not classified:
…" beside the next films (three damaged films in a row showed the first one's reason), while a model that
failed to load stays failed whatever film is shown; the Problems count was of rows, not files, and a Latin-1
file name lost its accented bytes there."""
from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("PySide6")

from cxr_desktop.result_model import FAILED, READY, ResultModel  # noqa: E402

from test_desktop import WAIT_MS, card, make_window, private_settings  # noqa: E402,F401  (fixtures)


@pytest.fixture()
def result(qapp) -> ResultModel:
    model = ResultModel()
    model.set_model("test", "", ("normal", "pneumonia", "covid"), below_bar=False)
    model.set_ready("CPU")
    return model


def test_a_films_own_failure_is_not_shown_beside_the_next_film(result):
    result.set_image((), path=Path("a_one_px.dcm"))
    result.set_failed("Not classified: no image content: the image is 1 × 1 pixels")
    assert (result.state, result.message) == (FAILED, "Not classified: no image content: the image is 1 × 1 pixels")
    result.set_decoding(Path("b_short_pixels.dcm"))
    assert (result.state, result.message) == (READY, "")
    result.set_image((), path=Path("b_short_pixels.dcm"))
    assert (result.state, result.message) == (READY, "")


def test_a_model_that_failed_stays_failed_on_every_film(result):
    result.set_model_failed("the model file is damaged")
    result.set_image((), path=Path("a.dcm"))
    assert (result.state, result.message) == (FAILED, "the model file is damaged")


def test_the_problem_count_is_of_files_and_names_keep_their_odd_bytes(qapp):
    """A damaged film of a study exported to PDF has two rows (the scan's, "left out of the PDF") but is one
    file left out; a Latin-1 file name lost its accented bytes in the list (two names could read the same)."""
    import os

    from cxr_desktop.problems_panel import ProblemsPanel

    panel = ProblemsPanel()
    latin1 = Path("/films") / os.fsdecode(b"caf\xe9.dcm")
    panel.add(latin1, "pixel data truncated")
    panel.add(latin1, "left out of the PDF: pixel data truncated")
    panel.add(Path("/films/rows0.dcm"), "invalid image size 0×1024")
    assert panel.rowCount() == 3 and panel.problem_count() == 2
    assert panel.item(0, 0).text() == "caf\\xe9.dcm" and panel.item(0, 0).toolTip().startswith("/films/caf\\xe9.dcm")
    # the path read back is the file's own (a QString would have dropped the byte: "/films/caf.dcm")
    assert panel.problems()[0] == (str(latin1), "pixel data truncated")
    assert panel.item(0, 1).toolTip() == "pixel data truncated"


def test_a_film_in_the_tree_is_not_also_counted_as_left_out(qtbot, make_window, tmp_path, shared_data):
    """Tester: a folder of 5 files (an empty ``.dcm``, a real RSNA DICOM cut to half its bytes, a PDF named ``.dcm``,
    a uniform grey PNG, one good film) said "⚠ 5 file(s) left out" beside its images found: the cut film and
    the grey PNG were counted twice, in the tree and left out. Now each file is one or the other: 3 images in
    the tree (the good film, the cut one that cannot be decoded, the PNG that is not classified: 2 of them not
    classified) and 2 files left out (the empty file, the PDF), 3 + 2 = 5, every one with its Problems row."""
    import shutil

    import numpy as np
    from PIL import Image

    rsna = sorted((shared_data / "dicom_rsna").glob("*.dcm"))
    if len(rsna) < 2:
        pytest.skip(f"no RSNA films in {shared_data / 'dicom_rsna'}")
    folder = tmp_path / "bad"
    folder.mkdir()
    (folder / "empty.dcm").write_bytes(b"")
    data = rsna[0].read_bytes()
    (folder / "truncated.dcm").write_bytes(data[: len(data) // 2])
    (folder / "paper.dcm").write_bytes(b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n")
    Image.fromarray(np.full((256, 256), 128, np.uint8)).save(folder / "grey.png")
    shutil.copy(rsna[1], folder / "good.dcm")
    window = make_window(show=True)
    messages = []
    window.statusBar().messageChanged.connect(messages.append)
    with qtbot.waitSignal(window.scanFinished, timeout=WAIT_MS):
        window.open_paths([folder])
    for name in ("truncated.dcm", "grey.png"):  # the one fails to decode, the other is not classified
        window.browser.select_path(folder / name)
        qtbot.waitUntil(lambda: str(folder / name) in {path for path, _ in window.problems.problems()},
                        timeout=WAIT_MS)

    in_tree = {path.name for path in window.browser.image_paths()}
    with_problems = {Path(path).name for path, _ in window.problems.problems()}
    assert in_tree == {"good.dcm", "truncated.dcm", "grey.png"}
    assert with_problems == {"empty.dcm", "paper.dcm", "truncated.dcm", "grey.png"}  # each with its reason
    assert "3 image(s) found" in messages
    assert window.problems.problem_count() == len(with_problems - in_tree) == 2  # the empty file and the PDF
    assert window.problems.unclassified_count() == len(with_problems & in_tree) == 2
    assert window.browser.image_count() + window.problems.problem_count() == 5  # every file counted once
    assert window.problems_button.text() == "⚠ 2 file(s) left out · ⚠ 2 image(s) not classified"
