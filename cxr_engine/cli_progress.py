"""What ``cxr-classify`` tells the person running it while and after it works (on standard error).

On a terminal a tqdm progress bar; when standard error is piped or redirected, plain lines
("cxr-classify: 12/40 files, 3.1 files/s, 8 s left") at most every ``PLAIN_EVERY_S`` seconds
plus the last one, so a log file is readable; ``--quiet`` prints neither. They count files, not images:
a file that cannot be read, or holds no image, is one of them. After the batch one summary line counts
what happened (``summary_line``). The CSV, on standard output or in
``--csv``, never carries any of this.
"""
from __future__ import annotations

import logging
import sys
import time
from dataclasses import dataclass
from typing import Iterable, Iterator, TextIO

#: Plain progress lines (piped standard error) are written at most this often, in seconds.
PLAIN_EVERY_S = 2.0

PREFIX = "cxr-classify: "


def say(text: str, stream: TextIO | None = None) -> None:
    """One line ``cxr-classify: <text>`` on ``stream`` (default ``sys.stderr``), every control character in
    ``text`` escaped (``cxr_engine.messages.printable``: ``\\n``, ``\\x1b``): a file name holding a newline or
    an ANSI escape sequence can neither split the line nor recolour the terminal. Every line the CLI writes
    about its inputs and outputs goes through here (log records through :class:`PrintableFormatter`); the
    CSV keeps the true path (its quoting holds any character) but for the bytes of a file name that are not
    UTF-8, written ``\\xNN`` (``outputs.undecodable``)."""
    from .messages import printable

    print(PREFIX + printable(text, limit=None), file=stream if stream is not None else sys.stderr)


class PrintableFormatter(logging.Formatter):
    """A log formatter that escapes the control characters of each formatted message, as :func:`say` does
    (a traceback, when the record has one, stays as Python wrote it)."""

    def formatMessage(self, record: logging.LogRecord) -> str:
        from .messages import printable

        return printable(super().formatMessage(record), limit=None)


@dataclass
class BatchCounts:
    """What a batch did: ``classified`` (status ok), ``not_classified`` (status not-classified: no image
    content), ``failed`` (status error), ``out_of_scope``: rows flagged as outside what the model was
    trained for (the firm banner, ``image_checks.banner_is_firm``), ``possibly_out_of_scope``: rows flagged
    as maybe in scope (``child-chest``, with or without ``uncertain``), and ``close_calls``: rows flagged only
    ``uncertain`` (the banner's "close call"); all three ``None`` when the rows carry no ``out_of_scope``
    field. ``disagree``: classified rows whose averaged networks' own top classes differ (``member_calls``,
    ``ensemble.disagreement_note``), counted apart from the scope counts (a film may be both); ``None`` for a single
    network (give ``disagree=0`` for an averaged model: its 0 is said too)."""

    classified: int = 0
    failed: int = 0
    out_of_scope: int | None = None
    not_classified: int = 0
    possibly_out_of_scope: int | None = None
    close_calls: int | None = None
    disagree: int | None = None

    def add(self, row) -> None:
        """Count one ``batch.ResultRow``."""
        if row.status == "ok":
            self.classified += 1
        elif row.status == "not-classified":
            self.not_classified += 1
        else:
            self.failed += 1
        flag = getattr(row, "out_of_scope", None)
        if flag is not None:
            from .models.image_checks import CLOSE_CALL, FIRM, MAYBE, banner_kind

            kind = banner_kind(flag)
            self.out_of_scope = (self.out_of_scope or 0) + (kind == FIRM)
            self.possibly_out_of_scope = (self.possibly_out_of_scope or 0) + (kind == MAYBE)
            self.close_calls = (self.close_calls or 0) + (kind == CLOSE_CALL)
        calls = getattr(row, "member_calls", None) or ()
        if calls:  # an averaged model's row
            from .models.ensemble import members_disagree

            split = row.status == "ok" and members_disagree(calls)
            self.disagree = (self.disagree or 0) + split

    @property
    def total(self) -> int:
        return self.classified + self.not_classified + self.failed


def summary_line(counts: BatchCounts, elapsed_s: float) -> str:
    """One line after the batch, e.g. ``cxr-classify: 38 classified, 0 not classified (no image content), 2 failed,
    out of scope 1, possibly out of scope 0, close calls 2, networks disagree 3, 40 files in 12.3 s (3.25
    files/s)``. The three outcomes are always counted, 0 included (a tester's finding: "not classified" was left
    out at 0), and the three scope counts always come together, each a number (0 included: a log reader sees the
    checks ran and found none; every run's line holds the same fields) or all three "n/a" when the rows do not say:
    "out of scope" (the firm banner), then, counted apart from it as the app's milder banners word them,
    "possibly out of scope" (the child's-chest check on a film without an age) and "close calls" (the model
    unsure). An averaged model's run then says on how many films its networks disagreed ("networks disagree 3",
    0 included; a single network's run has no such field). The total and the rate count files, as the rows do: a
    file that could not be read is no image."""
    known = counts.out_of_scope is not None
    scope = ", ".join(f"{what} {number if known else 'n/a'}" for what, number in (
        ("out of scope", counts.out_of_scope), ("possibly out of scope", counts.possibly_out_of_scope),
        ("close calls", counts.close_calls)))
    if counts.disagree is not None:
        scope += f", networks disagree {counts.disagree}"
    rate = counts.total / elapsed_s if elapsed_s > 0 else float("nan")
    return (f"{PREFIX}{counts.classified} classified, {counts.not_classified} not classified (no image content), "
            f"{counts.failed} failed, {scope}, "
            f"{counts.total} file{'' if counts.total == 1 else 's'} in {elapsed_s:.1f} s ({rate:.2f} files/s)")


def progress(rows: Iterable, total: int, quiet: bool = False, stream: TextIO | None = None,
             clock=time.monotonic) -> Iterator:
    """Yield ``rows`` unchanged while showing progress on ``stream`` (default ``sys.stderr``):
    a tqdm bar when it is a terminal, plain lines otherwise, nothing when ``quiet``."""
    stream = stream if stream is not None else sys.stderr
    if quiet:
        yield from rows
        return
    if _is_terminal(stream):
        from tqdm import tqdm

        yield from tqdm(rows, total=total, unit="file", file=stream)
        return
    yield from _plain_lines(rows, total, stream, clock)


def _plain_lines(rows: Iterable, total: int, stream: TextIO, clock) -> Iterator:
    start = last = clock()
    done = 0
    for row in rows:
        yield row
        done += 1
        now = clock()
        if now - last >= PLAIN_EVERY_S or done == total:
            last = now
            stream.write(_plain_line(done, total, now - start) + "\n")
            stream.flush()


def _plain_line(done: int, total: int, elapsed_s: float) -> str:
    line = f"{PREFIX}{done}/{total} files"
    if elapsed_s > 0:
        rate = done / elapsed_s
        line += f", {rate:.2f} files/s"
        if done < total and rate > 0:
            line += f", {(total - done) / rate:.0f} s left"
    return line


def _is_terminal(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False
