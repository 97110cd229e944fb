"""Logging for the training scripts: stderr plus an optional log file, safe beside tqdm bars."""
from __future__ import annotations

import logging
import sys
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

LOGGER = "training"


@contextmanager
def script_logging(log_file: Path | None = None, *, level: int = logging.INFO, tag: str = "",
                   file_mode: str = "w") -> Iterator[logging.Logger]:
    """Send the ``training`` loggers to stderr (and ``log_file``) while the block runs, then undo it.

    ``tag`` goes in every line's prefix (e.g. ``[rank 1] ``); ``file_mode="a"`` keeps an existing
    log (a resumed run).
    """
    from tqdm.contrib.logging import logging_redirect_tqdm

    fmt = logging.Formatter(f"%(asctime)s {tag}%(levelname)s %(name)s: %(message)s")
    handlers: list[logging.Handler] = [logging.StreamHandler(sys.stderr)]
    if log_file is not None:
        handlers.append(logging.FileHandler(log_file, mode=file_mode, encoding="utf-8"))
    logger = logging.getLogger(LOGGER)
    for handler in handlers:
        handler.setFormatter(fmt)
        handler.setLevel(level)
        logger.addHandler(handler)
    # Set on the logger too: tqdm's logging redirect swaps in handlers that drop handler levels.
    logger.setLevel(level)
    try:
        with logging_redirect_tqdm(loggers=[logger]):
            yield logger
    finally:
        for handler in handlers:
            logger.removeHandler(handler)
            handler.close()
