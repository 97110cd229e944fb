"""The app's exports follow cxr-classify's one output rule (``output_paths.source_problem``): no PDF,
view or DICOM object, and no --screenshot / --export-pdf / --result-json, is written into a folder a
study was opened from or the folder of a film opened on its own; real DICOMs copied into tmp folders."""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest

pytest.importorskip("PySide6")
pytest.importorskip("pytestqt")

from cxr_desktop.report_export import ExportRequest  # noqa: E402

from test_desktop import MONO1, WAIT_MS, card, make_window, open_and_wait, private_settings  # noqa: E402,F401

RULE = "source folders are never written"


@pytest.fixture()
def study(tmp_path, dicom_dir) -> Path:
    folder = tmp_path / "study"
    folder.mkdir()
    shutil.copy(dicom_dir / MONO1, folder / "film.dcm")
    return folder


def files_in(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))


@pytest.mark.parametrize("opened, target, reason", [
    ("study", "study/report.pdf", "lies inside the input folder"),
    ("study", "study/sub/report.pdf", "lies inside the input folder"),
    ("study/film.dcm", "study/report.pdf", "lies in the folder of the input"),
    ("study/film.dcm", "study/sub/report.pdf", "lies in the folder of the input"),
])
def test_a_pdf_export_into_a_source_folder_fails_naming_the_file_and_the_rule(
        qtbot, make_window, study, opened, target, reason):
    window = make_window(show=True, with_model=False)
    root = study.parent
    film = open_and_wait(qtbot, window, root / opened)
    with qtbot.waitSignal(window.exportFailed, timeout=WAIT_MS) as failed:
        assert window.start_export(ExportRequest((film,), root / target, False)) is None
    assert failed.args[0] == f"The PDF was not written: {root / target} {reason} {root / opened}; {RULE}"
    assert files_in(study) == ["film.dcm"]


def test_an_export_beside_the_study_folder_is_allowed(qtbot, make_window, study):
    window = make_window(show=True, with_model=False)
    film = open_and_wait(qtbot, window, study / "film.dcm")
    assert window.workspace.output_problem(study.parent / "report.pdf", [film]) is None
    assert window.workspace.output_problem(study.parent / "views" / "view.png", [film]) is None
    assert RULE in window.workspace.output_problem(study / "view.png", [film])


@pytest.mark.parametrize("option", ["--screenshot", "--export-pdf", "--result-json"])
@pytest.mark.parametrize("opened", ["study", "study/film.dcm"])
def test_automation_outputs_into_a_source_folder_are_a_usage_error(option, opened, study, capsys):
    from cxr_desktop.app import parse_args

    target = study / "sub" / "out.x"
    with pytest.raises(SystemExit) as exit_:
        parse_args([str(study.parent / opened), option, str(target)])
    assert exit_.value.code == 2
    assert f"{option} {target}: " in capsys.readouterr().err
    assert files_in(study) == ["film.dcm"]
    assert parse_args([str(study.parent / opened), option, str(study.parent / "out.x")]).path is not None
