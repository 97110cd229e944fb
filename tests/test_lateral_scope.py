"""A lateral film (View Position LL/RL in its header) is out of scope everywhere: the CSV's
``out_of_scope`` and the summary's count (CLI), the app's red banner and the PDF page, all from
``cxr_engine.models.scope_score.out_of_scope`` (tester finding 6)."""
from __future__ import annotations

import csv
import shutil

import pydicom
import pytest

from cxr_engine.cli import main
from cxr_engine.cli_progress import BatchCounts
from cxr_engine.models.image_checks import banner
from cxr_engine.models.scope_score import out_of_scope
from cxr_engine.models.suitability import LATERAL, LATERAL_WARNING, header_scope_reasons

from model_factory import BUNDLED_CARD

FRONTAL = "CR-MONO1-10-chest.dcm"


@pytest.mark.parametrize("view, expected", [("LL", LATERAL), ("RL", LATERAL), (" lateral ", LATERAL), ("PA", ""),
                                            ("AP", ""), ("", "")])
def test_the_header_gives_the_lateral_reason(view, expected):
    assert header_scope_reasons(view) == expected
    assert out_of_scope("", (0.01, 0.01, 0.98), None, view) == expected


def test_the_lateral_reason_comes_first_and_is_worded():
    assert out_of_scope("inverted", (0.4, 0.3, 0.3), 0.1, "LL") == "lateral;inverted;uncertain"
    assert "lateral view" in banner("lateral")


@pytest.fixture()
def lateral_and_frontal(tmp_path, dicom_dir):
    folder = tmp_path / "study"
    folder.mkdir()
    shutil.copy(dicom_dir / FRONTAL, folder / "frontal.dcm")
    ds = pydicom.dcmread(dicom_dir / FRONTAL, force=True)
    ds.ViewPosition = "LL"
    ds.save_as(folder / "lateral.dcm")
    return folder


def test_the_csv_and_the_summary_count_the_lateral_film(lateral_and_frontal, tmp_path):
    out = tmp_path / "out.csv"
    assert main([str(lateral_and_frontal), "--csv", str(out), "--model", str(BUNDLED_CARD), "--backend", "onnx",
                 "--no-isolation", "--quiet"]) == 0
    with open(out, newline="") as handle:
        rows = {row["path"].rsplit("/", 1)[-1]: row for row in csv.DictReader(handle)}
    assert rows["lateral.dcm"]["out_of_scope"].split(";")[0] == LATERAL
    assert "lateral view" in rows["lateral.dcm"]["warnings"]
    assert not rows["frontal.dcm"]["out_of_scope"].startswith(LATERAL)
    counts = BatchCounts()
    for row in rows.values():
        counts.add(type("Row", (), {"status": row["status"], "out_of_scope": row["out_of_scope"]})())
    assert counts.out_of_scope >= 1


def test_the_app_shows_the_red_banner_for_a_lateral_film(qtbot):
    from PySide6.QtGui import QAction

    from cxr_desktop.result_model import ResultModel
    from cxr_desktop.result_panel import ResultPanel
    from cxr_desktop.viewer_model import ViewerModel

    model = ResultModel()
    panel = ResultPanel(model, ViewerModel(), QAction("Heat-map"))
    qtbot.addWidget(panel)
    model.set_image(("lateral view: the model is made for frontal (PA/AP) chest films",), "LL")
    assert model.out_of_scope == LATERAL
    assert panel.scope_banner.text() == banner(LATERAL) and not panel.scope_banner.isHidden()
    assert LATERAL_WARNING not in panel.warnings_label.text()  # the banner says it; no second line repeats it
    model.set_image((), "PA")
    assert model.out_of_scope == "" and panel.scope_banner.isHidden()
