"""Argument types for the command-line tools: a non-positive count or time is a usage error (exit 2)."""
from __future__ import annotations

import argparse
import math
from pathlib import Path
from typing import Callable


def positive(kind: type) -> Callable[[str], int | float]:
    """An ``argparse`` ``type`` that reads ``kind`` (``int`` or ``float``) and accepts only a finite
    value above zero (``nan`` and ``inf`` are refused for ``float``); anything else is an
    ``argparse.ArgumentTypeError``, i.e. a usage error naming the option and the value."""

    def read(text: str):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
        if not (math.isfinite(value) and value > 0):
            raise argparse.ArgumentTypeError(f"must be more than 0, not {text}")
        return value

    read.__name__ = f"positive {kind.__name__}"
    return read


def output_path(text: str) -> Path:
    """An ``argparse`` ``type`` for an output file or folder: a path, but never an empty one (``""`` would
    be the current folder, written without the user having named it)."""
    if not text.strip():
        raise argparse.ArgumentTypeError("an empty path: name the file or folder")
    return Path(text)
