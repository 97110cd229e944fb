"""Edit a model card's JSON file in place: the training commands that add one entry to a card.

The card's JSON object is edited as it is, not through the card classes, which keep only the fields they know:
every key the edit does not touch keeps its value and its place, a new key goes last. The file is written as
``json.dumps(data, indent=2)`` and a newline, atomically (``cxr_engine.outputs.atomic.write_text_atomic``), so a
reader sees the old card or the new one, never half of one.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Callable, Mapping

from cxr_engine.outputs.atomic import write_text_atomic


def write_card(card_path: str | Path, data: dict) -> None:
    """Write ``data`` to ``card_path`` as ``json.dumps(data, indent=2)`` and a newline, atomically.

    ``OSError`` when it cannot be written (the file then is as it was); ``TypeError`` (nothing written) when
    ``data`` holds something JSON cannot encode."""
    write_text_atomic(card_path, json.dumps(data, indent=2) + "\n")


def update_card(card_path: str | Path, edit: Callable[[dict], object]) -> dict:
    """Read the JSON object of ``card_path`` (UTF-8), let ``edit`` change it in place, and :func:`write_card` it.

    Returns the object as written. Nothing is written when reading fails (``OSError``; ``ValueError``, i.e.
    ``json.JSONDecodeError``, for a file that is not JSON) or when ``edit`` raises (its exception passes on: an
    edit that checks the card first refuses by raising); ``OSError`` from the write leaves the old file whole."""
    data = json.loads(Path(card_path).read_text(encoding="utf-8"))
    edit(data)
    write_card(card_path, data)
    return data


def set_card_keys(card_path: str | Path, values: Mapping[str, object]) -> dict:
    """:func:`update_card` setting the top-level keys of ``values`` (``data[key] = value`` for each, in order):
    a key the card already has keeps its place, a new one goes last. Returns the object as written."""
    def edit(data: dict) -> None:
        for key, value in values.items():
            data[key] = value

    return update_card(card_path, edit)
