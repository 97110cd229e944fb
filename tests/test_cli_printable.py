"""File names reach the terminal escaped: a name holding a newline and an ANSI escape sequence neither splits
``cxr-classify``'s lines on standard error nor recolours the terminal; the CSV keeps the true path."""
from __future__ import annotations

import csv
import io
import logging
import shutil

import pytest

from cxr_engine.cli_progress import PREFIX, PrintableFormatter, say

from model_factory import BUNDLED_CARD

EVIL = "evil\nname\x1b[31mRED"


def test_say_escapes_control_characters_and_keeps_other_text():
    stream = io.StringIO()
    say(f"/data/{EVIL}.dcm: empty file; Ünïcødé 患者", stream)
    assert stream.getvalue() == PREFIX + "/data/evil\\nname\\x1b[31mRED.dcm: empty file; Ünïcødé 患者\n"


def test_log_records_are_escaped_but_a_traceback_is_kept():
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(PrintableFormatter(PREFIX + "%(message)s"))
    logger = logging.getLogger("test_cli_printable")
    logger.addHandler(handler)
    try:
        logger.warning("%s: full-resolution decode for the outputs failed", f"/data/{EVIL}.dcm")
        try:
            raise ValueError("boom")
        except ValueError:
            logger.exception("failed on %s", EVIL)
    finally:
        logger.removeHandler(handler)
    lines = stream.getvalue().splitlines()
    assert lines[0] == PREFIX + "/data/evil\\nname\\x1b[31mRED.dcm: full-resolution decode for the outputs failed"
    assert lines[1] == PREFIX + "failed on evil\\nname\\x1b[31mRED" and lines[2] == "Traceback (most recent call last):"
    assert "\x1b" not in stream.getvalue()


def test_cli_lines_are_escaped_and_the_csv_keeps_the_true_paths(tmp_path, dicom_dir, capsys):
    pytest.importorskip("onnxruntime")
    from cxr_engine.cli import main

    folder = tmp_path / "weird"
    folder.mkdir()
    empty = folder / f"{EVIL}.dcm"
    empty.write_bytes(b"")
    film = folder / 'a,b"c\x1b[0m\tfilm.dcm'
    shutil.copy(dicom_dir / "CR-MONO1-10-chest.dcm", film)
    copy = folder / "z\rcopy.dcm"  # an identical copy: the copies line names files too
    shutil.copy(film, copy)
    out = tmp_path / "out.csv"
    main([str(folder), "--csv", str(out), "--model", str(BUNDLED_CARD), "--backend", "onnx", "--no-isolation"])
    err = capsys.readouterr().err
    assert not any(ch in err for ch in "\x1b\r\t"), err
    lines = err.splitlines()
    assert lines and all(line.startswith(PREFIX) for line in lines), lines
    assert f"{PREFIX}{folder}/evil\\nname\\x1b[31mRED.dcm: empty file" in lines
    with open(out, newline="", encoding="utf-8") as handle:
        paths = {row["path"] for row in csv.DictReader(handle)}
    assert {str(empty), str(film)} <= paths  # the true names, newline and escape included
