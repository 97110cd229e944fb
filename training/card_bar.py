"""Write into classifier cards the checks of the project's bar their models fail, from the cards' own figures.

    python -m training.card_bar resources/models/efficientnet-lite0.json resources/models/efficientnet-b1.json \
        resources/models/efficientnet-lite0-b1-average.json

``training.export`` and ``training.ensemble_card --record`` write ``test_metrics["bar_failures"]`` (a list of
str, empty when the model meets the bar) into every card they make; this command adds it to cards written
before that, recomputing it (``export.card_bar_failures``) from the test figures the card already holds.
Nothing else in a card's file changes. ``ValueError`` (and no card written) when the recomputed failures
disagree with a card's ``meets_bar``: such a card's figures and verdict do not belong together.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Sequence

from cxr_engine.models.model_card import load_card

from .card_keys import write_card
from .export import card_bar_failures
from .script_logging import script_logging

KEY = "bar_failures"


def recorded(path: Path) -> tuple[dict, list[str]]:
    """The card file's JSON object with its ``test_metrics["bar_failures"]`` set (not saved), and the list.

    The JSON is edited as it is, not through the card classes, which keep only the fields they know
    (``out_of_scope`` and ``scope_heads`` are written beside them by ``training.scope_score`` and
    ``training.scope_heads``)."""
    card = load_card(path)
    failures = card_bar_failures(card.test_metrics)
    if (not failures) != bool(card.meets_bar):
        raise ValueError(f"{path}: meets_bar is {card.meets_bar} but its test figures "
                         + (f"fail: {'; '.join(failures)}" if failures else "meet every check"))
    data = json.loads(path.read_text(encoding="utf-8"))
    data["test_metrics"][KEY] = failures
    return data, failures


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m training.card_bar", description=__doc__.split("\n\n")[0])
    p.add_argument("cards", nargs="+", type=Path, help="classifier card JSON files (single networks or averages)")
    args = p.parse_args(argv)
    with script_logging():
        edited = [(path, *recorded(path)) for path in args.cards]  # every card checked before any is written
        for path, data, failures in edited:
            write_card(path, data)
            print(f"{path}: {len(failures)} failure(s)" + "".join(f"\n  - {f}" for f in failures))
    return 0


if __name__ == "__main__":
    sys.exit(main())
