"""What the sections of ``training.evaluate``'s markdown report share: a heading, then the results or
why there are none."""
from __future__ import annotations

from typing import Callable


def section_lines(title: str, section: dict | None, not_run: str, body: Callable[[dict], list[str]]) -> list[str]:
    """``## title``, a blank line, then ``body(section)``; ``not_run`` and a blank line instead when
    ``section`` is ``None`` or empty (the check was skipped)."""
    return [f"## {title}", ""] + (body(section) if section else [not_run, ""])
