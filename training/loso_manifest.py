"""Leave-one-source-out: a copy of a split manifest without one source, weights recomputed.

    python -m training.loso_manifest --manifest training/work/runs/lite0_224/split_manifest.csv \\
        --exclude-source covid_cxnet --out training/work/curated_loso_covid_cxnet

Without ``--exclude-source`` it only recomputes the weights (for example with another
``--source-power``), keeping every row and split, and writes ``counts.md`` beside the manifest.

``--boost SOURCE:LABEL:FACTOR`` then multiplies the weights of that source's rows of that label and scales
the label's other rows so that the label keeps its share of each split's draws (for example
``rsna_pneumonia:pneumonia:2``: within pneumonia, the radiologist-read adults drawn twice as often as before).

Train on the result with ``training.train`` and score the held-out source with
``training.evaluate --loso-run``. Sampling weights are recomputed with curation's formula, so
each class keeps its share of the draws without the excluded source.
"""
from __future__ import annotations

import argparse
import csv
import logging
from pathlib import Path

from .curate import count_rows, counts_markdown, sample_weights, write_csv

log = logging.getLogger("training.loso_manifest")


def exclude_source(rows: list[dict], source: str | None, source_floor: int = 50, age_floor: int | None = 150,
                   source_power: float = 0.0) -> list[dict]:
    """Rows without ``source`` (all splits; None keeps all), with ``sample_weight`` recomputed as
    curation does (``age_floor`` None: classes and sources only, as before age balancing);
    refuses an unknown source."""
    if source is not None and not any(row["source"] == source for row in rows):
        raise ValueError(f"source {source!r} is not in the manifest")
    kept = [dict(row) for row in rows if row["source"] != source]
    sample_weights(kept, source_floor=source_floor, age_floor=age_floor, source_power=source_power)
    return kept


def boosted(rows: list[dict], boosts: list[str]) -> list[dict]:
    """``rows`` with each ``SOURCE:LABEL:FACTOR`` of ``boosts`` applied to ``sample_weight`` (in place, returned),
    each split's total weight of LABEL kept; ``ValueError`` for a malformed boost, a factor that is not positive,
    or one that matches no row."""
    for boost in boosts:
        parts = boost.split(":")
        try:
            source, label, factor = parts[0], parts[1], float(parts[2])
        except (IndexError, ValueError):
            raise ValueError(f"--boost {boost!r}: expected SOURCE:LABEL:FACTOR") from None
        if len(parts) != 3 or factor <= 0:
            raise ValueError(f"--boost {boost!r}: expected SOURCE:LABEL:FACTOR with a positive factor")
        matched = [row for row in rows if row["source"] == source and row["label"] == label]
        if not matched:
            raise ValueError(f"--boost {boost!r}: no row of source {source!r} with label {label!r}")
        for split in {row["split"] for row in matched}:
            same_label = [row for row in rows if row["split"] == split and row["label"] == label]
            weights = [float(row["sample_weight"]) * (factor if row["source"] == source else 1.0) for row in same_label]
            scale = sum(float(row["sample_weight"]) for row in same_label) / sum(weights)
            for row, weight in zip(same_label, weights):
                row["sample_weight"] = f"{weight * scale:.6g}"
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--manifest", type=Path, required=True, help="split manifest written by training.curate")
    parser.add_argument("--exclude-source", help="the source to hold out, e.g. covid_cxnet (none: reweight only)")
    parser.add_argument("--out", type=Path, required=True, help="folder for the new split_manifest.csv")
    parser.add_argument("--source-floor", type=int, default=50, help="as in training.curate (default 50)")
    parser.add_argument("--age-floor", type=int, default=150, help="as in training.curate (default 150)")
    parser.add_argument("--source-power", type=float, default=0.0, help="as in training.curate (default 0)")
    parser.add_argument("--no-age-balance", action="store_true",
                        help="weights by class and source only, as for curations made with --no-age-balance")
    parser.add_argument("--boost", action="append", default=[], metavar="SOURCE:LABEL:FACTOR",
                        help="multiply the weights of one source's rows of one label (repeatable)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    with open(args.manifest, newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        rows, columns = list(reader), list(reader.fieldnames or [])
    kept = exclude_source(rows, args.exclude_source, args.source_floor,
                          None if args.no_age_balance else args.age_floor, args.source_power)
    boosted(kept, args.boost)
    args.out.mkdir(parents=True, exist_ok=True)
    write_csv(args.out / "split_manifest.csv", kept, columns)
    (args.out / "counts.md").write_text(counts_markdown(count_rows(kept)), encoding="utf-8")
    log.info("%d of %d rows kept without %s -> %s", len(kept), len(rows), args.exclude_source, args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
