"""A decoding worker that cannot start is not blamed on the file: ``DecoderStartError`` says the decoding
process could not start and why; ``cxr-classify`` stops with one clear line (exit 2), no traceback."""
from __future__ import annotations

import csv
import os
import shutil
from multiprocessing import spawn

import pytest

from cxr_engine.errors import DecoderCrashError, DecoderStartError
from cxr_engine.reading.isolation import IsolatedReader

from model_factory import BUNDLED_CARD

FILM = "CR-MONO1-10-chest.dcm"


@pytest.fixture()
def film(tmp_path, dicom_dir):
    folder = tmp_path / "in"
    folder.mkdir()
    shutil.copy(dicom_dir / FILM, folder / FILM)
    return folder / FILM


@pytest.fixture()
def missing_interpreter(monkeypatch, tmp_path):
    """The workers' interpreter is a path that does not exist (as one the user may not enter looks)."""
    monkeypatch.setattr(spawn, "_python_exe", os.fsencode(tmp_path / "no-such-python"))


@pytest.fixture()
def failing_interpreter(monkeypatch):
    """The workers' interpreter starts and exits at once with status 1, before it reads anything."""
    monkeypatch.setattr(spawn, "_python_exe", os.fsencode(shutil.which("false")))


def test_an_interpreter_that_cannot_be_run_is_named_before_any_process_starts(missing_interpreter, film):
    reader = IsolatedReader()
    with pytest.raises(DecoderStartError) as raised:
        reader.read(film)
    assert raised.value.reason.startswith("the decoding process could not start: this user cannot run the Python "
                                          "interpreter ") and "No such file or directory" in raised.value.reason
    assert str(film) not in str(raised.value) and reader.workers_started == 0


def test_a_worker_that_dies_before_it_is_ready_is_not_a_decoder_crash(failing_interpreter, film):
    with IsolatedReader() as reader:
        with pytest.raises(DecoderStartError) as raised:
            reader.read(film)
    assert not isinstance(raised.value, DecoderCrashError)
    assert "the decoding process could not start: the worker process ended (exit status 1) before it was ready" \
        in raised.value.reason
    assert "damaged or crafted" not in raised.value.reason and str(film) not in raised.value.reason


def test_a_crash_after_the_worker_is_ready_still_blames_the_file(film):
    from isolation_tasks import segfault

    with IsolatedReader(task=segfault) as reader, pytest.raises(DecoderCrashError, match="the decoder crashed"):
        reader.read(film)


@pytest.mark.parametrize("interpreter", ["missing_interpreter", "failing_interpreter"])
def test_the_cli_stops_with_one_clear_line(interpreter, request, film, dicom_dir, tmp_path, capsys):
    pytest.importorskip("onnxruntime")
    from cxr_engine.cli import EXIT_USAGE, main

    request.getfixturevalue(interpreter)
    second = film.parent / "RG1_JLSN.dcm"  # another film (an identical copy would be named as a copy)
    shutil.copy(dicom_dir / second.name, second)
    out = tmp_path / "out.csv"
    code = main([str(film.parent), "--csv", str(out), "--model", str(BUNDLED_CARD), "--backend", "onnx",
                 "--decode-workers", "2"])
    err = capsys.readouterr().err
    assert code == EXIT_USAGE
    lines = [line for line in err.splitlines() if line.startswith("cxr-classify: ")]
    assert any(line.startswith("cxr-classify: the decoding process could not start: ")
               and "nothing was classified; --no-isolation decodes in this process" in line for line in lines), err
    assert "Traceback" not in err and "BrokenPipeError" not in err and "damaged or crafted" not in err
    assert not any(str(path) in line for line in lines for path in (film, second)), "no file is blamed"
    if out.exists():
        with open(out, newline="") as handle:
            assert list(csv.DictReader(handle)) == []
