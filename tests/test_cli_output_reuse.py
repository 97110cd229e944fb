"""An output folder that holds an earlier run's files (tester: reusing --heatmap-dir left the first run's
heat-maps beside the second run's, numbered from 00000 again, without a word). Refused before any work
unless --overwrite; with it, only the files this program wrote there are removed. Real films."""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest

import cxr_engine.models.backends
from cxr_engine.cli import EXIT_USAGE, main
from cxr_engine.outputs.earlier_outputs import earlier_outputs

from test_cli import card  # noqa: F401  (a fixture)

CR = "CR-MONO1-10-chest.dcm"
J2K = "RG1_J2KI.dcm"


@pytest.fixture()
def two_studies(tmp_path, dicom_dir) -> tuple[Path, Path]:
    first, second = tmp_path / "first", tmp_path / "second"
    for folder, name in ((first, CR), (second, J2K)):
        folder.mkdir()
        shutil.copy(dicom_dir / name, folder / name)
    return first, second


def _run(folder: Path, card, *options: str) -> int:
    return main([str(folder), "--model", str(card.path), "--device", "cpu", "--no-isolation", "-q", *options])


def _state(folder: Path) -> dict[str, int]:
    return {path.name: path.stat().st_mtime_ns for path in folder.iterdir()}


@pytest.mark.parametrize("option, written", [("--heatmap-dir", {f"00000_{Path(CR).stem}_cam.png",
                                                                  f"00000_{Path(CR).stem}_heatmap.png"}),
                                             ("--dicom-out", {f"00000_{Path(CR).stem}_{kind}.dcm"
                                                              for kind in ("sc", "sr", "pdf")})])
def test_a_folder_with_an_earlier_runs_files_is_refused_then_replaced_with_overwrite(
        option, written, two_studies, card, tmp_path, monkeypatch, capsys):
    first, second = two_studies
    out = tmp_path / "out"
    out.mkdir()
    (out / "notes.txt").write_text("the reader's own notes")
    (out / "diagram.png").write_bytes(b"\x89PNG not ours")
    assert _run(first, card, option, str(out), "--csv", str(tmp_path / "1.csv")) == 0
    assert {p.name for p in earlier_outputs(out)} == written
    before = _state(out)
    capsys.readouterr()

    real_create = cxr_engine.models.backends.create_classifier
    monkeypatch.setattr(cxr_engine.models.backends, "create_classifier",
                        lambda *a, **k: pytest.fail("the classifier was loaded before the folder was checked"))
    assert _run(second, card, option, str(out), "--csv", str(tmp_path / "2.csv")) == EXIT_USAGE
    example = sorted(written)[0]
    assert capsys.readouterr().err.splitlines() == [
        f"cxr-classify: {option} {out}: holds {len(written)} file(s) an earlier run wrote (e.g. {example}); choose an "
        "empty folder, or add --overwrite to replace them (only those files are removed, other files are left alone)"]
    assert _state(out) == before and not (tmp_path / "2.csv").exists()  # nothing touched

    monkeypatch.setattr(cxr_engine.models.backends, "create_classifier", real_create)
    assert _run(second, card, option, str(out), "--csv", str(tmp_path / "2.csv"), "--overwrite") == 0
    names = {p.name for p in out.iterdir()}
    assert names == {"notes.txt", "diagram.png"} | {name.replace(Path(CR).stem, Path(J2K).stem) for name in written}
    assert (out / "notes.txt").read_text() == "the reader's own notes"


def test_a_folder_of_other_files_is_used_as_it_is(two_studies, card, tmp_path):
    first, _ = two_studies
    out = tmp_path / "out"
    out.mkdir()
    shutil.copy(first / CR, out / "a_film_of_mine.dcm")  # a film is never taken for an output
    assert _run(first, card, "--heatmap-dir", str(out), "--csv", str(tmp_path / "1.csv")) == 0
    assert (out / "a_film_of_mine.dcm").is_file() and len(earlier_outputs(out)) == 2
