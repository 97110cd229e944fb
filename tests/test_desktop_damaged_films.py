"""Damaged films in the app (tester, 2026-11-30): a film that could not be classified left its "Not classified:
…" beside the next films (three damaged films in a row showed the first one's reason), while a model that
failed to load stays failed whatever film is shown; the Problems count was of rows, not files, and a Latin-1
file name lost its accented bytes there."""
from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("PySide6")

from cxr_desktop.result_model import FAILED, READY, ResultModel  # noqa: E402


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
