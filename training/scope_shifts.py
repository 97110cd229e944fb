"""How often films shifted in processing or framing are flagged: by the image checks, by a card's
out-of-scope threshold (``cxr_engine.models.scope_score``, recorded by ``training.scope_score --write-card``)
and by its out-of-scope heads (``cxr_engine.models.scope_heads``, ``training.scope_heads --write-card``).

    python -m training.scope_shifts --card resources/models/efficientnet-lite0.json \
        --manifest training/work/curated/split_manifest.csv --limit 300 --report training/reports/scope_lite0

Every ``--limit``-th-spread test-split film, untouched and after each shift of
``training.processing_shift.SHIFTS`` and ``training.framing_shift.FRAMING_SHIFTS`` (the same shifts
the classifier's evaluation applies). Writes ``shifts.json`` into the report folder.
"""
from __future__ import annotations

import argparse
import csv
import json
import logging
from pathlib import Path

import numpy as np

from cxr_engine.models.image_checks import ImageChecker, check_card
from cxr_engine.models.model_card import ModelCard
from cxr_engine.models.scope_heads import CHILD, OTHER_FINDINGS
from cxr_engine.models.scope_score import is_uncertain, threshold

from .script_logging import script_logging

logger = logging.getLogger("training.scope_shifts")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--card", type=Path, required=True)
    parser.add_argument("--manifest", type=Path, default=Path("training/work/curated/split_manifest.csv"))
    parser.add_argument("--limit", type=int, default=300, help="test films, spread over the split (default 300)")
    parser.add_argument("--report", type=Path, required=True)
    args = parser.parse_args(argv)
    args.report.mkdir(parents=True, exist_ok=True)
    with script_logging(args.report / "scope_shifts.log"):
        return _run(args)


def _run(args) -> int:
    from cxr_engine.models.backends import create_classifier

    from .framing_shift import FRAMING_SHIFTS, framed_display
    from .processing_shift import SHIFTS, shifted_display

    card = ModelCard.load(args.card)
    limit = threshold(card)
    if limit is None:
        raise SystemExit(f"{args.card}: no out-of-scope threshold recorded (run training.scope_score --write-card)")
    classifier = create_classifier(card, backend="onnx").load()
    checker = ImageChecker(check_card()).load()
    with open(args.manifest, newline="", encoding="utf-8") as handle:
        rows = [r for r in csv.DictReader(handle) if r["split"] == "test"]
    rows = rows[::max(1, len(rows) // args.limit)][:args.limit]
    adults = np.array([r["age_group"] != "pediatric" for r in rows])
    size = card.input_size
    makers = {"untouched": lambda path: _plain(path, size)}
    makers.update({name: (lambda path, n=name: shifted_display(path, size, n)) for name in SHIFTS})
    makers.update({name: (lambda path, n=name: framed_display(path, size, n)) for name in FRAMING_SHIFTS})
    results = {}
    for name, make in makers.items():
        images = [make(r["path"]) for r in rows]
        checks = [checker.check(image) for image in images]
        predictions = classifier.predict(images)
        uncertain = [is_uncertain(p.probabilities, limit) for p in predictions]
        heads = [p.scope_reasons.split(";") for p in predictions]
        other = [OTHER_FINDINGS in h for h in heads]
        child = np.array([CHILD in h for h in heads])
        results[name] = {"n": len(images), "image_checks_flagged": float(np.mean([c.flagged for c in checks])),
                         "uncertain_flagged": float(np.mean(uncertain)),
                         "either_flagged": float(np.mean([c.flagged or u for c, u in zip(checks, uncertain)])),
                         "image_check_reasons": _counts(c.reasons for c in checks if c.flagged),
                         # The out-of-scope heads (cxr_engine.models.scope_heads) on the same films; the images
                         # carry no header, so child-chest applies to all of them.
                         "other_findings_flagged": float(np.mean(other)),
                         "child_chest_flagged_adults": float(child[adults].mean()) if adults.any() else None,
                         "child_chest_flagged_children": float(child[~adults].mean()) if (~adults).any() else None}
        logger.info("%s: image checks %.3f, uncertain %.3f, other-findings %.3f, child-chest on adults %.3f", name,
                    results[name]["image_checks_flagged"], results[name]["uncertain_flagged"],
                    results[name]["other_findings_flagged"], results[name]["child_chest_flagged_adults"] or 0.0)
    (args.report / "shifts.json").write_text(json.dumps({"card": str(args.card), "threshold": limit,
                                                         "films": len(rows), "shifts": results}, indent=2) + "\n")
    return 0


def _plain(path: str, size: int) -> np.ndarray:
    from cxr_engine.reading.read import read_image
    from cxr_engine.models.classifier import unnormalised_input

    return unnormalised_input(read_image(path), size)


def _counts(reasons) -> dict[str, int]:
    out: dict[str, int] = {}
    for reason in reasons:
        out[reason] = out.get(reason, 0) + 1
    return out


if __name__ == "__main__":
    raise SystemExit(main())
