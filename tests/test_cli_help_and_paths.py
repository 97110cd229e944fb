"""``cxr-classify --help`` names the bundled models (from their cards, without an inference library); an
output path that cannot be written says so in words (the folder is not writable, and why), not with the
operating system's "No such file or directory" for ``/proc``."""
from __future__ import annotations

import errno
import subprocess
import sys
from pathlib import Path

import pytest

from cxr_engine.cli import EXIT_USAGE, build_parser, main
from cxr_engine.models.model_card import default_card, list_bundled
from cxr_engine.outputs import output_paths
from cxr_engine.outputs.output_paths import file_problem, folder_problem

REPO = Path(__file__).resolve().parents[1]


def test_help_lists_the_bundled_models_and_the_default():
    help_text = " ".join(build_parser().format_help().split())
    names = [card.name for card in list_bundled()]
    assert names, "no bundled model card"
    assert f"--model NAME|card.json a bundled model ({', '.join(names)}) or a model card .json" in help_text
    assert f"else {default_card().name}, the best bundled model that meets the project's bar" in help_text


def test_help_imports_no_inference_library():
    code = ("import sys; from cxr_engine.cli import build_parser; build_parser().format_help(); "
            "print(sorted(m for m in ('torch', 'onnxruntime', 'timm', 'cv2') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, check=True).stdout
    assert out.strip() == "[]"


@pytest.mark.skipif(not Path("/proc/self").is_dir(), reason="needs Linux /proc")
@pytest.mark.parametrize("option, target, reason", [
    ("--csv", "/proc/out.csv", "cannot be written there: its folder /proc is not writable (it accepts no new files, "
                               "as the virtual /proc and /sys do)"),
    ("--csv", "/proc/x/out.csv", "cannot create its folder /proc/x: the folder above is not writable (it accepts no "
                                 "new files, as the virtual /proc and /sys do)"),
    ("--heatmap-dir", "/proc/x", "cannot create the folder: the folder above is not writable (it accepts no new "
                                 "files, as the virtual /proc and /sys do)"),
])
def test_an_unwritable_place_is_named_as_such(option, target, reason, tmp_path, dicom_dir, capsys):
    film = tmp_path / "in" / "film.dcm"
    film.parent.mkdir()
    film.write_bytes((dicom_dir / "CR-MONO1-10-chest.dcm").read_bytes())
    assert main([str(film), option, target]) == EXIT_USAGE
    assert capsys.readouterr().err.splitlines() == [f"cxr-classify: {option} {target}: {reason}"]


@pytest.mark.parametrize("code, words", [
    (errno.EACCES, "its folder {folder} is not writable (permission denied: this user may not write there)"),
    (errno.EROFS, "its folder {folder} is not writable (it is on a read-only file system)"),
    (errno.ENOSPC, "its folder {folder} is not writable (no space is left on its device)"),
])
def test_each_cause_is_worded(code, words, tmp_path, monkeypatch):
    def refuse(*args, **kwargs):
        raise OSError(code, "the operating system's words")

    monkeypatch.setattr(output_paths.tempfile, "mkstemp", refuse)
    assert file_problem(tmp_path / "out.csv") == "cannot be written there: " + words.format(folder=tmp_path)
    assert folder_problem(tmp_path / "maps") == "cannot be written there: the folder is not writable (" \
        + words.split(" (", 1)[1]


def test_a_folder_on_the_path_that_cannot_be_entered(tmp_path, monkeypatch):
    """As an unprivileged user, ``--csv /root/x.csv`` (``/root`` mode 0700) raised PermissionError from
    ``Path.is_dir``: a traceback instead of a reason."""
    def refuse(self, *args, **kwargs):
        raise PermissionError(errno.EACCES, "Permission denied", str(self))

    monkeypatch.setattr(Path, "stat", refuse)
    reason = "cannot be written there: this user may not enter a folder on its path (permission denied)"
    assert file_problem(Path("/root/x.csv")) == reason and folder_problem(Path("/root/maps")) == reason
