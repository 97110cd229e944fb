"""Atomic file writes: a reader sees the old file or the new one, never half of one."""
from __future__ import annotations

import os
import tempfile
from contextlib import contextmanager
from pathlib import Path

DEFAULT_MODE = 0o644


@contextmanager
def atomic_output(path: str | Path, mode: str = "wb"):
    """Open a temporary file beside ``path``; on success fsync and rename it over ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent)
    # mkstemp makes the file owner-only; a saved report or model should be as readable as any file.
    os.chmod(tmp, path.stat().st_mode & 0o777 if path.exists() else DEFAULT_MODE)
    try:
        with os.fdopen(fd, mode, **({} if "b" in mode else {"encoding": "utf-8", "newline": ""})) as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise


def write_bytes_atomic(path: str | Path, data: bytes) -> None:
    with atomic_output(path, "wb") as handle:
        handle.write(data)


def write_text_atomic(path: str | Path, text: str) -> None:
    with atomic_output(path, "w") as handle:
        handle.write(text)
