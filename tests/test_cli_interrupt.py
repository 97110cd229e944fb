"""Ctrl-C (SIGINT) or SIGTERM during a batch (tester item 8): no traceback, the rows classified so far are
kept in a complete CSV (renamed into place, no ``.part`` file left), standard error says how many, exit
status 130 / 143, and the decoding workers stop. A real run in its own process on real films from
``../shared/data/cxr3`` (skipped with the reason when absent)."""
from __future__ import annotations

import csv
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from cxr_engine.cli import EXIT_SIGINT, EXIT_SIGTERM
from cxr_engine.reading.scanning import natural_key

from model_factory import default_card_path

FILMS = 100  # enough that a loaded machine cannot finish them between the test seeing rows and its signal


@pytest.fixture()
def many_films(tmp_path, cxr3_dir) -> Path:
    films = sorted((cxr3_dir / "images" / "normal").glob("*.jp*g"))[:FILMS]
    if len(films) < FILMS:
        pytest.skip(f"fewer than {FILMS} JPEG films in {cxr3_dir / 'images' / 'normal'}")
    folder = tmp_path / "films"
    folder.mkdir()
    for film in films:
        shutil.copy(film, folder / film.name)
    return folder


@pytest.mark.parametrize("number, code", [(signal.SIGINT, EXIT_SIGINT), (signal.SIGTERM, EXIT_SIGTERM)])
def test_an_interrupted_batch_keeps_the_rows_classified_so_far(many_films, tmp_path, number, code):
    out = tmp_path / "out"
    out.mkdir()
    csv_path = out / "results.csv"
    run = subprocess.Popen(
        [sys.executable, "-m", "cxr_engine", str(many_films), "--csv", str(csv_path), "--model", str(default_card_path()),
         "--backend", "onnx", "--device", "cpu", "--batch-size", "1", "--decode-workers", "1", "-q"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        # As from a terminal: a shell that starts jobs in the background (CI under nohup ... &) hands them
        # SIGINT ignored, and Python then installs no handler for it.
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:  # until a few rows are in the temporary CSV
            parts = list(out.glob(".results.csv.*.part"))
            if parts and parts[0].exists() and len(parts[0].read_text().splitlines()) > 3:
                break
            assert run.poll() is None, run.communicate()
            time.sleep(0.05)
        else:
            pytest.fail("no rows written within 120 s")
        run.send_signal(number)
        _, err = run.communicate(timeout=60)
    finally:
        if run.poll() is None:
            run.kill()
    assert run.returncode == code, err
    assert "Traceback" not in err and "KeyboardInterrupt" not in err, err
    (line,) = err.splitlines()
    match = re.fullmatch(r"cxr-classify: interrupted after (\d+) of (\d+) files; the CSV holds the (\d+) rows", line)
    assert match and match[1] == match[3] and int(match[2]) == FILMS, line
    assert sorted(p.name for p in out.iterdir()) == ["results.csv"]  # no .part file left
    with open(csv_path, newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == int(match[1]) and 3 <= len(rows) < FILMS
    # in the study tree's order, as the app lists them: each JPEG its own patient, by file name, numbers by value
    in_tree_order = sorted((str(p) for p in many_films.iterdir()), key=natural_key)
    assert [row["path"] for row in rows] == in_tree_order[:len(rows)]
    assert all(row["status"] == "ok" and row["p_normal"] for row in rows)
