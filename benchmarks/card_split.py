"""Regenerate the split manifest a bundled model card was tested on, and check it by its sha256.

The cards' ``training_data.split_manifest`` was made by ``training.curate`` before cxr3's manifest
held the sources ``rsna_pneumonia`` and ``nih_cxr14``, and before curation shared each class's
sampling weight between age groups. This script repeats that curation on today's data:

1. writes ``WORK/sources/manifest.csv``: the rows of cxr3's manifest whose ``source`` is one of
   the card's ``training_data.sources``, with cxr3's columns and row order, next to symbolic links
   to cxr3's image folders (``training.curate`` resolves ``file`` against the manifest's folder,
   so each row's ``path`` ends up on the real file under cxr3);
2. runs ``python -m training.curate --manifest WORK/sources/manifest.csv --out WORK/curated
   --no-age-balance`` (the curation's defaults otherwise: seed, fractions, duplicate thresholds);
3. compares the sha256 of ``WORK/curated/split_manifest.csv`` with the card's
   ``training_data.split_manifest_sha256``. Exit status 0 when equal, 1 when not, 2 on bad input.

The manifest holds absolute paths of this machine, so it is regenerated, never committed.

    python -m benchmarks.card_split --model efficientnet-lite0 --work /tmp/card-split
    python -m training.check_cli --model efficientnet-lite0 --manifest /tmp/card-split/curated/split_manifest.csv
"""
from __future__ import annotations

import argparse
import csv
import hashlib
import os
import subprocess
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_CXR3 = Path(os.environ.get("CXR_DATA", REPO_ROOT.parent / "shared" / "data")) / "cxr3" / "manifest.csv"


def card_training_data(model: str) -> dict:
    """The card's ``training_data`` (sources, split_manifest_sha256, ...); ``model`` is a bundled name or a card path."""
    from cxr_engine.models.model_card import find_card

    return find_card(model).training_data


def write_source_manifest(cxr3_manifest: Path, sources: set[str], folder: Path) -> Path:
    """Write ``folder/manifest.csv`` with the rows of ``sources`` only, and link cxr3's image folders beside it.

    Columns and row order are cxr3's; every top-level folder the kept rows' ``file`` names
    (``images``) becomes a symbolic link to the same folder next to ``cxr3_manifest``.
    Raises ValueError when a source is not in the manifest or a linked folder is missing.
    """
    with open(cxr3_manifest, newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        columns = list(reader.fieldnames or [])
        rows = [row for row in reader if row["source"] in sources]
    missing = sources - {row["source"] for row in rows}
    if missing:
        raise ValueError(f"{cxr3_manifest}: no rows of source(s) {sorted(missing)}")
    folder.mkdir(parents=True, exist_ok=True)
    for top in sorted({Path(row["file"]).parts[0] for row in rows}):
        target = (cxr3_manifest.parent / top).resolve()
        if not target.is_dir():
            raise ValueError(f"{cxr3_manifest}: rows name files under {top}/, which is not a folder there")
        link = folder / top
        if link.is_symlink() or link.exists():
            link.unlink()
        link.symlink_to(target, target_is_directory=True)
    manifest = folder / "manifest.csv"
    with open(manifest, "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns)
        writer.writeheader()
        writer.writerows(rows)
    return manifest


def sha256_of(path: Path) -> str:
    """sha256 (hex) of a file's bytes."""
    return hashlib.sha256(path.read_bytes()).hexdigest()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.card_split", description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="efficientnet-lite0", help="bundled model name or card .json")
    parser.add_argument("--cxr3", type=Path, default=DEFAULT_CXR3, help="cxr3's manifest.csv")
    parser.add_argument("--work", type=Path, default=Path("/tmp/card-split"), help="where the manifests go")
    args = parser.parse_args(argv)

    data = card_training_data(args.model)
    expected = data.get("split_manifest_sha256")
    sources = set(data.get("sources") or {})
    if not expected or not sources:
        print(f"{args.model}: the card names no split_manifest_sha256 or no sources", file=sys.stderr)
        return 2
    if not args.cxr3.is_file():
        print(f"{args.cxr3}: cxr3's manifest not found (set CXR_DATA or --cxr3)", file=sys.stderr)
        return 2
    try:
        source_manifest = write_source_manifest(args.cxr3, sources, args.work / "sources")
    except ValueError as error:
        print(error, file=sys.stderr)
        return 2
    out = args.work / "curated"
    command = [sys.executable, "-m", "training.curate", "--manifest", str(source_manifest),
               "--out", str(out), "--no-age-balance"]
    print(" ".join(command), flush=True)
    if subprocess.run(command, cwd=REPO_ROOT, check=False).returncode != 0:
        return 2
    got = sha256_of(out / "split_manifest.csv")
    same = got == expected
    print(f"{out / 'split_manifest.csv'}: sha256 {got}\n"
          f"card {args.model}: {expected} ({'identical' if same else 'DIFFERENT'})")
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
