"""cxr-classify's progress (tqdm on a terminal, plain lines when piped), summary line and --quiet."""
from __future__ import annotations

import csv
import io
import re
import shutil
import subprocess
import sys
from types import SimpleNamespace

import pytest

from cxr_engine.cli_progress import PLAIN_EVERY_S, BatchCounts, progress, summary_line
from cxr_engine.models.image_checks import banner_is_firm

from model_factory import default_card_path

SUMMARY = re.compile(r"^cxr-classify: (\d+) classified, \d+ not classified \(no image content\), (\d+) failed, "
                     r"out of scope (\S+?)"
                     r", possibly out of scope (\S+?), close calls (\S+?)(?:, networks disagree \d+)?, (\d+) files? in "
                     r"[\d.]+ s \([\d.]+ files/s\)$", re.MULTILINE)


class FakeClock:
    def __init__(self, step: float):
        self.now, self.step = 0.0, step

    def __call__(self) -> float:
        self.now += self.step
        return self.now


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_plain_lines_when_piped_are_throttled_and_end_with_the_last_image():
    stream = io.StringIO()
    clock = FakeClock(PLAIN_EVERY_S / 4)  # four images per allowed line
    assert list(progress(range(10), 10, stream=stream, clock=clock)) == list(range(10))
    lines = stream.getvalue().splitlines()
    assert lines[-1].startswith("cxr-classify: 10/10 files, ")
    assert 2 <= len(lines) <= 4
    assert all(re.match(r"cxr-classify: \d+/10 files, [\d.]+ files/s", line) for line in lines)
    assert "s left" in lines[0] and "s left" not in lines[-1]


def test_a_terminal_gets_a_tqdm_bar_and_quiet_gets_nothing():
    terminal = Terminal()
    assert list(progress(range(5), 5, stream=terminal)) == list(range(5))
    assert "5/5" in terminal.getvalue() and "file" in terminal.getvalue() and "\r" in terminal.getvalue()
    quiet = io.StringIO()
    assert list(progress(range(5), 5, quiet=True, stream=quiet)) == list(range(5))
    assert quiet.getvalue() == ""


def test_counts_and_summary_say_n_a_until_rows_carry_out_of_scope():
    counts = BatchCounts()
    for status in ("ok", "ok", "error"):
        counts.add(SimpleNamespace(status=status))
    line = summary_line(counts, 2.0)
    assert line == ("cxr-classify: 2 classified, 0 not classified (no image content), 1 failed, out of scope n/a, "
                    "possibly out of scope n/a, close calls n/a, 3 files in 2.0 s (1.50 files/s)")
    counts.add(SimpleNamespace(status="ok", out_of_scope="lateral view: the model reads frontal films"))
    counts.add(SimpleNamespace(status="ok", out_of_scope=""))
    assert counts.out_of_scope == 1 and ", out of scope 1, possibly out of scope 0, close calls 0, 5 files" in \
        summary_line(counts, 1.0)


def test_the_summary_always_counts_the_films_not_classified():
    """The summary printed "N not classified" only when N was not 0, while the three scope counts always come
    (a tester's finding): every outcome is counted on every run, 0 included, in one place."""
    counts = BatchCounts()
    counts.add(SimpleNamespace(status="ok", out_of_scope=""))
    assert summary_line(counts, 1.0).startswith(
        "cxr-classify: 1 classified, 0 not classified (no image content), 0 failed, out of scope 0, ")
    counts.add(SimpleNamespace(status="not-classified"))
    assert ", 1 not classified (no image content), 0 failed, " in summary_line(counts, 1.0)


def test_the_summary_counts_films_that_may_be_in_scope_apart():
    """A film flagged only as maybe in scope (the milder banners: ``child-chest``; ``uncertain`` alone, a close
    call) is not counted as out of scope: a radiologist reading "out of scope 5" expected five films the model
    was not made for, and a close call is no scope question at all."""
    counts = BatchCounts()
    for flag in ("inverted", "uncertain", "child-chest;uncertain", "child-chest;other-findings", "", "uncertain"):
        counts.add(SimpleNamespace(status="ok", out_of_scope=flag))
    assert (counts.out_of_scope, counts.possibly_out_of_scope, counts.close_calls) == (2, 1, 2)
    assert ", out of scope 2, possibly out of scope 1, close calls 2, 6 files" in summary_line(counts, 1.0)


def test_the_three_scope_counts_follow_one_rule():
    """The summary printed "out of scope 0" but left "close calls" and "possibly out of scope" out at zero (a
    tester's finding): the three always come together, so a log shows the same fields on every run."""
    counts = BatchCounts()
    for flag in ("", "uncertain"):
        counts.add(SimpleNamespace(status="ok", out_of_scope=flag))
    assert ", out of scope 0, possibly out of scope 0, close calls 1, 2 files in" in summary_line(counts, 1.0)
    counts = BatchCounts()
    counts.add(SimpleNamespace(status="ok", out_of_scope="child-chest"))
    assert ", out of scope 0, possibly out of scope 1, close calls 0, 1 file in" in summary_line(counts, 1.0)


def test_an_averaged_models_summary_counts_the_films_its_networks_disagree_on():
    """The summary counted close calls but not the films an averaged model's two networks split on: "networks
    disagree N", always for an averaged model (0 included), never for a single network; a film may be both."""
    split, agreed = (("lite0", "pneumonia"), ("b1", "covid")), (("lite0", "covid"), ("b1", "covid"))
    counts = BatchCounts(disagree=0)
    counts.add(SimpleNamespace(status="ok", out_of_scope="", member_calls=agreed))
    assert summary_line(counts, 1.0).endswith(", close calls 0, networks disagree 0, 1 file in 1.0 s (1.00 files/s)")
    counts.add(SimpleNamespace(status="ok", out_of_scope="uncertain", member_calls=split))
    counts.add(SimpleNamespace(status="ok", out_of_scope="", member_calls=split))
    counts.add(SimpleNamespace(status="error"))
    assert counts.disagree == 2 and counts.close_calls == 1
    assert ", close calls 1, networks disagree 2, 4 files in" in summary_line(counts, 1.0)
    # a single network's run: no such field
    single = BatchCounts()
    single.add(SimpleNamespace(status="ok", out_of_scope=""))
    assert "disagree" not in summary_line(single, 1.0)


def test_the_readme_example_summary_line_has_the_fields_an_averaged_run_prints():
    from pathlib import Path

    readme = " ".join((Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8").split())
    example = re.search(r"`(cxr-classify: \d+ classified, .*?files/s\))`", readme)
    assert example and SUMMARY.match(example.group(1)), example
    assert ", close calls 2, networks disagree " in example.group(1)


def test_the_summary_counts_files_that_are_no_images_as_files(tmp_path, dicom_dir, capsys):
    """On a folder of an empty file, a PDF named .dcm, a truncated DICOM and a uniform PNG the summary ended
    "4 images in ..." (a tester's finding): three of them are no images at all. It counts files."""
    import cv2
    import numpy as np

    from cxr_engine.cli import main
    from model_factory import BUNDLED_CARD

    folder = tmp_path / "study"
    folder.mkdir()
    (folder / "empty.dcm").write_bytes(b"")
    (folder / "report.dcm").write_bytes(b"%PDF-1.4\n1 0 obj <<>> endobj\ntrailer <<>>\n%%EOF\n")
    (folder / "truncated.dcm").write_bytes((dicom_dir / "CR-MONO1-10-chest.dcm").read_bytes()[:3000])
    cv2.imwrite(str(folder / "uniform.png"), np.full((256, 256), 128, np.uint8))
    assert main([str(folder), "--csv", str(tmp_path / "out.csv"), "--model", str(BUNDLED_CARD), "--backend", "onnx",
                 "--no-isolation"]) == 1
    err = capsys.readouterr().err
    assert "cxr-classify: 4/4 files, " in err and " images" not in err
    assert re.search(r"^cxr-classify: 0 classified, 1 not classified \(no image content\), 3 failed, out of scope 0, "
                     r"possibly out of scope 0, close calls 0, 4 files in [\d.]+ s \([\d.]+ files/s\)$", err, re.MULTILINE), err


def _run_cli(*args):
    return subprocess.run([sys.executable, "-m", "cxr_engine", *args, "--model", str(default_card_path()),
                           "--backend", "onnx", "--device", "cpu"],
                          capture_output=True, text=True, timeout=300)


def test_piped_run_without_csv_shows_progress_and_a_summary_and_keeps_stdout_csv(dicom_dir, tmp_path):
    folder = tmp_path / "study"
    folder.mkdir()
    for name in ("CR-MONO1-10-chest.dcm", "RG1_JLSN.dcm"):
        shutil.copy(dicom_dir / name, folder / name)
    (folder / "garbage.dcm").write_bytes(b"\x00not dicom" * 40)
    done = _run_cli(str(folder))
    assert done.returncode == 1, done.stderr
    assert "3/3 files" in done.stderr
    match = SUMMARY.search(done.stderr)
    assert match, done.stderr
    assert (match.group(1), match.group(2), match.group(6)) == ("2", "1", "3")
    assert "cxr-classify:" not in done.stdout and done.stdout.startswith("path,status,")
    assert len(done.stdout.strip().splitlines()) == 4
    # The summary counts the rows whose out_of_scope is set (issue 17), whatever the bundled checks flag.
    rows = list(csv.DictReader(io.StringIO(done.stdout)))
    firm = sum(bool(r["out_of_scope"]) and banner_is_firm(r["out_of_scope"]) for r in rows)
    close = sum(r["out_of_scope"] == "uncertain" for r in rows)
    maybe = sum(bool(r["out_of_scope"]) for r in rows) - firm - close
    assert match.group(3, 4, 5) == (str(firm), str(maybe), str(close))

    quiet = _run_cli(str(folder / "CR-MONO1-10-chest.dcm"), "--quiet", "--csv", str(tmp_path / "out.csv"))
    assert quiet.returncode == 0 and quiet.stdout == ""
    assert "cxr-classify:" not in quiet.stderr and "files/s" not in quiet.stderr  # no progress, no summary
    assert (tmp_path / "out.csv").read_text().count("\n") == 2


@pytest.mark.parametrize("option", ["--quiet", "-q"])
def test_quiet_is_in_the_help(option):
    from cxr_engine.cli import build_parser

    assert build_parser().parse_args(["x", option]).quiet
